import Foundation
import Glibc
import SELinux
import Synchronization

/// Sets files' SELinux labels to the defaults file_contexts gives them, like `restorecon`, but never undoes a
/// label svirt set for a running VM unless forced.
///
/// - Each file's default is `FileContexts.lookup` of its path and lstat type. The whole context is compared and
///   set (libvirt's images carry MCS categories that a type-only reset would keep). A file whose default is
///   `<<none>>`, or that no line matches, keeps its label.
/// - A file is "labelled by svirt for a running VM" when its `trusted.svirt.security.ref_selinux` attribute is
///   a positive count (the sVirt driver keeps the original label in `trusted.svirt.security.selinux`). Such a
///   file is skipped, and the skip is reported, unless `force` is set.
/// - The path of each argument is made absolute and its parent's symlinks are resolved, but not the final
///   component's, so a symlink is labelled as the link. Recursion reads directories without following
///   symlinks, on several threads, each with its own `FileContextsMatcher`.
public struct Restorecon: Sendable {
    public struct Options: Sendable {
        /// Only report what would change (`-n`).
        public var dryRun = false
        /// Walk directories (`-R`).
        public var recursive = false
        /// Relabel files svirt labelled for a running VM too (`-F`).
        public var force = false
        /// Worker threads for `recursive`; 0 means one per CPU.
        public var threads = 0
        /// What relative paths are relative to (default: the process's working directory).
        public var workingDirectory: String?

        public init(dryRun: Bool = false, recursive: Bool = false, force: Bool = false, threads: Int = 0,
                    workingDirectory: String? = nil) {
            self.dryRun = dryRun
            self.recursive = recursive
            self.force = force
            self.threads = threads
            self.workingDirectory = workingDirectory
        }
    }

    /// Something that happened to one file.
    public enum Event: Sendable {
        /// The label was changed (or, with `dryRun`, would be). `from` is nil when the file had no label.
        case relabeled(path: [UInt8], from: String?, to: String, dryRun: Bool)
        /// Skipped: svirt labelled the file for a running VM (`count` users); `original` is the label it keeps
        /// to restore.
        case skippedHeldBySVirt(path: [UInt8], count: Int, current: String?, original: String?)
        /// file_contexts gives the path no label (`<<none>>` or no matching line), so it was left alone.
        case noDefaultLabel(path: [UInt8])
        /// The file could not be read or labelled.
        case failed(path: [UInt8], message: String)
        /// A hard-linked file whose inode another path already claimed with another default label: as setfiles
        /// does, the inode keeps the first path's label (`using`) and this path is left alone.
        case conflictingSpecifications(path: [UInt8], other: [UInt8], using: String)
    }

    public struct Summary: Sendable, Equatable {
        public var checked = 0
        public var unchanged = 0
        public var relabeled = 0
        public var skippedHeldBySVirt = 0
        public var noDefaultLabel = 0
        public var failed = 0
        /// Hard-linked paths left alone because their inode was claimed by another path's label.
        public var conflicting = 0

        public init() {}

        mutating func add(_ o: Summary) {
            checked += o.checked; unchanged += o.unchanged; relabeled += o.relabeled
            skippedHeldBySVirt += o.skippedHeldBySVirt; noDefaultLabel += o.noDefaultLabel; failed += o.failed
            conflicting += o.conflicting
        }
    }

    /// The attribute where the sVirt driver keeps a file's original label.
    public static let rememberedLabelAttribute = "trusted.svirt.security.selinux"
    /// The attribute where the sVirt driver counts the running VMs that use a file (decimal text).
    public static let referenceCountAttribute = "trusted.svirt.security.ref_selinux"

    public let fileContexts: FileContexts
    public let options: Options

    public init(fileContexts: FileContexts, options: Options = Options()) {
        self.fileContexts = fileContexts
        self.options = options
    }

    /// Restores the labels of `paths` (and, with `recursive`, of everything under them). `events` is called from
    /// the worker threads, one call per event; `progress`, when given, is called about five times a second
    /// with the number of files checked so far.
    public func run(_ paths: [String], events: @escaping @Sendable (Event) -> Void,
                    progress: (@Sendable (Int) -> Void)? = nil) -> Summary {
        let state = WalkState()
        let monitor = progress.map { report in
            Thread {
                while !state.finished.load(ordering: .acquiring) {
                    report(state.checked.load(ordering: .relaxed))
                    usleep(200_000)
                }
            }
        }
        monitor?.start()
        var total = Summary()
        var worker = Worker(restorecon: self, state: state, events: events)
        for p in paths {
            guard var path = Restorecon.resolve(p, in: options.workingDirectory) else {
                total.failed += 1
                events(.failed(path: Array(p.utf8), message: "cannot resolve the path: \(String(cString: strerror(errno)))"))
                continue
            }
            guard let type = worker.lstatType(&path) else { continue }
            worker.check(&path, type: type)
            if options.recursive, type == .directory { state.push(path) }
        }
        if options.recursive {
            let count = options.threads > 0 ? options.threads : max(1, min(16, ProcessInfo.processInfo.activeProcessorCount))
            let results = Mutex<Summary>(Summary())
            let threads = (0..<count).map { _ in
                Thread {
                    var w = Worker(restorecon: self, state: state, events: events)
                    w.drain()
                    let s = w.summary
                    results.withLock { $0.add(s) }
                    _ = state.exited.add(1, ordering: .releasing)
                }
            }
            threads.forEach { $0.start() }
            state.waitUntilDone()
            // No work is left; wait until every worker has handed in its summary.
            while state.exited.load(ordering: .acquiring) < count { usleep(1_000) }
            total.add(results.withLock { $0 })
        }
        total.add(worker.summary)
        state.finished.store(true, ordering: .releasing)
        if let progress { progress(state.checked.load(ordering: .relaxed)) }
        return total
    }

