import ArgumentParser
import Foundation
import Glibc
import SELinux
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

    struct Row: Codable {
        var resource: String
        var path: String
        var label: String?
        /// The label svirt gives it while the domain runs (nil: left as it is).
        var runningLabel: String?
        var owner: String?
    }

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global) { ctx in
                let s = try ctx.lifecycle.status(of: name)
                let driver = try ctx.lifecycle.driver()
                let plan: LabelPlan
                if let r = s.running, r.label != nil || r.imageLabel != nil {
                    let domain = try DomainDefinition(xml: r.liveXML, mode: .live, source: "the live XML of '\(s.name)'")
                    plan = try driver.planner.plan(for: domain, label: try driver.generator.liveLabel(of: domain),
                                                   runtime: RuntimeResources(privatePaths: r.details.privatePaths), mode: .restore)
                } else {
                    let domain = try DomainDefinition(xml: s.running?.liveXML ?? s.definedXML ?? "", source: "the definition of '\(s.name)'")
                    let label = try driver.generator.generateLabel(for: domain, level: driver.generator.pool.level(atRank: 0)).label
                    plan = try driver.planner.plan(for: domain, label: label, mode: .restore)
                }
                let store = XattrFileLabelStore()
                var rows: [Row] = []
                for e in plan.entries where e.path.hasPrefix("/") {
                    var label: String?
                    var owner: String?
                    if let canonical = try? store.resolve(e.path), let f = try? store.open(canonical) {
                        label = (try? f.selinuxContext()) ?? nil
                    }
                    var st = stat()
                    if stat(e.path, &st) == 0 { owner = "\(Self.userName(st.st_uid)):\(Self.groupName(st.st_gid))" }
                    rows.append(Row(resource: e.resource, path: e.path, label: label,
                                    runningLabel: s.running != nil ? e.context?.description : nil, owner: owner))
                }
                if json {
                    try printJSON(rows)
                    return
                }
                for r in rows { print("\(r.label ?? "?") \(r.owner ?? "?") \(r.path)") }
            }
        }
    }

    static func userName(_ uid: UInt32) -> String {
        guard let p = getpwuid(uid), let n = p.pointee.pw_name else { return String(uid) }
        return String(cString: n)
    }

    static func groupName(_ gid: UInt32) -> String {
        guard let g = getgrgid(gid), let n = g.pointee.gr_name else { return String(gid) }
        return String(cString: n)
    }
}
