import ArgumentParser
import Foundation
import SELinux
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt mcs`: the category allocator, for administrators.
struct MCS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcs",
        abstract: "Inspect and manage MCS level reservations.",
        subcommands: [MCSList.self, MCSStats.self, MCSAllocate.self, MCSReserve.self, MCSRelease.self])
}

/// Options shared by the `mcs` subcommands.
struct MCSOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The category pool, e.g. c0.c1023 (default: svirt.conf, else the managing process's clearance).", valueName: "CATEGORIES"))
    var categories: String?

    @Flag(help: "Print JSON.") var json = false

    func environment() throws -> HostEnvironment {
        try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
    }

    func pool(_ env: HostEnvironment) throws -> CategoryPool {
        let override = try categories.map { c in try parseArgument(c, SVirtConfiguration.parseCategories) }
        return try env.pool(override: override)
    }

    func validate() throws {
        if let c = categories { _ = try parseArgument(c, SVirtConfiguration.parseCategories) }
        try global.validateRegistry()
    }

    /// Opens the registry the options choose, runs `body` with it, and closes it.
    func withRegistry<T>(_ body: (HostEnvironment, OpenedRegistry) async throws -> T) async throws -> T {
        let env = try environment()
        let opened = try await global.openRegistry(env)
        do {
            await reconcileDomains(env, opened)
            let result = try await body(env, opened)
            await opened.close()
            return result
        } catch {
            await opened.close()
            throw error
        }
    }
}

struct ReservationJSON: Codable {
    var level: String
    var owner: String
    var kind: String
    var pid: Int32?
    var processStart: UInt64?
    var host: String?
    var created: String

    init(_ r: Reservation) {
        level = r.level.description
        owner = r.owner
        kind = r.kind.rawValue
        pid = r.process?.pid
        processStart = r.process?.startTime
        host = r.host
        created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.createdAt))
    }
}

struct ClusterLevelJSON: Codable {
    var level: String
    var state: String
    var host: String
    var hostAlive: Bool
    var lease: String
    var owner: String
    var kind: String
    var pid: Int32?
    var created: String
    var released: String?

    init(_ l: ClusterLevel) {
        let f = ISO8601DateFormatter()
        level = l.level.description
        state = l.state
        host = l.host
        hostAlive = l.hostAlive
        lease = String(l.lease, radix: 16)
        owner = l.owner
        kind = l.kind
        pid = l.process?.pid
        created = f.string(from: Date(timeIntervalSince1970: l.createdAt))
        released = l.releasedAt.map { f.string(from: Date(timeIntervalSince1970: $0)) }
    }
}

struct MCSList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List reserved levels and who holds them (this host's; with --cluster, every host's).")
    @OptionGroup var options: MCSOptions
    @Flag(help: "With an etcd registry: every level in the cluster, reserved or cooling, and the host that holds it.")
    var cluster = false

    func run() async throws {
        try await options.withRegistry { _, opened in
            if cluster {
                guard let etcd = opened.etcd else {
                    throw SVirtError(.configuration, "--cluster lists a shared registry, and this host keeps its levels in the "
                                     + "local registry \(opened.local.state.registryPath); choose one with --registry etcd://... "
                                     + "or 'registry =' in svirt.conf")
                }
                let levels = try await etcd.clusterLevels().map(ClusterLevelJSON.init)
                if options.json { try printJSON(levels); return }
                print(table(["Level", "Host", "State", "Owner", "Kind", "Process", "Since"],
                            levels.map { [$0.level, $0.host + ($0.hostAlive || $0.state != "reserved" ? "" : " (lease gone)"),
                                          $0.state, $0.owner, $0.kind, $0.pid.map(String.init) ?? "-",
                                          $0.released ?? $0.created] }))
                return
            }
            var reservations = try await opened.levels.reservations()
            if let etcd = opened.etcd { reservations = reservations.filter { $0.host == etcd.hostID } }
            let rows = reservations.map(ReservationJSON.init)
            if options.json { try printJSON(rows); return }
            print(table(["Level", "Owner", "Kind", "Process", "Since"],
                        rows.map { [$0.level, $0.owner, $0.kind, $0.pid.map(String.init) ?? "-", $0.created] }))
        }
    }
}

struct MCSStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show how full the category pool is.")
    @OptionGroup var options: MCSOptions

    func run() async throws {
        let s = try await options.withRegistry { env, opened in
            try await opened.levels.statistics(pool: try options.pool(env))
        }
        if options.json { try printJSON(s); return }
        print("Pool:            \(s.pool)")
        print("Categories:      \(s.categories)")
        print("Pairs:           \(s.pairs)")
        print("Reservations:    \(s.reservations)")
        print("Blocked pairs:   \(s.blockedPairs)")
        print("Cooling pairs:   \(s.coolingPairs) (cool-down \(Int(s.coolDownSeconds)) s)")
        print("Free pairs:      \(s.freePairs)")
    }
}

struct MCSAllocate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocate", abstract: "Reserve a fresh, unique category pair and print its level.")
    @OptionGroup var options: MCSOptions
    @Option(help: "Who holds the reservation.") var owner: String
    @Option(help: "Tie the reservation to a running process: it is released when the process is gone.") var pid: Int32?
    @Option(help: "How many levels to allocate, one per line (each is a separate reservation for OWNER).") var count = 1

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be from 1 to 100000, found \(count)") }
    }

    func run() async throws {
        try await options.withRegistry { env, opened in
            var process: ProcessIdentity?
            if let pid {
                guard let p = env.proc.identity(of: pid) else { throw ValidationError("no process with pid \(pid)") }
                process = p
            }
            let pool = try options.pool(env)
            var levels: [String] = []
            for _ in 0..<count {
                let level = try await opened.levels.allocateLevel(owner: owner, kind: process == nil ? .admin : .process,
                                                                  process: process, pool: pool)
                if options.json { levels.append(level.description) } else { print(level) }
            }
            if options.json {
                if count == 1 { try printJSON(["level": levels[0], "owner": owner]) } else { try printJSON(["levels": levels]) }
            }
        }
    }
}

struct MCSReserve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve", abstract: "Reserve a given level; refused if it overlaps (by dominance) a reserved one.")
    @OptionGroup var options: MCSOptions
    @Argument(help: "The level, e.g. s0:c1,c2.") var level: String
    @Option(help: "Who holds the reservation.") var owner: String
    @Option(help: "Tie the reservation to a running process.") var pid: Int32?
    @Flag(help: "Reserve a level that dominates every pair of the category pool (no other VM could start while it is held).")
    var force = false

    func validate() throws { _ = try parseArgument(level) { try SecurityLevel(parsing: $0) } }

    func run() async throws {
        let l = try parseArgument(level) { try SecurityLevel(parsing: $0) }
        try await options.withRegistry { env, opened in
            var process: ProcessIdentity?
            if let pid {
                guard let p = env.proc.identity(of: pid) else { throw ValidationError("no process with pid \(pid)") }
                process = p
            }
            if let warning = try MCSAllocator.checkLeavesPoolUsable(l, pool: try options.pool(env), what: "'\(l)'", force: force) {
                printError("warning: \(warning)")
            }
            try await opened.levels.reserveLevel(l, owner: owner, kind: process == nil ? .admin : .process, process: process)
        }
        if options.json { try printJSON(["level": l.description, "owner": owner]) } else { print(l) }
    }
}

struct MCSRelease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Release a reserved level; it cools down before it is handed out again.")
    @OptionGroup var options: MCSOptions
    @Argument(help: "The level, e.g. s0:c1,c2.") var level: String

    func validate() throws { _ = try parseArgument(level) { try SecurityLevel(parsing: $0) } }

    func run() async throws {
        let l = try parseArgument(level) { try SecurityLevel(parsing: $0) }
        let r = try await options.withRegistry { _, opened in try await opened.levels.releaseLevel(l) }
        if options.json { try printJSON(ReservationJSON(r)) } else { print("released \(r.level) (held by '\(r.owner)')") }
    }
}
