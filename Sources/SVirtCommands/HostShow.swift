import ArgumentParser
import SVirtLinux

/// `svirt host`: the SELinux state, the contexts in use and where they came from, Landlock, KVM and labels.
struct HostShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Show the host's SELinux state, the contexts svirt uses and where they came from, Landlock and KVM.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        let report = try HostReport.gather(environment: env)
        if json { try printJSON(report) } else { print(report.text) }
    }
}
