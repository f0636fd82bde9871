import CSVirt
import Glibc
import SVirt

/// Whether a path call acts on a symlink itself or on what it points to.
public enum SymlinkBehavior: Sendable {
    /// Act on the link itself (`lgetxattr`, `lsetxattr`, ...).
    case noFollow
    /// Act on the link's target (`getxattr`, `setxattr`, ...).
    case follow

    var flag: Int32 { self == .follow ? 1 : 0 }
}

/// An errno from a system call, with the call and the path it was made on.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var path: String
    public var errno: Int32

    public init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    public var description: String { "\(call) '\(path)': \(String(cString: strerror(errno)))" }

    /// True for errors that mean "this filesystem has no such attributes" (EOPNOTSUPP, ENOTSUP).
    public var isUnsupported: Bool { errno == EOPNOTSUPP || errno == ENOTSUP }
}

/// Extended attribute calls (`<sys/xattr.h>`), through the C shim.
public enum ExtendedAttributes {
    /// The attribute that holds a file's SELinux context.
    public static let selinux = "security.selinux"

    /// The value of `name` on `path`, or nil when the file has no such attribute (ENODATA).
    /// The corresponding C functions are `getxattr` and `lgetxattr`.
    public static func get(_ name: String, path: String, symlinks: SymlinkBehavior = .noFollow) throws -> [UInt8]? {
        try read(what: symlinks == .follow ? "getxattr" : "lgetxattr", path: path, name: name) { buf, size in
            svirt_getxattr(path, name, buf, size, symlinks.flag)
        }
    }

    /// The value of `name` on an open file. The corresponding C function is `fgetxattr`.
    public static func get(_ name: String, fd: Int32, path: String = "") throws -> [UInt8]? {
        try read(what: "fgetxattr", path: path, name: name) { buf, size in svirt_fgetxattr(fd, name, buf, size) }
    }

    /// Sets `name` on `path`. The corresponding C functions are `setxattr` and `lsetxattr`.
    public static func set(_ name: String, value: [UInt8], path: String, symlinks: SymlinkBehavior = .noFollow) throws {
        let rc = value.withUnsafeBytes { svirt_setxattr(path, name, $0.baseAddress, $0.count, 0, symlinks.flag) }
        if rc != 0 { throw SystemCallError(call: symlinks == .follow ? "setxattr \(name)" : "lsetxattr \(name)", path: path, errno: errno) }
    }

    /// Sets `name` on an open file. The corresponding C function is `fsetxattr`.
    public static func set(_ name: String, value: [UInt8], fd: Int32, path: String = "") throws {
        let rc = value.withUnsafeBytes { svirt_fsetxattr(fd, name, $0.baseAddress, $0.count, 0) }
        if rc != 0 { throw SystemCallError(call: "fsetxattr \(name)", path: path, errno: errno) }
    }

    /// Removes `name`; a missing attribute is not an error. The corresponding C functions are `removexattr`
    /// and `lremovexattr`.
    public static func remove(_ name: String, path: String, symlinks: SymlinkBehavior = .noFollow) throws {
        if svirt_removexattr(path, name, symlinks.flag) != 0, errno != ENODATA {
            throw SystemCallError(call: "lremovexattr \(name)", path: path, errno: errno)
        }
    }

    /// Removes `name` from an open file; a missing attribute is not an error. The C function is `fremovexattr`.
    public static func remove(_ name: String, fd: Int32, path: String = "") throws {
        if svirt_fremovexattr(fd, name) != 0, errno != ENODATA {
            throw SystemCallError(call: "fremovexattr \(name)", path: path, errno: errno)
        }
    }

    /// The attribute names on `path`. The corresponding C functions are `listxattr` and `llistxattr`.
    public static func list(path: String, symlinks: SymlinkBehavior = .noFollow) throws -> [String] {
        let bytes = try read(what: "llistxattr", path: path, name: "") { buf, size in
            svirt_listxattr(path, buf?.assumingMemoryBound(to: CChar.self), size, symlinks.flag)
        } ?? []
        return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A context string from an attribute value: the bytes up to the first NUL.
    public static func string(_ value: [UInt8]) -> String {
        String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func read(what: String, path: String, name: String,
                             _ call: (UnsafeMutableRawPointer?, Int) -> Int) throws -> [UInt8]? {
        var size = 256
        for _ in 0..<8 {
            var buf = [UInt8](repeating: 0, count: size)
            let n = buf.withUnsafeMutableBytes { call($0.baseAddress, $0.count) }
            if n >= 0 { return Array(buf.prefix(n)) }
            let e = errno
            if e == ENODATA { return nil }
            if e == ERANGE {
                let needed = call(nil, 0)
                if needed < 0 { throw SystemCallError(call: "\(what) \(name)", path: path, errno: errno) }
                size = max(needed, size * 2)
                continue
            }
            throw SystemCallError(call: "\(what) \(name)", path: path, errno: e)
        }
        throw SystemCallError(call: "\(what) \(name)", path: path, errno: ERANGE)
    }
}
