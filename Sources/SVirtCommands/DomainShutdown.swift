import ArgumentParser
import SVirt
import SVirtLinux

/// `svirt shutdown NAME`: the ACPI power button through QMP; after the timeout, destroy.
struct DomainShutdown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shutdown",
        abstract: "Shut a domain down (ACPI power button through QMP); destroy it when it is still up after the timeout.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name.")
    var name: String

    @Option(help: ArgumentHelp("Seconds to wait for the guest to power off before destroying it.", valueName: "SECONDS"))
    var timeout: Int = 60

    func validate() throws {
        if timeout < 0 { throw ValidationError("--timeout must be zero or more seconds") }
    }

    func run() async throws {
        try await virsh("Failed to shutdown domain '\(name)'") {
            try await DomainContext.with(global) { ctx in
                print("Domain '\(name)' is being shutdown")
                let stopped = try await stopDomain(ctx, name: name, mode: .shutdown(timeout: .seconds(timeout)))
                switch stopped.outcome {
                case .poweredOff, .alreadyGone: break
                case .terminated, .killed:
                    printError("note: '\(name)' did not power off within \(timeout) s, so it was destroyed")
                }
            }
        }
    }
}
