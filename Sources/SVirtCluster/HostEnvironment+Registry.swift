import Foundation
import Glibc
import SVirt
import SVirtLinux

/// Registry options from the command line; each overrides its key in svirt.conf.
public struct RegistryOptions: Sendable, Hashable {
    public var registry: String?
    public var ca: String?
    public var certificate: String?
    public var key: String?
    public var user: String?
    public var passwordFile: String?
    public var hostID: String?

    public init(registry: String? = nil, ca: String? = nil, certificate: String? = nil, key: String? = nil,
                user: String? = nil, passwordFile: String? = nil, hostID: String? = nil) {
        self.registry = registry
        self.ca = ca
        self.certificate = certificate
        self.key = key
        self.user = user
        self.passwordFile = passwordFile
        self.hostID = hostID
    }
}

/// The registries a command works with: the local SQLite registry always (domains, running VMs, the queue of
/// changes for etcd), and the etcd registry when one is configured, which then holds the levels.
public final class OpenedRegistry: Sendable {
    public let local: SQLiteRegistry
    public let etcd: EtcdLevelRegistry?

    init(local: SQLiteRegistry, etcd: EtcdLevelRegistry?) {
        self.local = local
        self.etcd = etcd
    }

    /// Where levels are reserved.
    public var levels: any LevelRegistry { etcd ?? local }

    /// Closes the connections to etcd. Call once, when done.
    public func close() async { await etcd?.shutdown() }
}

extension HostEnvironment {
    public var hostIDPath: String { "\(state.path)/host-id" }

    /// This host's id in a shared registry: `override`, else `host_id` from svirt.conf, else the id kept in the
    /// state directory (generated from the host name on first use).
    public func hostID(override: String? = nil) throws -> String {
        if let id = override ?? configuration.hostID {
            try EtcdLevelRegistry.validateHostID(id)
            return id
        }
        if let data = FileManager.default.contents(atPath: hostIDPath) {
            let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            do { try EtcdLevelRegistry.validateHostID(id) } catch {
                throw SVirtError(.configuration, "\(hostIDPath) holds an unusable host id '\(id)': fix or delete the file, "
                                 + "or set host_id in \(state.configurationPath)")
            }
            return id
        }
        let name = ProcessInfo.processInfo.hostName.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        let id = "\(name.isEmpty ? "host" : String(name.prefix(60)))-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        try state.create()
        do {
            try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: hostIDPath), options: .withoutOverwriting)
        } catch {
            // Another process wrote it first: use that one.
            if let data = FileManager.default.contents(atPath: hostIDPath) {
                return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            throw SVirtError(.registry, "cannot write the host id to \(hostIDPath): \(error)")
        }
        return id
    }

    /// The etcd settings from `options` and svirt.conf, or nil when levels stay in the local registry.
    public func etcdConfiguration(_ options: RegistryOptions) throws -> EtcdConfiguration? {
        let text = options.registry ?? configuration.registry
        guard let text, text != "sqlite", text != "local" else { return nil }
        let source = options.registry != nil ? "--registry" : (configuration.registrySource ?? state.configurationPath)
        var c = try EtcdConfiguration.parse(text, source: source)
        c.caPath = options.ca ?? configuration.registryCA
        c.certificatePath = options.certificate ?? configuration.registryCertificate
        c.keyPath = options.key ?? configuration.registryKey
        c.user = options.user ?? configuration.registryUser
        c.passwordFile = options.passwordFile ?? configuration.registryPasswordFile
        if c.caPath != nil || c.certificatePath != nil || c.keyPath != nil { c.useTLS = true }
        if let t = configuration.registryTimeoutSeconds {
            c.operationTimeout = t
            c.requestTimeout = min(c.requestTimeout, t)
        }
        return c
    }

    /// How long this host's lease lives without renewal.
    public var hostLeaseSeconds: Int64 { Int64(configuration.hostLeaseSeconds ?? 10) }

    /// Opens the local registry (reconciling it with local processes) and, when configured, the etcd registry.
    /// Changes queued while etcd was unreachable are done first when there are any.
    public func openLevelRegistry(_ options: RegistryOptions,
                                  launchKeeper: (@Sendable () throws -> Void)? = nil) async throws -> OpenedRegistry {
        let local = try openRegistry()
        guard let config = try etcdConfiguration(options) else { return OpenedRegistry(local: local, etcd: nil) }
        let client = try EtcdClient(configuration: config)
        let etcd: EtcdLevelRegistry
        do {
            etcd = try EtcdLevelRegistry(client: client, hostID: try hostID(override: options.hostID),
                                         coolDown: configuration.coolDownSeconds, local: local, launchKeeper: launchKeeper)
        } catch {
            await client.shutdown()
            throw error
        }
        if let pending = try? local.remoteOperations(), !pending.isEmpty {
            _ = try? await etcd.flushQueue()
        }
        return OpenedRegistry(local: local, etcd: etcd)
    }

    public var keeperLockPath: String { "\(state.path)/cluster-keeper.lock" }
    public var keeperLogPath: String { "\(state.path)/cluster-keeper.log" }
}

/// An advisory lock on the keeper's lock file: held by the running keeper for as long as it runs.
public final class KeeperLock: Sendable {
    let fd: Int32

    /// Takes the lock, or returns nil when another process holds it.
    public static func take(path: String) throws -> KeeperLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SVirtError(.registry, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            return nil
        }
        return KeeperLock(fd: fd)
    }

    private init(fd: Int32) { self.fd = fd }

    public func unlock() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }

    /// True when a keeper holds the lock at `path`.
    public static func isHeld(path: String) -> Bool {
        guard let l = try? take(path: path) else { return true }
        l.unlock()
        return false
    }
}

/// Starts a program in a session of its own (it outlives the caller and its terminal), its output appended to
/// `logPath`. Returns its pid.
public func spawnDetached(_ executable: String, _ arguments: [String], logPath: String) throws -> pid_t {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    // POSIX_SPAWN_SETSID (glibc 2.26+).
    posix_spawnattr_setflags(&attr, Int16(0x80))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([executable] + arguments).map { strdup($0) }
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attr, argv + [nil], environ)
    guard rc == 0 else {
        throw SVirtError(.launch, "cannot start \(executable): \(String(cString: strerror(rc)))")
    }
    return pid
}
