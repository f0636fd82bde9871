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

    /// Makes QEMU's log a file labelled `context`, the VM's image label, as libvirt labels the log descriptor it
    /// hands QEMU: QEMU, in its VM's domain, appends to the inherited descriptor, and the kernel checks that append
    /// against the file's label (to a `virt_runtime_t` log every message would be refused). The log is created
    /// with the label (fscreate), not relabelled: Debian's `virtd_t` may not relabel `virt_runtime_t` files. A log
    /// left by an earlier run of the VM is kept as `qemu.log.1`.
    public func createLabelledLog(_ context: String) throws {
        if rename(logFile, logFile + ".1") != 0 && errno != ENOENT {
            throw SystemCallError(call: "rename", path: logFile, errno: errno)
        }
        let fd: Int32 = FileCreationContext.with(context) { _ in
            open(logFile, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw SystemCallError(call: "open", path: logFile, errno: errno) }
        defer { close(fd) }
        // Where fscreate was not taken (SELinux off), or gave another label, set it on the open file.
        if (try? ExtendedAttributes.get(ExtendedAttributes.selinux, fd: fd, path: logFile)).map({ String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }) != context {
            try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array(context.utf8), fd: fd, path: logFile)
        }
    }

    /// Removes the directory and what is in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
