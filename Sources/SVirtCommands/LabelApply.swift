import ArgumentParser
import SELinux
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt label apply DOMAIN.xml`: reserve the VM's level and label its resources, as a start would, without
/// starting anything.
struct LabelApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Reserve a VM's level and label its resources, remembering their original labels, without starting it.")

    @OptionGroup var options: DomainXMLOptions

    @Option(help: ArgumentHelp("The level a dynamic label takes (default: a fresh one).", valueName: "LEVEL"))
    var level: String?

    @Flag(help: "Also relabel host system paths and device nodes the XML does not hand to the guest, and reserve a static label whose level dominates every pair of the category pool.")
    var force = false

    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let level { _ = try parseArgument(level) { try SecurityLevel(parsing: $0) } }
    }

    func run() async throws {
        let env = try options.environment()
        let domain = try options.domain()
        let l = try level.map { try parseArgument($0) { try SecurityLevel(parsing: $0) } }
        // The configured level registry (local, or etcd: then it refuses rather than fall back to local).
        let opened = try await options.global.openRegistry(env)
        await reconcileDomains(env, opened)
        let done: SecurityDriver.Labelled
        do {
            let driver = try SecurityDriver.host(env, registry: opened.levels)
            done = try await driver.labelAll(for: domain, level: l, force: force)
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
        let warnings = done.warnings + done.report.warnings + done.preflight.unchecked.map { "preflight: \($0)" }
        if json {
            struct Out: Codable { var domain: String; var label: LabelJSON; var outcomes: [OutcomeJSON]; var warnings: [String] }
            try printJSON(Out(domain: domain.name, label: LabelJSON(done.label), outcomes: done.report.items.map(OutcomeJSON.init),
                              warnings: warnings))
            return
        }
        for w in warnings { printError("warning: \(w)") }
        print(labelSummary(domain.name, done.label))
        print("")
        print(outcomeTable(done.report))
    }
}
