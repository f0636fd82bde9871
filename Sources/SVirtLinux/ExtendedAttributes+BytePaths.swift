import CSVirt
import Glibc

extension ExtendedAttributes {
    /// The value of `name` on the file at `path`, a NUL-terminated byte string (file names need not be UTF-8),
    /// or nil when the file has no such attribute (ENODATA). The corresponding C functions are `getxattr` and
    /// `lgetxattr`.
    public static func get(_ name: String, cPath path: UnsafePointer<CChar>,
                           symlinks: SymlinkBehavior = .noFollow) throws -> [UInt8]? {
        var size = 256
        for _ in 0..<8 {
            var buf = [UInt8](repeating: 0, count: size)
            let n = buf.withUnsafeMutableBytes { svirt_getxattr(path, name, $0.baseAddress, $0.count, symlinks.flag) }
            if n >= 0 { return Array(buf.prefix(n)) }
            let e = errno
            if e == ENODATA { return nil }
            if e == ERANGE {
                let needed = svirt_getxattr(path, name, nil, 0, symlinks.flag)
                if needed < 0 { break }
                size = max(needed, size * 2)
                continue
            }
            throw SystemCallError(call: symlinks == .follow ? "getxattr \(name)" : "lgetxattr \(name)",
                                  path: String(cString: path), errno: e)
        }
        throw SystemCallError(call: "lgetxattr \(name)", path: String(cString: path), errno: ERANGE)
    }

    /// Sets `name` on the file at the byte path `path`. The corresponding C functions are `setxattr` and
    /// `lsetxattr`.
    public static func set(_ name: String, value: [UInt8], cPath path: UnsafePointer<CChar>,
                           symlinks: SymlinkBehavior = .noFollow) throws {
        let rc = value.withUnsafeBytes { svirt_setxattr(path, name, $0.baseAddress, $0.count, 0, symlinks.flag) }
        if rc != 0 {
            throw SystemCallError(call: symlinks == .follow ? "setxattr \(name)" : "lsetxattr \(name)",
                                  path: String(cString: path), errno: errno)
        }
    }
}
