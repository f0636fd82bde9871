import CSVirt
import Glibc
import SVirt

/// Gives a guest's files to the user QEMU runs as, and gives them back, as libvirt's DAC driver does: the
/// original owner (`+uid:+gid`) is remembered on the file in `trusted.svirt.security.dac` with the same
/// crash-safe record `RememberedLabels` keeps for SELinux labels (holders, refcount, boot time), so a disk two
/// guests share goes back to its owner only when the last one stops.
///
/// Every path is opened once without following symlinks (`XattrFileLabelStore`) and its owner is changed
/// through that descriptor (`fchownat(fd, "", AT_EMPTY_PATH)`), so a symlink swapped in cannot redirect it.
public struct DACRelabeler: Sendable {
    public var store: XattrFileLabelStore
    public var records: RememberedLabels
    public var bootTime: Int

    public init(bootTime: Int, store: XattrFileLabelStore = XattrFileLabelStore()) {
        self.store = store
        self.bootTime = bootTime
        records = RememberedLabels(model: "dac")
    }

    /// What happened to one path.
    public struct Item: Sendable, Hashable {
        public var path: String
        /// The owner before (`+uid:+gid`).
        public var before: String
        /// The owner after.
        public var after: String
        public var note: String?
    }

    /// The paths of `plan` whose owners change: every local path QEMU opens (disks, backing and read-only images,
    /// kernel, initrd, character device files, the runtime directory), except device nodes the XML does not
    /// hand over and paths under `<seclabel model='dac' relabel='no'>`.
    public static func paths(_ plan: LabelPlan, domain: DomainDefinition) -> [String] {
        if let dac = domain.seclabel(model: "dac"), !dac.relabel { return [] }
        var skip = Set<String>()
        for d in domain.disks where d.seclabels.forModel("dac")?.relabel == false { if let p = d.path { skip.insert(p) } }
        for c in domain.characterDevices where c.seclabels.forModel("dac")?.relabel == false { if let p = c.path { skip.insert(p) } }
        var seen = Set<String>()
        var out: [String] = []
        for e in plan.entries where e.path.hasPrefix("/") && e.kind != .filesystem && e.kind != .loader {
            if skip.contains(e.path) { continue }
            if e.kind == .hostDevice || e.kind == .tpm || e.kind == .input { continue }
            if seen.insert(e.path).inserted { out.append(e.path) }
        }
        return out
    }

    static func owner(_ st: stat) -> String { "+\(st.st_uid):+\(st.st_gid)" }

