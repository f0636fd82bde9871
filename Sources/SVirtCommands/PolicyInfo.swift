import ArgumentParser
import Foundation
import SELinuxPolicy

/// `svirt policy info`: what a policy holds, like seinfo.
struct PolicyInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a policy's target, version, MLS, handle_unknown and the count of each kind of statement.")

    @OptionGroup var options: PolicyOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "List the booleans and their values.") var booleans = false
    @Option(help: ArgumentHelp("For a Xen policy: the Xen version it was built for, which names its initial SIDs (4.2, 4.3 to 4.16, 4.17 and later; default: what the policy tells, else 4.17).", valueName: "VERSION"))
    var xenVersion: String?

    func validate() throws {
        if let v = xenVersion, XenRelease(version: v) == nil {
            throw ValidationError("--xen-version \(v): give a Xen version such as 4.16 or 4.19 (svirt knows 4.2 and later)")
        }
    }

    struct InitialSID: Codable {
        var sid: Int
        var name: String
        var context: String
    }

    struct Output: Codable {
        var policy: String
        var target: String
        var version: Int
        var mls: Bool
        var handleUnknown: String
        var policyCapabilities: [String]
        var statistics: PolicyStatistics
        var booleans: [String: Bool]?
        /// For a Xen policy: the release whose initial SID names are used, and whether it was assumed.
        var xenRelease: String?
        var xenReleaseAssumed: Bool?
        var initialSIDs: [InitialSID]?
        /// For a Xen policy: pirqcon, ioportcon, iomemcon, pcidevicecon and devicetreecon in policy language.
        var xenStatements: [String]?
    }

    func run() async throws {
        let (p, source) = try options.load()
        var values: [String: Bool]?
        if booleans {
            var v: [String: Bool] = [:]
            for b in p.booleans { v[b.name] = p.booleanValue(b.name) ?? b.defaultValue }
            values = v
        }
        var out = Output(policy: source, target: p.target.rawValue, version: p.version, mls: p.isMLS,
                         handleUnknown: p.handleUnknown.rawValue, policyCapabilities: p.policyCapabilities,
                         statistics: p.statistics, booleans: values)
        var release = XenRelease.current, assumed = false
        if p.target == .xen {
            let given = xenVersion.flatMap { XenRelease(version: $0) }
            release = given ?? p.inferredXenRelease ?? .current
            assumed = given == nil && p.inferredXenRelease == nil
            let contexts = p.objectContexts(xenRelease: release)
            out.xenRelease = release.rawValue
            out.xenReleaseAssumed = assumed
            out.initialSIDs = contexts.compactMap {
                if case .initialSID(let sid, let name, let c) = $0 { return InitialSID(sid: sid, name: name, context: c.description) }
                return nil
            }.sorted { $0.sid < $1.sid }
            out.xenStatements = contexts.filter {
                if case .initialSID = $0 { return false }
                return true
            }.map(\.statement)
        }
        if json { try printJSON(out); return }
        let s = p.statistics
        print("Policy:          \(source)")
        if p.target == .xen {
            print("Target:          xen (Xen FLASK; initial SIDs named as in \(release)\(assumed ? ", assumed: pass --xen-version if the policy is for an older Xen" : ""))")
        } else {
            print("Target:          \(p.target)")
        }
        print("Version:         \(p.version) (\(p.isMLS ? "MLS enabled" : "MLS disabled"))")
        print("Handle unknown:  \(p.handleUnknown)")
        print("Capabilities:    \(p.policyCapabilities.joined(separator: ", "))")
        let rows: [(String, Int, String, Int)] = [
            ("Classes", s.classes, "Permissions", s.permissions),
            ("Commons", s.commons, "Sensitivities", s.sensitivities),
            ("Categories", s.categories, "Types", s.types),
            ("Attributes", s.attributes, "Type aliases", s.typeAliases),
            ("Users", s.users, "Roles", s.roles),
            ("Booleans", s.booleans, "Cond. expr.", s.conditionals),
            ("Allow", s.allow, "Auditallow", s.auditallow),
            ("Dontaudit", s.dontaudit, "Type_trans", s.typeTransitions),
            ("Type_change", s.typeChanges, "Type_member", s.typeMembers),
            ("Name trans", s.filenameTransitions, "Range_trans", s.rangeTransitions),
            ("Role allow", s.roleAllows, "Role_trans", s.roleTransitions),
            ("Constraints", s.constraints, "Validatetrans", s.validatetrans),
            ("MLS constrain", s.mlsConstraints, "MLS val. tran", s.mlsValidatetrans),
            ("Permissives", s.permissiveTypes, "Polcap", s.policyCapabilities),
            ("Defaults", s.defaults, "Typebounds", s.typeBounds),
            ("Allowxperm", s.allowxperm, "Dontauditxperm", s.dontauditxperm),
            ("Initial SIDs", s.initialSIDs, "Fs_use", s.fsUse),
            ("Genfscon", s.genfscon, "Portcon", s.portcon),
            ("Netifcon", s.netifcon, "Nodecon", s.nodecon),
            ("Ibpkeycon", s.ibpkeycon, "Ibendportcon", s.ibendportcon),
        ]
        for r in rows {
            print("  " + "\(r.0):".padding(toLength: 16, withPad: " ", startingAt: 0) + String(r.1).leftPadded(8) + "    "
                  + "\(r.2):".padding(toLength: 16, withPad: " ", startingAt: 0) + String(r.3).leftPadded(8))
        }
        if p.target == .xen {
            print("  " + "Pirqcon:".padding(toLength: 16, withPad: " ", startingAt: 0) + String(s.pirqcon).leftPadded(8) + "    "
                  + "Ioportcon:".padding(toLength: 16, withPad: " ", startingAt: 0) + String(s.ioportcon).leftPadded(8))
            print("  " + "Iomemcon:".padding(toLength: 16, withPad: " ", startingAt: 0) + String(s.iomemcon).leftPadded(8) + "    "
                  + "Pcidevicecon:".padding(toLength: 16, withPad: " ", startingAt: 0) + String(s.pcidevicecon).leftPadded(8))
            print("  " + "Devicetreecon:".padding(toLength: 16, withPad: " ", startingAt: 0) + String(s.devicetreecon).leftPadded(8))
        }
        if let sids = out.initialSIDs {
            print("Initial SIDs (\(release)):")
            let width = sids.map { $0.name.count + $0.context.count }.max() ?? 0
            for i in sids {
                print("  sid \(i.name) \(i.context)" + String(repeating: " ", count: width - i.name.count - i.context.count + 2)
                      + "# SID \(i.sid)")
            }
        }
        if let sids = out.initialSIDs, let high = sids.map(\.sid).max(), high > release.initialSIDNames.count {
            print("Note: the policy has SID \(high), which \(release) does not have: it was built for a later Xen")
        }
        if let statements = out.xenStatements {
            print("Xen object contexts:")
            if statements.isEmpty { print("  (none)") }
            for st in statements { print("  \(st)") }
        }
        if let values {
            print("Booleans:")
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { print("  \(k) = \(v ? "on" : "off")") }
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
