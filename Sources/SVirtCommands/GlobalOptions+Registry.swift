import ArgumentParser
import Foundation
import SVirt
import SVirtCluster
import SVirtLinux

extension GlobalOptions {
    var registryOptions: RegistryOptions {
        RegistryOptions(registry: registry, ca: registryCa, certificate: registryCert, key: registryKey,
                        user: registryUser, passwordFile: registryPasswordFile, hostID: hostId)
    }

    func validateRegistry() throws {
        if let r = registry, r != "sqlite", r != "local" {
            do { _ = try EtcdConfiguration.parse(r, source: "--registry") } catch let e as SVirtError {
                throw ValidationError(e.message)
            }
        }
        if let id = hostId {
            do { try EtcdLevelRegistry.validateHostID(id) } catch let e as SVirtError { throw ValidationError(e.message) }
        }
    }

    /// The arguments that make another `svirt` use the same state directory and registry.
    func forwardedArguments(_ env: HostEnvironment) -> [String] {
        var a = ["--state-dir", env.state.path]
        let pairs: [(String, String?)] = [("--registry", registry), ("--registry-ca", registryCa),
                                          ("--registry-cert", registryCert), ("--registry-key", registryKey),
                                          ("--registry-user", registryUser), ("--registry-password-file", registryPasswordFile),
                                          ("--host-id", hostId)]
        for (flag, value) in pairs { if let value { a += [flag, value] } }
        return a
    }

    /// Opens the registries. With etcd, a host that holds no lease gets its keeper started in the background
    /// (`svirt cluster keepalive --exit-when-idle`), unless one already runs.
    func openRegistry(_ env: HostEnvironment) async throws -> OpenedRegistry {
        try await registryOpener(env)()
    }
}

extension GlobalOptions {
    /// A function that opens the registries as `openRegistry` does, made of Sendable copies of these options, for
    /// a server that opens them once per request.
    func registryOpener(_ env: HostEnvironment) -> @Sendable () async throws -> OpenedRegistry {
        let options = registryOptions
        let forwarded = forwardedArguments(env)
        let lockPath = env.keeperLockPath, logPath = env.keeperLogPath
        return {
            try await env.openLevelRegistry(options, launchKeeper: {
                if KeeperLock.isHeld(path: lockPath) { return }
                let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
                _ = try spawnDetached(exe, ["cluster", "keepalive", "--exit-when-idle", "60"] + forwarded, logPath: logPath)
            })
        }
    }
}
