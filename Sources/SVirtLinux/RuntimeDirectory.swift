import Foundation
import Glibc
import SVirt

/// A guest's private runtime directory (mode 0700): its QMP socket, its log of QEMU's stderr, a serial socket.
public struct RuntimeDirectory: Sendable, Hashable, Codable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `/run/svirt` for root, `$XDG_RUNTIME_DIR/svirt` otherwise (or `/tmp/svirt-UID`); `SVIRT_RUNTIME_DIR`
    /// overrides.
    public static func defaultRoot() -> String {
        let env = ProcessInfo.processInfo.environment
        if let o = env["SVIRT_RUNTIME_DIR"], o.hasPrefix("/") { return o }
        if getuid() == 0 { return "/run/svirt" }
        if let x = env["XDG_RUNTIME_DIR"], x.hasPrefix("/") { return "\(x)/svirt" }
        return "/tmp/svirt-\(getuid())"
    }

    /// Creates `<root>/<name>` with mode 0700 (its parents 0755), owned by `owner` when given (the user QEMU
    /// runs as). An existing directory is reused after its mode and owner are set again.
    public static func create(name: String, root: String = RuntimeDirectory.defaultRoot(),
                              owner: (uid: UInt32, gid: UInt32)? = nil) throws -> RuntimeDirectory {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw SVirtError(.invalidDomain, "'\(name)' cannot name a runtime directory; use a name without '/'")
        }
        let dir = RuntimeDirectory(path: "\(root)/\(name)")
        // The QMP socket path must fit in sockaddr_un.
        guard dir.qmpSocket.utf8.count < 108 else {
            throw SVirtError(.invalidDomain, "the runtime directory \(dir.path) is too long for a unix socket path "
                             + "(at most 107 bytes); set SVIRT_RUNTIME_DIR to a shorter directory or shorten the name")
        }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        } catch {
            throw SVirtError(.launch, "cannot create the runtime directory \(root): \(error.localizedDescription)")
        }
        if mkdir(dir.path, 0o700) != 0 && errno != EEXIST {
            throw SVirtError(.launch, "cannot create \(dir.path): \(String(cString: strerror(errno)))",
                             cause: SystemCallError(call: "mkdir", path: dir.path, errno: errno))
        }
        var st = stat()
        guard lstat(dir.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SVirtError(.launch, "\(dir.path) exists and is not a directory; remove it")
        }
        if chmod(dir.path, 0o700) != 0 {
            throw SVirtError(.launch, "cannot set mode 0700 on \(dir.path): \(String(cString: strerror(errno)))")
        }
        if let o = owner, chown(dir.path, o.uid, o.gid) != 0 {
            throw SVirtError(.launch, "cannot give \(dir.path) to uid \(o.uid): \(String(cString: strerror(errno)))")
        }
        return dir
    }

    public var qmpSocket: String { "\(path)/qmp.sock" }
    public var logFile: String { "\(path)/qemu.log" }
    public var serialSocket: String { "\(path)/serial.sock" }

    /// Removes the directory and what is in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