    static func parseOwner(_ text: String) -> (UInt32, UInt32)? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].hasPrefix("+"), parts[1].hasPrefix("+"),
              let u = UInt32(parts[0].dropFirst()), let g = UInt32(parts[1].dropFirst()) else { return nil }
        return (u, g)
    }

    func open(_ path: String) throws -> XattrFile {
        let canonical = try store.resolve(path)
        guard let f = try store.open(canonical) as? XattrFile else {
            throw SVirtError(.labeling, "\(canonical): the file store returned an unexpected file")
        }
        return f
    }

    func currentOwner(_ f: XattrFile) throws -> stat {
        var st = stat()
        guard fstat(f.fd, &st) == 0 else {
            throw SVirtError(.labeling, "cannot stat \(f.path): \(String(cString: strerror(errno)))",
                             cause: SystemCallError(call: "fstat", path: f.path, errno: errno))
        }
        return st
    }

    func chown(_ f: XattrFile, _ uid: UInt32, _ gid: UInt32) throws {
        guard svirt_fchown_path_fd(f.fd, uid, gid) == 0 else {
            let e = errno
            throw SVirtError(e == EROFS ? .unsupported : .labeling,
                             "cannot give \(f.path) to \(uid):\(gid): \(String(cString: strerror(e)))",
                             cause: SystemCallError(call: "fchownat", path: f.path, errno: e))
        }
    }

    /// Gives every path to `user` for the domain `holder`, remembering the original owners. On failure the
    /// owners already changed are given back and the error names the path.
    public func labelAll(_ paths: [String], user: GuestUser, holder: String) throws -> [Item] {
        var opened: [XattrFile] = []
        for p in paths { opened.append(try open(p)) }
        return try labelAll(files: opened, user: user, holder: holder)
    }

    /// Gives every held file to `user` (see `labelAll(_:user:holder:)`). The files are the ones the start opened
    /// and checked once; no path is resolved again, so a path swapped for a symlink since then changes nothing.
    public func labelAll(files opened: [any LabeledFile], user: GuestUser, holder: String) throws -> [Item] {
        var done: [Item] = []
        var files: [XattrFile] = []
        var seen = Set<String>()
        do {
            for held in opened {
                guard let f = held as? XattrFile else {
                    throw SVirtError(.labeling, "\(held.path): not a file svirt opened on this host")
                }
                guard seen.insert(f.path).inserted else { continue }
                let st = try currentOwner(f)
                let before = Self.owner(st)
                switch try records.remember(original: before, holder: holder, on: f, bootTime: bootTime) {
                case .first, .joined:
                    break
                case .unsupported:
                    throw SVirtError(.unsupported, "\(f.path): its filesystem keeps no \(records.labelAttribute) attribute, so "
                                     + "svirt cannot remember its owner \(before); move the file, or set user = root in svirt.conf")
                }
                if st.st_uid != user.uid || st.st_gid != user.gid {
                    do {
                        try chown(f, user.uid, user.gid)
                    } catch {
                        _ = try? undoRecord(f, holder: holder)
                        throw error
                    }
                }
                files.append(f)
                done.append(Item(path: f.path, before: before, after: user.owner))
            }
        } catch let error as SVirtError {
            let problems = undo(files, holder: holder)
            throw SVirtError(error.code, error.message + (problems.isEmpty ? (files.isEmpty ? "" : "; the owners already changed were given back")
                                                          : "; giving back the owners already changed failed too: "
                                                          + problems.joined(separator: "; ")), cause: error)
        }
        return done
    }

    func undoRecord(_ f: XattrFile, holder: String) throws {
        if case .restore = try records.recall(holder: holder, on: f, bootTime: bootTime) { try records.forget(f) }
    }

    func undo(_ files: [XattrFile], holder: String) -> [String] {
        var problems: [String] = []
        for f in files.reversed() {
            do {
                if case .restore(let original) = try records.recall(holder: holder, on: f, bootTime: bootTime) {
                    if let o = original.flatMap(Self.parseOwner) { try chown(f, o.0, o.1) }
                    try records.forget(f)
                }
            } catch {
                problems.append("\(f.path): \(error)")
            }
        }
        return problems
    }

    /// Gives every path its remembered owner back when `holder` is its last user. Keeps going past failures;
    /// returns what was done and the failures.
    public func restoreAll(_ paths: [String], holder: String) -> (items: [Item], failures: [String]) {
        restore(paths.map { p in { () throws -> XattrFile? in
            do { return try open(p) } catch let e as SVirtError where e.code == .notFound { return nil }
        } }, names: paths, holder: holder)
    }

    /// Gives held files their remembered owners back (an undone start: the files it opened itself).
    public func restoreAll(files: [any LabeledFile], holder: String) -> (items: [Item], failures: [String]) {
        restore(files.map { f in { () throws -> XattrFile? in f as? XattrFile } }, names: files.map(\.path), holder: holder)
    }

    func restore(_ openers: [() throws -> XattrFile?], names: [String], holder: String) -> (items: [Item], failures: [String]) {
        var items: [Item] = []
        var failures: [String] = []
        var seen = Set<String>()
        for (p, opener) in zip(names, openers) {
            do {
                guard let f = try opener(), seen.insert(f.path).inserted else { continue }
                let now = Self.owner(try currentOwner(f))
                switch try records.recall(holder: holder, on: f, bootTime: bootTime) {
                case .restore(let original):
                    guard let text = original, let o = Self.parseOwner(text) else {
                        try records.forget(f)
                        failures.append("\(f.path): the remembered owner '\(original ?? "")' is not +uid:+gid; it keeps \(now)")
                        continue
                    }
                    try chown(f, o.0, o.1)
                    try records.forget(f)
                    items.append(Item(path: f.path, before: now, after: text))
                case .stillInUse(let remaining, _):
                    items.append(Item(path: f.path, before: now, after: now,
                                      note: "still used by \((remaining ?? []).map { "'\($0)'" }.joined(separator: ", "))"))
                case .notHolder, .noRecord, .partialRemoved, .unsupported:
                    continue
                case .staleRemoved(let boot):
                    failures.append("\(f.path): the remembered owner was recorded at boot \(boot), before this boot; "
                                    + "the record was discarded and the file keeps \(now)")
                }
            } catch {
                failures.append("\(p): \(error)")
            }
        }
        return (items, failures)
    }
}
