import ArgumentParser
import SVirt
import SVirtLinux

/// `svirt define FILE.xml`: keep a domain definition in the registry (as `virsh define`).
struct DomainDefine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "define",
        abstract: "Define a domain from libvirt domain XML, or replace the definition of the domain with that name and UUID.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The libvirt domain XML file ('-' reads standard input).", valueName: "FILE.xml"))
    var file: String

    func run() async throws {
        try await virsh("Failed to define domain from \(file)") {
            let domain = try readDomainXML(file)
            try await DomainContext.with(global) { ctx in
                try ctx.lifecycle.define(domain)
                print("Domain '\(domain.name)' defined from \(file)")
            }
        }
    }
}
