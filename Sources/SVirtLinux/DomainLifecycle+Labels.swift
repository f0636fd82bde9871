import Foundation
import Glibc
import SELinux
import SVirt

extension DomainLifecycle {
    /// One resource of a domain with the label it carries now, as `ls -Z` shows it.
    public struct ResourceLabel: Sendable, Hashable, Codable {
        /// What it is to the domain (`disk 'vda'`, `serial`, ...).
        public var resource: String
        public var path: String
        /// `security.selinux` now (nil: none, or unreadable).
        public var label: String?
        /// The label svirt gives it while the domain runs (nil: left as it is, or the domain is shut off).
        public var runningLabel: String?
        /// `user:group`.
        public var owner: String?
    }

    /// Every resource of the domain with its current label and owner: for a running domain the resources of its
    /// live XML (with the labels svirt gave them), otherwise those of its definition.
    public func resourceLabels(of s: Status) throws -> [ResourceLabel] {
        let driver = try driver()
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
        var rows: [ResourceLabel] = []
        for e in plan.entries where e.path.hasPrefix("/") {
            var label: String?
            var owner: String?
            if let canonical = try? store.resolve(e.path), let f = try? store.open(canonical) {
                label = (try? f.selinuxContext()) ?? nil
            }
            var st = stat()
            if stat(e.path, &st) == 0 { owner = "\(Self.userName(st.st_uid)):\(Self.groupName(st.st_gid))" }
            rows.append(ResourceLabel(resource: e.resource, path: e.path, label: label,
                                      runningLabel: s.running != nil ? e.context?.description : nil, owner: owner))
        }
        return rows
    }

    /// The name of a user id, else the number.
    public static func userName(_ uid: UInt32) -> String {
        guard let p = getpwuid(uid), let n = p.pointee.pw_name else { return String(uid) }
        return String(cString: n)
    }

    /// The name of a group id, else the number.
    public static func groupName(_ gid: UInt32) -> String {
        guard let g = getgrgid(gid), let n = g.pointee.gr_name else { return String(gid) }
        return String(cString: n)
    }
}
