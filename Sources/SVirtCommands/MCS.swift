import ArgumentParser
import Foundation
import SELinux
import SVirt
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

struct MCSList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List reserved levels and who holds them.")
    @OptionGroup var options: MCSOptions

    func run() async throws {
        let env = try options.environment()
        let registry = try env.openRegistry()
        await reconcileDomains(env, registry)
        let rows = try registry.reservationsNow().map(ReservationJSON.init)
        if options.json { try printJSON(rows); return }
        print(table(["Level", "Owner", "Kind", "Process", "Since"],
                    rows.map { [$0.level, $0.owner, $0.kind, $0.pid.map(String.init) ?? "-", $0.created] }))
    }
}

struct MCSStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show how full the category pool is.")
    @OptionGroup var options: MCSOptions

    func run() async throws {
        let env = try options.environment()
        let registry = try env.openRegistry()
        await reconcileDomains(env, registry)
        let s = try registry.statisticsNow(pool: try options.pool(env))
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

    func run() async throws {
        let env = try options.environment()
        let registry = try env.openRegistry()
        await reconcileDomains(env, registry)
        var process: ProcessIdentity?
        if let pid {
            guard let p = env.proc.identity(of: pid) else { throw ValidationError("no process with pid \(pid)") }
            process = p
        }
        let level = try registry.allocateLevelNow(owner: owner, kind: process == nil ? .admin : .process,
                                                  process: process, pool: try options.pool(env))
        if options.json { try printJSON(["level": level.description, "owner": owner]) } else { print(level) }
    }
}

struct MCSReserve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve", abstract: "Reserve a given level; refused if it overlaps (by dominance) a reserved one.")
    @OptionGroup var options: MCSOptions
    @Argument(help: "The level, e.g. s0:c1,c2.") var level: String
    @Option(help: "Who holds the reservation.") var owner: String
    @Option(help: "Tie the reservation to a running process.") var pid: Int32?

    func validate() throws { _ = try parseArgument(level) { try SecurityLevel(parsing: $0) } }

    func run() async throws {
        let env = try options.environment()
        let registry = try env.openRegistry()
        await reconcileDomains(env, registry)
        let l = try parseArgument(level) { try SecurityLevel(parsing: $0) }
        var process: ProcessIdentity?
        if let pid {
            guard let p = env.proc.identity(of: pid) else { throw ValidationError("no process with pid \(pid)") }
            process = p
        }
        try registry.reserveLevelNow(l, owner: owner, kind: process == nil ? .admin : .process, process: process)
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
        let env = try options.environment()
        let registry = try env.openRegistry()
        await reconcileDomains(env, registry)
        let l = try parseArgument(level) { try SecurityLevel(parsing: $0) }
        let r = try registry.releaseLevelNow(l)
        if options.json { try printJSON(ReservationJSON(r)) } else { print("released \(r.level) (held by '\(r.owner)')") }
    }
}
