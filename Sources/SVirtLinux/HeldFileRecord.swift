import CSVirt
import Foundation
import Glibc
import SVirt

/// A file a start held, as the running record keeps it: the path the plan named, the canonical path it was
/// opened at, its (device, inode), and a file handle (`name_to_handle_at`) with the mount it lives on. Stop
/// opens the handle, which names the inode itself, so owners and labels go back to the very file the VM was
/// given, wherever its path points by then.
public struct HeldFileRecord: Sendable, Hashable, Codable {
    public var planPath: String
    public var path: String
    public var device: UInt64
    public var inode: UInt64
    /// The handle's bytes, hex; nil when the filesystem gives none.
    public var handle: String?
    public var handleType: Int32
    public var mountID: Int32

    /// The record of a held file (nil when the file is not one svirt opened).
    static func make(planPath: String, file: any LabeledFile) -> HeldFileRecord? {
        guard let f = file as? XattrFile, let facts = f.facts else { return nil }
        var buffer = [UInt8](repeating: 0, count: 128)
        var length = 0, type: Int32 = 0, mount: Int32 = 0
        let rc = buffer.withUnsafeMutableBufferPointer { b in
            svirt_file_handle(f.fd, b.baseAddress, b.count, &length, &type, &mount)
        }
        let hex = rc == 0 ? Hex.encode(buffer.prefix(length)) : nil
        return HeldFileRecord(planPath: planPath, path: f.path, device: facts.device, inode: facts.inode, handle: hex,
                              handleType: type, mountID: mount)
    }

    /// Opens the recorded inode again (O_PATH), checked to be the same (device, inode); nil when the handle is
    /// gone (the file was deleted) or the filesystem cannot open handles.
    func reopen(procRoot: String = "/proc") -> XattrFile? {
        if case .file(let f) = reopened(procRoot: procRoot) { return f }
        return nil
    }

    /// What opening the recorded inode again found.
    enum Reopened {
        case file(XattrFile)
        /// The file was deleted: the handle names no inode any more (ESTALE), or one with no link left.
        case gone
        /// No handle was recorded, its mount is gone, or the filesystem refused for another reason.
        case unavailable
    }

    func reopened(procRoot: String = "/proc") -> Reopened {
        guard let bytes = handle.flatMap(Hex.decode) else { return .unavailable }
        guard let mountPoint = Self.mountPoint(id: mountID) else { return .unavailable }
        let mfd = Glibc.open(mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard mfd >= 0 else { return .unavailable }
        defer { close(mfd) }
        let fd = bytes.withUnsafeBufferPointer { b in
            svirt_open_by_handle(mfd, b.baseAddress, b.count, handleType, svirt_o_path() | O_CLOEXEC | O_NOFOLLOW)
        }
        guard fd >= 0 else { return errno == ESTALE ? .gone : .unavailable }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode else {
            close(fd)
            return .unavailable
        }
        // Deleted, but still open somewhere (or not yet evicted): no path names it, so there is nothing to give back.
        if st.st_nlink == 0 {
            close(fd)
            return .gone
        }
        let facts = FileFacts(device: device, inode: inode, linkCount: UInt64(st.st_nlink),
                              pseudoFilesystem: XattrFileLabelStore.pseudoFilesystem(fd))
        return .file(XattrFile(fd: fd, path: path, kind: XattrFileLabelStore.kind(st.st_mode),
                               filesystem: XattrFileLabelStore.filesystem(fd), facts: facts, procRoot: procRoot))
    }

    /// The mount point of a mount id, from /proc/self/mountinfo (field 5; octal escapes decoded).
    static func mountPoint(id: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ")
            guard fields.count > 4, Int32(fields[0]) == id else { continue }
            return decodeOctal(String(fields[4]))
        }
        return nil
    }

    static func decodeOctal(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A label store that answers for the files a start held: a plan path recorded at start resolves to the inode
/// it named then (through its file handle), and every other path goes to the real store.
struct HeldFileLabelStore: FileLabelStore {
    let base: XattrFileLabelStore
    /// Canonical path at start → the reopened file, and plan path → that canonical path.
    let files: [String: XattrFile]
    let keys: [String: String]
    /// The files deleted while the VM ran (their inodes are gone): nothing is given back to them, and a file that
    /// now has the same path is another file, left alone.
    let gone: [HeldFileRecord]

    init(base: XattrFileLabelStore, records: [HeldFileRecord]) {
        self.base = base
        var files: [String: XattrFile] = [:], keys: [String: String] = [:], gone: [HeldFileRecord] = []
        for r in records {
            switch r.reopened(procRoot: base.procRoot) {
            case .file(let f):
                files[r.path] = f
                keys[r.planPath] = r.path
            case .gone:
                gone.append(r)
                keys[r.planPath] = r.path
            case .unavailable:
                continue
            }
        }
        self.files = files
        self.keys = keys
        self.gone = gone
    }

    /// Whether `planPath` names a held file that was deleted while the VM ran.
    func isGone(_ planPath: String) -> Bool { gone.contains { $0.planPath == planPath || $0.path == planPath } }

    func resolve(_ path: String) throws -> String {
        // As for a path that no longer exists: restore passes over it (stop says why, from `gone`).
        if isGone(path) { throw SVirtError(.notFound, "\(path) was deleted while its VM ran") }
        if let key = keys[path] { return key }
        return try base.resolve(path)
    }

    func open(_ canonicalPath: String) throws -> any LabeledFile {
        if let f = files[canonicalPath] { return f }
        if gone.contains(where: { $0.path == canonicalPath }) {
            throw SVirtError(.notFound, "\(canonicalPath) was deleted while its VM ran")
        }
        return try base.open(canonicalPath)
    }
}
