import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt labels NAME`: every resource of a domain with the label it carries now, as `ls -Z` shows it.
struct DomainLabels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels",
        abstract: "Show every resource of a domain with its current label (as ls -Z does) and its owner.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name, id or UUID.")
    var name: String

    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global) { ctx in
                let s = try ctx.lifecycle.status(of: name)
                let rows = try ctx.lifecycle.resourceLabels(of: s)
                if json {
                    try printJSON(rows)
                    return
                }
                for r in rows { print("\(r.label ?? "?") \(r.owner ?? "?") \(r.path)") }
            }
        }
    }
}
