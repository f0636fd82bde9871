import ArgumentParser
import SVirt
import SVirtLinux

/// `svirt dumpxml NAME [--live|--inactive]`: the domain's XML; a running VM's live XML carries its generated
/// `<seclabel>` (label and image label).
struct DomainDumpXML: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dumpxml",
        abstract: "Print a domain's XML: the live XML (with its <label> and <imagelabel>) while it runs, else the definition.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name, id or UUID.")
    var name: String

    @Flag(help: "The live XML of the running domain (an error when it is not running).") var live = false
    @Flag(help: "The definition, even while the domain runs.") var inactive = false

    func validate() throws {
        if live && inactive { throw ValidationError("--live and --inactive exclude each other") }
    }

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global, quiet: true) { ctx in
                let s = try ctx.lifecycle.status(of: name)
                if live, s.running == nil { throw SVirtError(.notFound, "domain is not running") }
                if inactive, s.definedXML == nil { throw SVirtError(.state, "Requested operation is not valid: domain '\(s.name)' is transient") }
                let text = inactive ? s.definedXML : (s.running?.liveXML ?? s.definedXML)
                print(text ?? "", terminator: text?.hasSuffix("\n") == true ? "" : "\n")
            }
        }
    }
}
