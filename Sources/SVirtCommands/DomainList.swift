import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt list [--all] [-Z]`: the domains with their state and pid, and with `-Z` their process labels, as
/// `virsh list` and `ps -eZ` show them together.
struct DomainList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List running domains (--all: also shut-off ones) with their pid, and with -Z their process labels.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Also list shut-off domains.") var all = false
    @Flag(name: .customShort("Z"), help: "Show each running domain's process label, as ps -eZ does.") var labels = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global) { ctx in
                let rows = try ctx.lifecycle.statuses(all: all).map(\.summary)
                if json {
                    try printJSON(rows)
                    return
                }
                var header = ["Id", "Name", "State", "PID"]
                if labels { header.append("Security label") }
                print(table(header, rows.map { r in
                    var cells = [r.id.map(String.init) ?? "-", r.name, r.state, r.pid.map(String.init) ?? "-"]
                    if labels { cells.append(r.label.map { "\($0)\(r.confinement.map { " (\($0))" } ?? "")" } ?? "-") }
                    return cells
                }))
            }
        }
    }
}
