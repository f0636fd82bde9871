import ArgumentParser
import SVirt
import SVirtLinux

/// `svirt undefine NAME`: remove a definition; a running domain keeps running as a transient one.
struct DomainUndefine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undefine",
        abstract: "Remove a domain's definition (a running domain keeps running, and disappears when it stops).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name.")
    var name: String

    func run() async throws {
        try await virsh("Failed to undefine domain '\(name)'") {
            try await DomainContext.with(global) { ctx in
                guard try ctx.local.definedDomain(named: name) != nil else {
                    if try ctx.local.runningDomain(named: name) != nil {
                        throw SVirtError(.state, "Requested operation is not valid: cannot undefine transient domain")
                    }
                    throw SVirtError(.notFound, "failed to get domain '\(name)'")
                }
                try ctx.lifecycle.undefine(name: name)
                print("Domain '\(name)' has been undefined")
            }
        }
    }
}
