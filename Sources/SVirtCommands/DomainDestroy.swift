import ArgumentParser
import SVirt
import SVirtLinux

/// `svirt destroy NAME`: stop a VM at once (SIGTERM, then SIGKILL) and give its labels and owners back.
struct DomainDestroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Stop a domain at once (SIGTERM, then SIGKILL) and restore its labels and owners.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name.")
    var name: String

    func run() async throws {
        try await virsh("Failed to destroy domain '\(name)'") {
            try await DomainContext.with(global) { ctx in
                try await stopDomain(ctx, name: name, mode: .destroy)
                print("Domain '\(name)' destroyed")
            }
        }
    }
}

/// Stops a domain and reports what could not be given back (then the command fails).
@discardableResult
func stopDomain(_ ctx: DomainContext, name: String, mode: DomainLifecycle.StopMode) async throws -> DomainLifecycle.Stopped {
    guard try ctx.local.runningDomain(named: name) != nil else {
        if try ctx.local.definedDomain(named: name) == nil { throw SVirtError(.notFound, "failed to get domain '\(name)'") }
        throw SVirtError(.notFound, "domain is not running")
    }
    let stopped = try await ctx.lifecycle.stop(name: name, mode: mode)
    for w in stopped.warnings { printError("warning: \(w)") }
    if !stopped.failures.isEmpty {
        throw SVirtError(.labeling, "the domain stopped, but not everything was given back:\n"
                         + stopped.failures.map { "  - " + $0 }.joined(separator: "\n"))
    }
    return stopped
}
