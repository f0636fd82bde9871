import CSVirt
import Foundation
import Glibc
import SVirt

/// The `FileLabelStore` of real files: labels and svirt's records are extended attributes.
///
/// A path is resolved once (`resolve`: only symlinks root could have placed are followed), then opened with `openat2(O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS)`, so
/// a symlink placed on any component after the check makes the open fail instead of redirecting a label. Every
/// attribute call then goes through `/proc/self/fd/N`, which names exactly the opened file, whatever it is: a
/// regular file, a device node, a FIFO or a socket (none of which need to be opened for reading, which could
/// block or have side effects).
public struct XattrFileLabelStore: FileLabelStore {
    /// Where procfs is mounted.
    public var procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    /// The absolute path with `.`, `..` and symlinks resolved, following only the symlinks svirt can trust:
    /// owned by root (or by svirt's own user) in a directory that only root (or that user) can change, or that
    /// is sticky. A symlink anyone else could have placed or replaced is refused with the path and the fix:
    /// following it would let its owner point svirt, running as root, at any file on the host.
    public func resolve(_ path: String) throws -> String {
        try Self.resolveTrusted(path)
    }

    static func resolveTrusted(_ input: String) throws -> String {
        let me = geteuid()
        let absolute = input.hasPrefix("/") ? input : FileManager.default.currentDirectoryPath + "/" + input
        var pending: [Substring] = absolute.split(separator: "/", omittingEmptySubsequences: true).reversed()
        var resolved: [Substring] = []
        var links = 0
        func joined(_ parts: [Substring]) -> String { "/" + parts.joined(separator: "/") }
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let candidate = joined(resolved + [part])
            var st = stat()
            guard lstat(candidate, &st) == 0 else {
                let e = errno
                if e == ENOENT || e == ENOTDIR {
                    throw SVirtError(.notFound, "\(input) does not exist", cause: SystemCallError(call: "lstat", path: candidate, errno: e))
                }
                throw SVirtError(.labeling, "cannot resolve \(input): \(candidate): \(String(cString: strerror(e)))",
                                 cause: SystemCallError(call: "lstat", path: candidate, errno: e))
            }
            guard (st.st_mode & S_IFMT) == S_IFLNK else {
                resolved.append(part)
                continue
            }
            links += 1
            guard links <= 40 else {
                throw SVirtError(.labeling, "cannot resolve \(input): too many symlinks", cause: SystemCallError(call: "lstat", path: candidate, errno: ELOOP))
            }
            let parent = joined(resolved)
            var ps = stat()
            lstat(parent, &ps)
            let trustedOwner = st.st_uid == 0 || st.st_uid == me
            let parentOwner = ps.st_uid == 0 || ps.st_uid == me
            let parentClosed = ps.st_mode & 0o022 == 0 || ps.st_mode & S_ISVTX != 0
            guard trustedOwner, parentOwner, parentClosed else {
                throw SVirtError(.labeling, "\(input): \(candidate) is a symlink owned by uid \(st.st_uid) in \(parent) (owned by uid "
                                 + "\(ps.st_uid), mode \(String(ps.st_mode & 0o7777, radix: 8))), so someone other than root could point it "
                                 + "at any file; svirt follows only root's symlinks in directories only root can change. Give the "
                                 + "real path of the file")
            }
            var buffer = [CChar](repeating: 0, count: 4097)
            let n = readlink(candidate, &buffer, 4096)
            guard n >= 0 else {
                throw SVirtError(.labeling, "cannot read the symlink \(candidate): \(String(cString: strerror(errno)))")
            }
            let target = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") { resolved = [] }
            pending.append(contentsOf: target.split(separator: "/", omittingEmptySubsequences: true).reversed())
        }
        return joined(resolved)
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
        let facts = FileFacts(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), linkCount: UInt64(st.st_nlink),
                              pseudoFilesystem: Self.pseudoFilesystem(fd))
        return XattrFile(fd: fd, path: canonicalPath, kind: kind, filesystem: Self.filesystem(fd), facts: facts,
                         procRoot: procRoot)
    }

    /// Kernel filesystems that are interfaces, not storage, by `statfs` magic (linux/magic.h). devtmpfs and
    /// devpts are not here: device nodes are judged as devices.
    static let pseudoFilesystems: [UInt64: String] = [
        0x9FA0: "proc", 0x6265_6572: "sysfs", 0x0027_E0EB: "cgroup", 0x6367_7270: "cgroup2",
        0x7372_7279: "securityfs", 0xF97C_FF8C: "selinuxfs", 0x6462_6720: "debugfs", 0x7472_6163: "tracefs",
        0xCAFE_4A11: "bpf", 0x6265_6570: "configfs", 0x6165_676C: "pstore", 0xDE5E_81E4: "efivarfs",
        0x4249_4E4D: "binfmt_misc", 0x6573_5543: "fusectl", 0x6E73_6673: "nsfs", 0x1980_0202: "mqueue",
        0x4341_5D53: "smackfs", 0x5A3C_69F0: "apparmorfs", 0x0000_9FA2: "usbdevfs", 0x6759_6969: "rpc_pipefs",
        0x5049_5045: "pipefs", 0x5343_4B53: "sockfs", 0x0BAD_1DEA: "futexfs", 0x0961_1A7B: "anon_inodefs",
    ]

    /// The pseudo filesystem an open file lives on, or nil for a real one.
    static func pseudoFilesystem(_ fd: Int32) -> String? {
        let t = svirt_fstatfs_type(fd)
        guard t >= 0 else { return nil }
        return pseudoFilesystems[UInt64(t) & 0xFFFF_FFFF]
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
    let facts: FileFacts?

    init(fd: Int32, path: String, kind: FileKind, filesystem: String?, facts: FileFacts? = nil, procRoot: String) {
        self.fd = fd
        self.path = path
        self.kind = kind
        self.filesystem = filesystem
        self.facts = facts
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
            return "the SELinux policy refused this relabel: a validatetrans rule, logged by the kernel as "
                + "op=security_validate_transition; under an MLS policy only a domain with mlsfileupgrade and "
                + "mlsfiledowngrade may change a file's level, which Debian's virtd_t lacks: load svirt's policy "
                + "module (semodule -i selinux/svirt.cil selinux/svirt-mls.cil; README: SELinux policy module)"
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
        case ENOSPC, EDQUOT:
            // ext4 and others keep extended attributes that do not fit in the inode in one block of their own: on a
            // full filesystem (or a file whose attribute space is used up) svirt's record of the original cannot be
            // written, and the label is never changed without it.
            return SVirtError(.filesystemFull, "\(call) on \(path): \(why): the filesystem holding it has no room "
                              + "for the record svirt keeps of the file's original label and owner, so the file was not "
                              + "relabelled; free space on that filesystem (or remove extended attributes the file no longer "
                              + "needs) and run the command again", cause: cause)
        case EPERM where call.contains("trusted.") || call.contains("security."):
            return SVirtError(.labeling, "\(call) on \(path): \(why) (\(Self.permissionHint(call, euid: geteuid())))", cause: cause)
        default:
            return SVirtError(.labeling, "\(call) on \(path): \(why)", cause: cause)
        }
    }
}
