import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt start NAME` (or `--xml FILE` for a transient domain): label, confine and start a VM.
struct DomainStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start a defined domain (or, with --xml, a transient one) confined by SELinux or Landlock.",
        discussion: """
            svirt labels the VM's resources with a fresh MCS level (or its static label), gives them to the \
            unprivileged QEMU user when run as root, and starts QEMU in the VM's SELinux context, or, where SELinux \
            is off, in a Landlock ruleset whose every grant the policy allows. With neither available it refuses \
            unless --unconfined is given.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name.")
    var name: String?

    @Option(help: ArgumentHelp("Start a transient domain from this XML file instead of a defined one.", valueName: "FILE"))
    var xml: String?

    @Flag(help: "Start without SELinux or Landlock confinement (needed where neither is available).")
    var unconfined = false

    @Flag(help: "Also relabel host system paths and device nodes the XML does not hand to the guest, and reserve a static label whose level dominates every pair of the category pool.")
    var force = false

    @Flag(help: "Start with the virtual CPUs paused (QEMU -S).")
    var paused = false

    @Flag(help: "Print the QEMU command line and the confinement details.")
    var verbose = false

    @Flag(name: .customLong("stand-in"), help: .hidden)
    var standIn = false

    @Option(help: ArgumentHelp("Seconds QEMU may take to answer on its monitor.", valueName: "SECONDS"))
    var timeout: Int = 30

    func validate() throws {
        if (name == nil) == (xml == nil) { throw ValidationError("give a domain NAME, or --xml FILE for a transient domain") }
        if timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        let display = name ?? xml ?? ""
        try await virsh(name.map { "Failed to start domain '\($0)'" } ?? "Failed to create domain from \(display)") {
            try await DomainContext.with(global) { ctx in
                var options = DomainLifecycle.StartOptions()
                options.unconfined = unconfined
                options.force = force
                options.standIn = standIn
                options.startPaused = paused
                options.timeout = .seconds(timeout)
                let domain: DomainDefinition
                if let xml {
                    domain = try readDomainXML(xml)
                    options.transient = true
                } else if let name {
                    guard let record = try ctx.local.definedDomain(named: name) else {
                        if try ctx.local.runningDomain(named: name) != nil {
                            throw SVirtError(.state, "domain is already active")
                        }
                        throw SVirtError(.notFound, "failed to get domain '\(name)'")
                    }
                    domain = try DomainDefinition(xml: record.xml, source: "the definition of '\(name)'")
                } else {
                    return
                }
                let started = try await ctx.lifecycle.start(domain, options: options)
                for w in started.warnings { printError("warning: \(w)") }
                if verbose {
                    printError("command line: \(started.commandLine)")
                    printError("label: \(started.label.process?.description ?? "(none)"), image label: \(started.label.image)")
                    var confinement = "confinement: \(started.confinement.mode)"
                    if let g = started.grants {
                        confinement += ", \(g.checks.filter { $0.decision == .allowed }.count) Landlock grant checks allowed by the policy"
                            + (g.unchecked.isEmpty ? "" : ", \(g.unchecked.count) not checked")
                    }
                    printError(confinement)
                    if let g = started.grants {
                        for c in g.checks {
                            let verdict: String
                            switch c.decision {
                            case .allowed: verdict = "allowed"
                            case .denied: verdict = "denied"
                            case .unknown(let why): verdict = "not checked (\(why))"
                            }
                            printError("grant: \(c.path) \(c.target) (\(c.labelSource)) \(c.objectClass) { \(c.permissions.joined(separator: " ")) }: \(verdict)")
                        }
                    }
                    for o in started.owners { printError("owner: \(o.path) \(o.before) -> \(o.after)") }
                    for n in started.notes { printError("note: \(n)") }
                }
                print(xml == nil ? "Domain '\(domain.name)' started" : "Domain '\(domain.name)' created from \(display)")
            }
        }
    }
}
