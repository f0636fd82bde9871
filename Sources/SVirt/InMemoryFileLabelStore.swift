import Synchronization

/// A `FileLabelStore` held in memory, for unit tests of the relabel logic: files with attributes, symlinks,
/// filesystems without label support, and failures injected at chosen writes.
public final class InMemoryFileLabelStore: FileLabelStore {
    struct File {
        var kind: FileKind
        var attributes: [String: [UInt8]]
        var filesystem: String
        var supportsAttributes: Bool
    }

    struct State {
        var files: [String: File] = [:]
        var symlinks: [String: String] = [:]
        var writes = 0
        /// Writes that fail: the n-th write (1-based) of any attribute.
        var failAtWrite: Int?
        /// Paths whose `security.selinux` cannot be set, with the error code to throw.
        var failingPaths: [String: SVirtError.Code] = [:]
        /// Paths whose attributes cannot be read.
        var unreadable: Set<String> = []
        /// After this many writes the "process" is dead: every later write is lost, as after SIGKILL.
        var crashAfter: Int?
        var log: [String] = []
    }

    let state = Mutex(State())

    public init() {}

    /// Adds a file (or device node, socket, directory) with a label (nil: none).
    public func add(_ path: String, kind: FileKind = .regular, label: String? = nil, filesystem: String = "ext4",
                    supportsAttributes: Bool = true) {
        state.withLock {
            var attrs: [String: [UInt8]] = [:]
            if let label { attrs[SELinuxLabelAttribute.name] = SELinuxLabelAttribute.encode(label) }
            $0.files[path] = File(kind: kind, attributes: attrs, filesystem: filesystem, supportsAttributes: supportsAttributes)
        }
    }

    /// Adds a symlink at `path` pointing to the absolute `target`.
    public func addSymlink(_ path: String, to target: String) { state.withLock { $0.symlinks[path] = target } }

    /// Makes the `n`-th attribute write from now on fail with EIO.
    public func failAtWrite(_ n: Int) { state.withLock { $0.failAtWrite = $0.writes + n } }

    /// Makes reading any attribute of `path` fail with EIO.
    public func failReading(_ path: String) { state.withLock { _ = $0.unreadable.insert(path) } }

    /// Simulates a crash after `n` more writes: later writes are lost (and throw), until `recover()`.
    public func crash(afterWrites n: Int) { state.withLock { $0.crashAfter = $0.writes + n } }

    /// Ends a simulated crash: the next process writes normally.
    public func recover() { state.withLock { $0.crashAfter = nil } }

    /// How many attribute writes have been made.
    public var writeCount: Int { state.withLock { $0.writes } }

    /// Makes setting `security.selinux` on `path` fail with `code`.
    public func failSetting(_ path: String, with code: SVirtError.Code) { state.withLock { $0.failingPaths[path] = code } }

    /// The label of a file, nil when it has none or does not exist.
    public func label(_ path: String) -> String? {
        state.withLock { $0.files[path]?.attributes[SELinuxLabelAttribute.name].map(SELinuxLabelAttribute.decode) }
    }

    /// The attributes of a file.
    public func attributes(_ path: String) -> [String: String] {
        state.withLock { s in (s.files[path]?.attributes ?? [:]).mapValues { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
    }

    /// Every attribute write so far, as `set NAME PATH` or `remove NAME PATH`.
    public var log: [String] { state.withLock { $0.log } }

    public func resolve(_ path: String) throws -> String {
        var p = path
        for _ in 0..<40 {
            if let t = state.withLock({ $0.symlinks[p] }) { p = t; continue }
            guard state.withLock({ $0.files[p] != nil }) else {
                throw SVirtError(.notFound, "\(path) does not exist")
            }
            return p
        }
        throw SVirtError(.labeling, "\(path): too many levels of symbolic links")
    }

    public func open(_ canonicalPath: String) throws -> any LabeledFile {
        try state.withLock { s in
            if s.symlinks[canonicalPath] != nil {
                throw SVirtError(.labeling, "\(canonicalPath) became a symlink; nothing was labelled through it")
            }
            guard let f = s.files[canonicalPath] else { throw SVirtError(.notFound, "\(canonicalPath) does not exist") }
            return MemoryFile(store: self, path: canonicalPath, kind: f.kind, filesystem: f.filesystem)
        }
    }

    final class MemoryFile: LabeledFile {
        let store: InMemoryFileLabelStore
        let path: String
        let kind: FileKind
        let filesystem: String?

        init(store: InMemoryFileLabelStore, path: String, kind: FileKind, filesystem: String) {
            self.store = store
            self.path = path
            self.kind = kind
            self.filesystem = filesystem
        }

        func attribute(_ name: String) throws -> [UInt8]? {
            try store.state.withLock { s in
                guard let f = s.files[path] else { throw SVirtError(.notFound, "getxattr \(name) \(path): no such file") }
                guard f.supportsAttributes else { throw SVirtError(.unsupported, "getxattr \(name) \(path): operation not supported") }
                if s.unreadable.contains(path) { throw SVirtError(.labeling, "getxattr \(name) \(path): input/output error (injected)") }
                return f.attributes[name]
            }
        }

        func setAttribute(_ name: String, _ value: [UInt8]) throws {
            try write("set \(name) \(path)") { f in f.attributes[name] = value }
        }

        func removeAttribute(_ name: String) throws {
            try write("remove \(name) \(path)") { f in f.attributes[name] = nil }
        }

        func write(_ what: String, _ change: (inout File) -> Void) throws {
            try store.state.withLock { s in
                guard var f = s.files[path] else { throw SVirtError(.notFound, "\(what): no such file") }
                guard f.supportsAttributes else { throw SVirtError(.unsupported, "\(what): operation not supported") }
                if what.hasPrefix("set \(SELinuxLabelAttribute.name) "), let code = s.failingPaths[path] {
                    throw SVirtError(code, "\(what): injected failure")
                }
                if let c = s.crashAfter, s.writes >= c { throw SVirtError(.labeling, "\(what): the process is dead (simulated crash)") }
                s.writes += 1
                if let n = s.failAtWrite, s.writes == n { throw SVirtError(.labeling, "\(what): input/output error (injected)") }
                change(&f)
                s.files[path] = f
                s.log.append(what)
            }
        }
    }
}
