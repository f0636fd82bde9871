import CSVirt
import Glibc
import SVirt

/// The `FileLabelStore` of real files: labels and svirt's records are extended attributes.
///
/// A path is resolved once (`realpath`), then opened with `openat2(O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS)`, so
/// a symlink placed on any component after the check makes the open fail instead of redirecting a label. Every
/// attribute call then goes through `/proc/self/fd/N`, which names exactly the opened file, whatever it is: a
/// regular file, a device node, a FIFO or a socket (none of which need to be opened for reading, which could
/// block or have side effects).
public struct XattrFileLabelStore: FileLabelStore {
    /// Where procfs is mounted.
    public var procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    public func resolve(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            let e = errno
            if e == ENOENT { throw SVirtError(.notFound, "\(path) does not exist", cause: SystemCallError(call: "realpath", path: path, errno: e)) }
            throw SVirtError(.labeling, "cannot resolve \(path): \(String(cString: strerror(e)))",
                             cause: SystemCallError(call: "realpath", path: path, errno: e))
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func open(_ canonicalPath: String) throws -> any LabeledFile {
        let flags = UInt64(UInt32(bitPattern: svirt_o_path() | O_NOFOLLOW | O_CLOEXEC))
        var fd = svirt_openat2(AT_FDCWD, canonicalPath, flags, 0, svirt_resolve_no_symlinks())
        if fd < 0, errno == ENOSYS {
            // Before Linux 5.6: only the last component is checked.
            fd = Glibc.open(canonicalPath, svirt_o_path() | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else {
            let e = errno
            let cause = SystemCallError(call: "openat2", path: canonicalPath, errno: e)
            switch e {
            case ENOENT: throw SVirtError(.notFound, "\(canonicalPath) does not exist", cause: cause)
            case ELOOP, EXDEV:
                throw SVirtError(.labeling, "\(canonicalPath) changed while svirt labelled it (a symlink appeared on the path); "
                                 + "nothing was labelled through it", cause: cause)
            default:
                throw SVirtError(.labeling, "cannot open \(canonicalPath): \(String(cString: strerror(e)))", cause: cause)
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw SVirtError(.labeling, "cannot stat \(canonicalPath): \(String(cString: strerror(e)))")
        }
        let kind = Self.kind(st.st_mode)
        if kind == .symlink {
            close(fd)
            throw SVirtError(.labeling, "\(canonicalPath) changed while svirt labelled it (it became a symlink); "
                             + "nothing was labelled through it")
        }
        return XattrFile(fd: fd, path: canonicalPath, kind: kind, filesystem: Self.filesystem(fd), procRoot: procRoot)
    }

    static func kind(_ mode: mode_t) -> FileKind {
        switch mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFBLK: return .blockDevice
        case S_IFCHR: return .characterDevice
        case S_IFIFO: return .fifo
        case S_IFSOCK: return .socket
        case S_IFLNK: return .symlink
        default: return .unknown
        }
    }

    /// The filesystem type of an open file, from `fstatfs`'s magic number.
    static func filesystem(_ fd: Int32) -> String? {
        let t = svirt_fstatfs_type(fd)
        guard t >= 0 else { return nil }
        let magic = UInt64(t) & 0xFFFF_FFFF
        let names: [UInt64: String] = [
            0x6969: "nfs", 0xEF53: "ext4", 0x0102_1994: "tmpfs", 0x5846_5342: "xfs", 0x9123_683E: "btrfs",
            0x8584_58F6: "ramfs", 0x794C_7630: "overlay", 0x9FA0: "proc", 0x6265_6572: "sysfs", 0x6573_5546: "fuse",
            0xFF53_4D42: "cifs", 0xFE53_4D42: "smb2", 0x00C3_6400: "ceph", 0x0102_1997: "9p", 0x4D44: "vfat",
            0x2FC1_2FC1: "zfs", 0x0000_1CD1: "devpts", 0x7372_7279: "securityfs",
        ]
        return names[magic] ?? "0x" + String(magic, radix: 16)
    }
}

/// A file opened with O_PATH; attribute calls go through `/proc/self/fd/N`.
final class XattrFile: LabeledFile {
    let fd: Int32
    let path: String
    let kind: FileKind
    let filesystem: String?
    let handle: String

    init(fd: Int32, path: String, kind: FileKind, filesystem: String?, procRoot: String) {
        self.fd = fd
        self.path = path
        self.kind = kind
        self.filesystem = filesystem
        handle = "\(procRoot)/self/fd/\(fd)"
    }

    deinit { close(fd) }

    func attribute(_ name: String) throws -> [UInt8]? {
        do {
            return try ExtendedAttributes.get(name, path: handle, symlinks: .follow)
        } catch let e as SystemCallError {
            throw mapped(e, "getxattr \(name)")
        }
    }

    func setAttribute(_ name: String, _ value: [UInt8]) throws {
        do {
            try ExtendedAttributes.set(name, value: value, path: handle, symlinks: .follow)
        } catch let e as SystemCallError {
            throw mapped(e, "setxattr \(name)")
        }
    }

    func removeAttribute(_ name: String) throws {
        do {
            try ExtendedAttributes.remove(name, path: handle, symlinks: .follow)
        } catch let e as SystemCallError {
            throw mapped(e, "removexattr \(name)")
        }
    }

    /// Why an xattr call got EPERM: not root, or, as root, the SELinux policy refusing a relabel of
    /// `security.selinux` (a validatetrans or mlsvalidatetrans rule, e.g. the mls policy refusing virtd_t to
    /// raise a file from s0 to s0:cX,cY), which the kernel logs as an SELinux error, not as an AVC denial.
    static func permissionHint(_ call: String, euid: uid_t) -> String {
        if euid == 0 && call.contains("security.selinux") {
            return "the SELinux policy refused this relabel: a validatetrans rule, logged by the kernel as op=security_validate_transition"
        }
        return "security.* and trusted.* attributes need root"
    }

    /// A system call error as an `SVirtError` naming the real path.
    func mapped(_ e: SystemCallError, _ call: String) -> SVirtError {
        let why = String(cString: strerror(e.errno))
        let cause = SystemCallError(call: call, path: path, errno: e.errno)
        switch e.errno {
        case EOPNOTSUPP, ENOTSUP, EROFS:
            return SVirtError(.unsupported, "\(call) on \(path): \(why)", cause: cause)
        case ENOENT:
            return SVirtError(.notFound, "\(call) on \(path): \(why)", cause: cause)
        case EPERM where call.contains("trusted.") || call.contains("security."):
            return SVirtError(.labeling, "\(call) on \(path): \(why) (\(Self.permissionHint(call, euid: geteuid())))", cause: cause)
        default:
            return SVirtError(.labeling, "\(call) on \(path): \(why)", cause: cause)
        }
    }
}
