import ArgumentParser
import Foundation
import SELinux
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt label plan DOMAIN.xml`: the label every resource of a VM would get, one `path;context` line each.
struct LabelPlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the label each resource of a VM would get: one 'path;context' line per resource (an empty context: left alone).")

    @OptionGroup var options: DomainXMLOptions

    @Option(help: ArgumentHelp("The level a dynamic label takes (default: a level that is free now, not reserved).", valueName: "LEVEL"))
    var level: String?

    @Flag(help: "Also print the labels and a table for people.") var verbose = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let level { _ = try parseArgument(level) { try SecurityLevel(parsing: $0) } }
    }

    func run() async throws {
        let env = try options.environment()
        let domain = try options.domain()
        let selinux = try env.selinux()
        let generator = LabelGenerator(contexts: selinux.contexts, manager: env.managerContext().context, pool: try env.pool())
        let result: LabelGenerator.Result
        if domain.mode == .live {
            result = LabelGenerator.Result(label: try generator.liveLabel(of: domain), warnings: [])
        } else {
            let given = try level.map { try parseArgument($0) { try SecurityLevel(parsing: $0) } }
            let l: SecurityLevel
            if let given { l = given } else { l = try await freeLevel(env, generator.pool) }
            result = try generator.generateLabel(for: domain, level: l)
        }
        let plan = try LabelPlanner(contexts: selinux.contexts, host: LinuxHostInspector()).plan(for: domain, label: result.label)
        let warnings = result.warnings + plan.warnings
        if json {
            struct Out: Codable { var domain: String; var label: LabelJSON; var entries: [PlanEntryJSON]; var warnings: [String] }
            try printJSON(Out(domain: domain.name, label: LabelJSON(result.label), entries: plan.entries.map(PlanEntryJSON.init),
                              warnings: warnings))
            return
        }
        for w in warnings { printError("warning: \(w)") }
        for line in plan.lines { print(line) }
        if verbose {
            print("")
            print(labelSummary(domain.name, result.label))
            print("")
            print(table(["Resource", "Path", "Context", "Remember", "Restore", "Access", "Note"], plan.entries.map { e in
                [e.resource, e.path, e.context?.description ?? "(left alone)", e.remember ? "yes" : "no", e.restore.rawValue,
                 e.access.rawValue, e.note ?? ""]
            }))
        }
    }

    /// A level that no reservation conflicts with right now; nothing is reserved.
    func freeLevel(_ env: HostEnvironment, _ pool: CategoryPool) async throws -> SecurityLevel {
        var allocator = MCSAllocator(pool: pool, coolDown: env.configuration.coolDownSeconds)
        if try env.etcdConfiguration(options.global.registryOptions) != nil {
            // A shared registry: the preview avoids every level the cluster holds.
            let opened = try await env.openLevelRegistry(options.global.registryOptions)
            do {
                for r in try await opened.levels.reservations() { allocator.restore(r) }
            } catch {
                await opened.close()
                throw error
            }
            await opened.close()
        } else if FileManager.default.fileExists(atPath: env.state.registryPath) {
            for r in try env.openRegistry().reservationsNow() { allocator.restore(r) }
        }
        var rng = SystemRandomNumberGenerator()
        return try allocator.allocate(owner: "plan", now: Date().timeIntervalSince1970, using: &rng)
    }
}
