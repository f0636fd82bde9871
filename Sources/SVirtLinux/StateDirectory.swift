import Foundation
import Glibc
import SVirt

/// Where svirt keeps its registry and configuration: `/var/lib/svirt` for root, the XDG state directory
/// (`$XDG_STATE_HOME/svirt`, or `~/.local/state/svirt`) otherwise. `--state-dir` or `SVIRT_STATE_DIR` override.
/// The configuration is `svirt.conf` in it (for `/var/lib/svirt`, `/etc/svirt/svirt.conf` when it has none).
public struct StateDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public static func resolve(_ override: String?) -> StateDirectory {
        if let o = override, !o.isEmpty { return StateDirectory(path: absolute(o)) }
        let env = ProcessInfo.processInfo.environment
        if let e = env["SVIRT_STATE_DIR"], !e.isEmpty { return StateDirectory(path: absolute(e)) }
        if getuid() == 0 { return StateDirectory(path: systemPath) }
        if let x = env["XDG_STATE_HOME"], x.hasPrefix("/") { return StateDirectory(path: "\(x)/svirt") }
        let home = env["HOME"] ?? NSHomeDirectory()
        return StateDirectory(path: "\(home)/.local/state/svirt")
    }

    /// A relative directory taken from the current directory, once: runtime paths, QEMU's arguments and the
    /// registry's records all need a path that means the same from any directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let cwd = FileManager.default.currentDirectoryPath
        var parts: [Substring] = []
        for part in (cwd + "/" + path).split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }

    public var registryPath: String { "\(path)/registry.sqlite" }
    /// root's state directory.
    public static let systemPath = "/var/lib/svirt"
    /// The configuration file the Debian package installs (a conffile, every key commented out).
    public static let systemConfigurationPath = "/etc/svirt/svirt.conf"

    /// `svirt.conf` in the state directory; for root's state directory (`/var/lib/svirt`) that has none,
    /// `/etc/svirt/svirt.conf`. Other state directories (tests, users, `--state-dir`) never read /etc.
    public var configurationPath: String {
        let own = "\(path)/svirt.conf"
        if path == Self.systemPath && !FileManager.default.fileExists(atPath: own) { return Self.systemConfigurationPath }
        return own
    }

    /// Creates the directory if needed, and makes it private whatever the umask: mode 0700, owned by svirt's user.
    /// An existing directory of ours with group or other permission bits is made 0700; one owned by another user
    /// that others may use is refused, with the reason.
    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw Self.failure(at: path, "cannot create the state directory \(path): \(error.localizedDescription)",
                               remedy: "choose another with --state-dir", cause: String(describing: error))
        }
        try makePrivate()
    }

    /// Makes the directory mode 0700 when svirt's user owns it, refuses it when another user owns it and others may
    /// use it. The corresponding C functions are `fstat` and `fchmod`, on the opened directory.
    func makePrivate() throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SVirtError(.registry, "cannot open the state directory \(path): \(String(cString: strerror(errno))); "
                             + "choose another with --state-dir")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SVirtError(.registry, "cannot stat the state directory \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & 0o777 != 0o700 else { return }
        try Self.makePrivate(fd: fd, st, path: path, mode: 0o700, what: "the state directory", orElse: "or choose another with --state-dir")
    }

    /// Makes an open file or directory `mode` (0700, 0600) when svirt's user owns it; refuses one that another user
    /// owns and others may use, with the commands that fix it. The corresponding C functions are `fstat` and
    /// `fchmod`.
    static func makePrivate(fd: Int32, _ st: stat, path: String, mode: mode_t, what: String, orElse: String) throws {
        let current = st.st_mode & 0o7777
        let wanted = "0" + String(mode, radix: 8)
        guard st.st_uid == geteuid() else {
            guard current & 0o077 != 0 else { return }
            throw SVirtError(.registry, "\(what) \(path) is mode \(String(current, radix: 8)) and owned by uid \(st.st_uid), "
                             + "not by svirt's user (uid \(geteuid())), so other users could read or change what svirt keeps "
                             + "there; run 'chown \(geteuid()) \(path) && chmod \(wanted) \(path)', \(orElse)")
        }
        guard fchmod(fd, mode) == 0 else {
            throw SVirtError(.registry, "cannot make \(what) \(path) mode \(wanted): "
                             + "\(String(cString: strerror(errno))); run 'chmod \(wanted) \(path)', \(orElse)")
        }
    }

    /// `svirt.conf`, or the defaults when it does not exist.
    public func configuration() throws -> SVirtConfiguration {
        let p = configurationPath
        guard FileManager.default.fileExists(atPath: p) else { return SVirtConfiguration() }
        guard let data = FileManager.default.contents(atPath: p), let text = String(data: data, encoding: .utf8) else {
            throw SVirtError(.configuration, "cannot read \(p): check that it is readable UTF-8 text")
        }
        return try SVirtConfiguration.parse(text, path: p)
    }
}

/// A description of an error that is not `Sendable`, to keep as a `cause`.
public struct SendableBox: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
