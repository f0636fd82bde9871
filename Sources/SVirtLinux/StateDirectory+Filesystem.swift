import Glibc
import SVirt

/// The filesystem under the state directory, asked when a write there fails: a full or read-only filesystem is
/// said as such, with its fix, and never reported as a damaged registry (whose remedy, moving the registry aside,
/// would throw away every definition on a disk that was only full).
extension StateDirectory {
    /// What is wrong with the filesystem holding a path.
    public enum FilesystemCondition: Sendable, Equatable {
        /// Less than `StateDirectory.nearlyFull` bytes (or no inode) left for svirt's user.
        case full(availableBytes: UInt64)
        /// Mounted read-only.
        case readOnly
    }

    /// Below this many free bytes a failed write in the state directory is taken for a full filesystem: SQLite needs
    /// room for its WAL index (32 KiB) and log, or its rollback journal, on top of the pages it changes.
    public static let nearlyFull: UInt64 = 1 << 20

    /// The condition of the filesystem holding `path` (or, when `path` does not exist, its nearest existing
    /// parent); nil when it is neither full nor read-only, or cannot be asked.
    public static func condition(of path: String) -> FilesystemCondition? {
        var p = path
        var s = statvfs()
        while statvfs(p, &s) != 0 {
            guard errno == ENOENT, let slash = p.lastIndex(of: "/"), slash != p.startIndex else { return nil }
            p = String(p[..<slash])
        }
        if s.f_flag & UInt(ST_RDONLY) != 0 { return .readOnly }
        let available = UInt64(s.f_bavail) * UInt64(s.f_frsize)
        if available < nearlyFull || (s.f_files > 0 && s.f_favail == 0) { return .full(availableBytes: available) }
        return nil
    }

    /// The sentence that says what is wrong with the filesystem holding `path` and what to do about it.
    public static func explain(_ condition: FilesystemCondition, _ path: String) -> String {
        switch condition {
        case .full(let available):
            let free = available >= 1024 ? "\(available / 1024) KiB" : "\(available) bytes"
            return "the filesystem holding \(path) is full (\(free) free): free space on it and run the command again; "
                + "the registry is not damaged, and what failed was not written"
        case .readOnly:
            return "the filesystem holding \(path) is mounted read-only: remount it read-write "
                + "(mount -o remount,rw on its mount point) or choose another state directory with --state-dir"
        }
    }

    /// The error for a failed write at `path` in the state directory: the filesystem's condition with its fix when
    /// that explains the failure, else `what` with `remedy`.
    static func failure(at path: String, _ what: String, remedy: String? = nil, cause: String? = nil) -> SVirtError {
        let boxed = cause.map(SendableBox.init)
        switch condition(of: path) {
        case .full(let available)?:
            return SVirtError(.filesystemFull, "\(what); " + explain(.full(availableBytes: available), path), cause: boxed)
        case .readOnly?:
            return SVirtError(.readOnlyFilesystem, "\(what); " + explain(.readOnly, path), cause: boxed)
        case nil:
            return SVirtError(.registry, remedy.map { "\(what); \($0)" } ?? what, cause: boxed)
        }
    }
}
