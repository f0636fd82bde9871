import ArgumentParser
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt label restore DOMAIN.xml`: give back every label `svirt label apply` (or a VM start) set, and release
/// the VM's level.
struct LabelRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Give every resource of a VM its original label back and release the VM's level.")

    @OptionGroup var options: DomainXMLOptions

    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let env = try options.environment()
        let domain = try options.domain()
        let opened = try await options.global.openRegistry(env)
        let done: SecurityDriver.Restored
        do {
            let driver = try SecurityDriver.host(env, registry: opened.levels)
            done = try await driver.restoreAll(for: domain)
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
        let warnings = done.warnings + done.report.warnings
        if json {
            struct Out: Codable { var domain: String; var released: [String]; var outcomes: [OutcomeJSON]; var warnings: [String] }
            try printJSON(Out(domain: domain.name, released: done.released.map(\.description),
                              outcomes: done.report.items.map(OutcomeJSON.init), warnings: warnings))
        } else {
            for w in warnings { printError("warning: \(w)") }
            print(outcomeTable(done.report))
            if !done.released.isEmpty { print("\nReleased: \(done.released.map(\.description).joined(separator: ", "))") }
        }
        let failures = done.report.failures
        if !failures.isEmpty {
            for f in failures { printError("error: \(f)") }
            throw ExitCode(1)
        }
    }
}