    /// The absolute path with the parent's symlinks resolved and the last component kept, as bytes.
    static func resolve(_ path: String, in directory: String?) -> [UInt8]? {
        var p = path
        if !p.hasPrefix("/") { p = (directory ?? FileManager.default.currentDirectoryPath) + "/" + p }
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        func real(_ s: String) -> [UInt8]? {
            guard let r = realpath(s, nil) else { return nil }
            defer { free(r) }
            return Array(UnsafeBufferPointer(start: UnsafeRawPointer(r).assumingMemoryBound(to: UInt8.self), count: strlen(r)))
        }
        guard let slash = p.lastIndex(of: "/") else { return real(p) }
        let last = String(p[p.index(after: slash)...])
        if last.isEmpty || last == "." || last == ".." { return real(p) }
        let parent = slash == p.startIndex ? "/" : String(p[..<slash])
        guard var base = real(parent) else { return nil }
        if base != [UInt8(ascii: "/")] { base.append(UInt8(ascii: "/")) }
        return base + Array(last.utf8)
    }
}

/// Work shared by the threads of one run: the directories left to read, and the hard-linked inodes labelled.
final class WalkState: Sendable {
    let queue = Mutex<(directories: [[UInt8]], busy: Int)>(([], 0))
    /// Inodes with more than one link, by (device, inode): the first path that reached each and its label.
    let linked = Mutex<[InodeKey: (path: [UInt8], context: String)]>([:])

    struct InodeKey: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// What happened when a path claimed its inode for `context`.
    enum Claim {
        /// The first path of the inode: label it.
        case first
        /// Another path claimed it with the same label: nothing more to do.
        case same
        /// Another path claimed it with another label, which the inode keeps.
        case conflict(other: [UInt8], using: String)
    }

    /// Claims a hard-linked inode for `path` and `context` (setfiles' association of inodes and labels).
    func claim(_ key: InodeKey, path: [UInt8], context: String) -> Claim {
        linked.withLock { map in
            if let prior = map[key] {
                return prior.context == context ? .same : .conflict(other: prior.path, using: prior.context)
            }
            map[key] = (path, context)
            return .first
        }
    }
    let condition = NSCondition()
    let checked = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)
    let exited = Atomic<Int>(0)
    let done = Atomic<Bool>(false)

    func push(_ directory: [UInt8]) {
        queue.withLock { $0.directories.append(directory) }
    }

    /// The next directory to read, or nil when there is none and no thread can add more.
    func next() -> [UInt8]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let taken: [UInt8]?? = queue.withLock { q in
                if let d = q.directories.popLast() { q.busy += 1; return .some(d) }
                return q.busy == 0 ? .some(nil) : nil
            }
            switch taken {
            case .some(.some(let d)): return d
            case .some(.none):
                done.store(true, ordering: .releasing)
                condition.broadcast()
                return nil
            case .none: condition.wait()
            }
        }
    }

    /// A thread finished reading a directory and found `found` subdirectories.
    func finished(found: [[UInt8]]) {
        condition.lock()
        queue.withLock { q in
            q.directories.append(contentsOf: found)
            q.busy -= 1
        }
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilDone() {
        condition.lock()
        while !done.load(ordering: .acquiring) { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05)) }
        condition.unlock()
    }
}

/// One thread's part of a run.
struct Worker {
    let restorecon: Restorecon
    let state: WalkState
    let events: @Sendable (Restorecon.Event) -> Void
    let matcher: FileContextsMatcher
    var summary = Restorecon.Summary()

    init(restorecon: Restorecon, state: WalkState, events: @escaping @Sendable (Restorecon.Event) -> Void) {
        self.restorecon = restorecon
        self.state = state
        self.events = events
        matcher = restorecon.fileContexts.makeMatcher()
    }

    mutating func drain() {
        while let dir = state.next() {
            var found: [[UInt8]] = []
            read(dir, subdirectories: &found)
            state.finished(found: found)
        }
    }

