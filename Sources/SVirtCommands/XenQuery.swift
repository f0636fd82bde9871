import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirtXen

/// `svirt xen query KIND A B`: may one domain reach another (or a device), with Xen's `_self`/`_target` labels.
struct XenQueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "May domain A map B's grants, bind B's event channels, map B's memory, or use device D?",
        discussion: """
            KIND is grant, event, memory, argo or device. A and B are xl.cfg files (the domain each builds, under its \
            running label), 'dom0', or contexts. When A and B are the same file, Xen checks A against its own _self \
            label; --self says so for contexts. With --device-model, A is B's stub device model and acts on B through \
            its _target label. For 'device', B is a device: pci:0000:00:19.0, irq:33, ioport:0xecc0-0xecdf, \
            iomem:0xfebd0-0xfebdf (4 KiB frames) or dt:/path; the checks are dom0 giving it and A using it. \
            Exits 0 when every check is allowed, 1 otherwise.
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case grant, event, memory, argo, device
    }

    @OptionGroup var options: XenPolicyOptions
    @Flag(name: .customLong("self"), help: "A and B are the same domain: B is A's _self label.") var sameDomain = false
    @Flag(help: "A is B's stub device model: B is A's _target label.") var deviceModel = false
    @Flag(help: "For grant: a read-only mapping (map_read only).") var readOnly = false
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: "grant, event, memory, argo or device.") var kind: Kind
    @Argument(help: ArgumentHelp("The acting domain.", valueName: "A")) var a: String
    @Argument(help: ArgumentHelp("The other domain, or the device.", valueName: "B|DEVICE")) var b: String

    func validate() throws {
        if sameDomain && deviceModel { throw ValidationError("--self and --device-model exclude each other") }
        if kind == .device, sameDomain || deviceModel { throw ValidationError("--self and --device-model are for domains, not devices") }
    }

    func run() async throws {
        let (policy, source) = try options.load()
        let checks: [XenCheck] = try await reportingXenErrors("query") {
            var da = try xenDomain(a, policy: policy, iommu: options.iommu)
            if kind == .device {
                let device = try XenDevice(parsing: b)
                return try policy.deviceAssignment(device, to: da, by: try policy.dom0(), iommu: options.iommu)
            }
            var db = try xenDomain(b, policy: policy, iommu: options.iommu)
            if sameDomain || a == b { db.name = da.name }
            if deviceModel {
                if da.name == db.name { da.name += "-dm" }
                da.deviceModelOf = db.name
                da.targetLabel = policy.targetLabel(guest: db.label, deviceModel: da.label).label
            }
            switch kind {
            case .grant: return policy.grantMap(da, db, readOnly: readOnly)
            case .event: return policy.eventChannel(da, db)
            case .memory: return policy.foreignMemory(da, db)
            case .argo: return policy.argoSend(da, db)
            case .device: return []
            }
        }
        let allowed = checks.allSatisfy(\.allowed)
        if json {
            struct Out: Codable { var policy: String; var kind: String; var allowed: Bool; var checks: [XenCheck.Report] }
            try printJSON(Out(policy: source, kind: kind.rawValue, allowed: allowed, checks: checks.map(\.report)))
        } else {
            print("policy:  \(source) (\(policy.release)\(policy.releaseAssumed ? " assumed" : ""))")
            for c in checks {
                print("\(c.allowed ? "allowed" : "DENIED "): \(c.step): \(c.subject)  \(c.tclass) "
                      + (c.permissions.count == 1 ? c.permissions[0] : "{ " + c.permissions.joined(separator: " ") + " }"))
                print("    \(c.source) → \(c.target)" + (c.targetNote.map { "  (\($0))" } ?? ""))
                for v in c.verdicts { print("    \(v.permission): " + (v.allowed ? v.reason : "denied — \(v.reason)")) }
                if let r = c.missingRule { print("    fix: \(r)") }
            }
            print("result:  \(allowed ? "allowed" : "denied")")
        }
        if !allowed { throw ExitCode(1) }
    }
}
