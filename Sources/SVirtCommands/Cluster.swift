import ArgumentParser
import Foundation
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt cluster`: this host's part in a shared (etcd) level registry.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "This host's lease and queued changes in a shared (etcd) level registry.",
        subcommands: [ClusterKeepalive.self, ClusterHosts.self, ClusterFlush.self])
}

struct ClusterOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    func validate() throws { try global.validateRegistry() }

    func environment() throws -> HostEnvironment {
        try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
    }

    /// Opens the etcd registry; an error when none is configured.
    func openEtcd(_ env: HostEnvironment) async throws -> (OpenedRegistry, EtcdLevelRegistry) {
        let opened = try await env.openLevelRegistry(global.registryOptions)
        guard let etcd = opened.etcd else {
            await opened.close()
            throw SVirtError(.configuration, "no shared registry is configured: give --registry etcd://host1:2379,... "
                             + "or set 'registry =' in \(env.state.configurationPath)")
        }
        return (opened, etcd)
    }
}

/// `svirt cluster keepalive`: the host's keeper. Other commands start it in the background when the host has no
/// lease; run it as a service to keep the lease whatever runs.
struct ClusterKeepalive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keepalive",
        abstract: "Keep this host's lease in the etcd registry alive, and put dead hosts' levels into cool-down.")
    @OptionGroup var options: ClusterOptions
    @Option(help: ArgumentHelp("Revoke the lease and exit once this host has held no level for this long.", valueName: "SECONDS"))
    var exitWhenIdle: Double?

    func run() async throws {
        let env = try options.environment()
        try env.state.create()
        guard let lock = try KeeperLock.take(path: env.keeperLockPath) else {
            printError("svirt: a keeper already runs for \(env.state.path) (it holds \(env.keeperLockPath))")
            return
        }
        defer { lock.unlock() }
        let (opened, etcd) = try await options.openEtcd(env)
        let proc = env.proc
        let keeper = HostKeeper(registry: etcd, ttl: env.hostLeaseSeconds, isAlive: { proc.isAlive($0) }, log: { line in
            let stamp = ISO8601DateFormatter().string(from: Date())
            FileHandle.standardOutput.write(Data("\(stamp) \(line)\n".utf8))
        })
        do {
            let statePath = env.state.path
            try await keeper.run(exitWhenIdle: exitWhenIdle, keepRunning: { FileManager.default.fileExists(atPath: statePath) })
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
    }
}

struct ClusterHosts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosts", abstract: "List the hosts that hold a lease in the etcd registry.")
    @OptionGroup var options: ClusterOptions
    @Flag(help: "Print JSON.") var json = false

    struct HostJSON: Codable {
        var host: String
        var lease: String
        var pid: Int32?
        var hostname: String?
        var since: String?
    }

    func run() async throws {
        let env = try options.environment()
        let (opened, etcd) = try await options.openEtcd(env)
        let hosts: [ClusterHost]
        do { hosts = try await etcd.hosts() } catch { await opened.close(); throw error }
        await opened.close()
        let f = ISO8601DateFormatter()
        let rows = hosts.map { HostJSON(host: $0.id, lease: String($0.lease, radix: 16), pid: $0.pid, hostname: $0.hostname,
                                        since: $0.since.map { f.string(from: Date(timeIntervalSince1970: $0)) }) }
        if json { try printJSON(rows); return }
        print(table(["Host", "Lease", "Keeper pid", "Hostname", "Since"],
                    rows.map { [$0.host, $0.lease, $0.pid.map(String.init) ?? "-", $0.hostname ?? "-", $0.since ?? "-"] }))
    }
}

/// `svirt cluster flush`: does the releases (and undos) queued while etcd was unreachable.
struct ClusterFlush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Send the releases queued while etcd was unreachable.")
    @OptionGroup var options: ClusterOptions

    func run() async throws {
        let env = try options.environment()
        let (opened, etcd) = try await options.openEtcd(env)
        let report: EtcdLevelRegistry.FlushReport
        do { report = try await etcd.flushQueue() } catch { await opened.close(); throw error }
        await opened.close()
        for line in report.done { print(line) }
        if report.remaining > 0 {
            throw SVirtError(.registryUnavailable, "\(report.remaining) queued changes wait: etcd at "
                             + "\(etcd.client.configuration.endpointList) is still unreachable")
        }
        print("queue empty")
    }
}