    /// Calls `body` with `path` as a C string (a NUL is appended for the call and removed after it).
    static func withCPath<R>(_ path: inout [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        path.append(0)
        defer { path.removeLast() }
        return try path.withUnsafeBufferPointer { p in
            try p.withMemoryRebound(to: CChar.self) { c in
                guard let base = c.baseAddress else { return try "".withCString(body) }
                return try body(base)
            }
        }
    }

    /// The lstat type of `path` (which gets a NUL appended and removed), or nil after reporting an error.
    mutating func lstatType(_ path: inout [UInt8]) -> FileType? {
        var st = stat()
        let rc = Worker.withCPath(&path) { lstat($0, &st) }
        if rc != 0 {
            summary.failed += 1
            events(.failed(path: path, message: "lstat: \(String(cString: strerror(errno)))"))
            return nil
        }
        return FileType(mode: UInt32(st.st_mode))
    }

    /// Reads one directory: checks each entry and collects the subdirectories (symlinks are not followed).
    mutating func read(_ dir: [UInt8], subdirectories: inout [[UInt8]]) {
        var path = dir
        let stream = Worker.withCPath(&path) { opendir($0) }
        guard let stream else {
            summary.failed += 1
            events(.failed(path: dir, message: "cannot read the directory: \(String(cString: strerror(errno)))"))
            return
        }
        defer { closedir(stream) }
        if path != [UInt8(ascii: "/")] { path.append(UInt8(ascii: "/")) }
        let base = path.count
        while let entry = readdir(stream) {
            let type = entry.pointee.d_type
            let name: [UInt8] = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                let bytes = raw.bindMemory(to: UInt8.self)
                let length = bytes.firstIndex(of: 0) ?? bytes.count
                return Array(bytes[0..<length])
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            path.removeSubrange(base...)
            path.append(contentsOf: name)
            var fileType: FileType?
            switch Int32(type) {
            case Int32(DT_REG): fileType = .regular
            case Int32(DT_DIR): fileType = .directory
            case Int32(DT_LNK): fileType = .symbolicLink
            case Int32(DT_FIFO): fileType = .namedPipe
            case Int32(DT_SOCK): fileType = .socket
            case Int32(DT_CHR): fileType = .characterDevice
            case Int32(DT_BLK): fileType = .blockDevice
            default:
                guard let t = lstatType(&path) else { continue }
                fileType = t
            }
            guard let t = fileType else { continue }
            check(&path, type: t)
            if t == .directory { subdirectories.append(path) }
        }
    }

    /// Compares one file's label with its default and sets it when they differ.
    mutating func check(_ path: inout [UInt8], type: FileType) {
        summary.checked += 1
        _ = state.checked.add(1, ordering: .relaxed)
        let match = matcher.lookup(path: path, fileType: type)
        guard case .labeled(let spec) = match else {
            summary.noDefaultLabel += 1
            events(.noDefaultLabel(path: path))
            return
        }
        let wanted = spec.rawContext
        // A hard-linked file is one inode under several paths: it gets one label, the first path's, as setfiles
        // gives it, so a link in a user's directory cannot relabel a system file that was reached first.
        if type == .regular {
            var st = stat()
            if Worker.withCPath(&path, { lstat($0, &st) }) == 0, st.st_nlink > 1 {
                switch state.claim(.init(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)), path: path, context: wanted) {
                case .first:
                    break
                case .same:
                    summary.unchanged += 1
                    return
                case .conflict(let other, let using):
                    summary.conflicting += 1
                    events(.conflictingSpecifications(path: path, other: other, using: using))
                    return
                }
            }
        }
        let current: String?
        do {
            current = try Worker.withCPath(&path) { try ExtendedAttributes.get(ExtendedAttributes.selinux, cPath: $0) }
                .map(ExtendedAttributes.string)
        } catch {
            summary.failed += 1
            events(.failed(path: path, message: "cannot read the label: \(error)"))
            return
        }
        if current == wanted {
            summary.unchanged += 1
            return
        }
        if !restorecon.options.force, let (count, original) = Worker.heldBySVirt(&path) {
            summary.skippedHeldBySVirt += 1
            events(.skippedHeldBySVirt(path: path, count: count, current: current, original: original))
            return
        }
        if restorecon.options.dryRun {
            summary.relabeled += 1
            events(.relabeled(path: path, from: current, to: wanted, dryRun: true))
            return
        }
        do {
            // libselinux writes the context with its terminating NUL; so does svirt.
            try Worker.withCPath(&path) {
                try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array(wanted.utf8) + [0], cPath: $0)
            }
            summary.relabeled += 1
            events(.relabeled(path: path, from: current, to: wanted, dryRun: false))
        } catch {
            summary.failed += 1
            events(.failed(path: path, message: "cannot set the label \(wanted): \(error)"))
        }
    }

    /// The sVirt driver's reference count on `path` when it is positive, with the original label it keeps.
    static func heldBySVirt(_ path: inout [UInt8]) -> (Int, String?)? {
        withCPath(&path) { c -> (Int, String?)? in
            guard let raw = try? ExtendedAttributes.get(Restorecon.referenceCountAttribute, cPath: c),
                  let count = Int(ExtendedAttributes.string(raw).trimmingCharacters(in: .whitespacesAndNewlines)),
                  count > 0
            else { return nil }
            let original = (try? ExtendedAttributes.get(Restorecon.rememberedLabelAttribute, cPath: c))
                .flatMap { $0 }.map(ExtendedAttributes.string)
            return (count, original)
        }
    }
}
