import Foundation
import Testing
import SELinux
import SELinuxPolicy
@testable import SVirtXen

/// Every context a fixture policy allows for its domains (each user, each of its roles, each of the role's types, at a
/// few levels) and every type under object_r.
func fixtureContexts(_ p: PolicyDatabase) -> [String] {
    var out: [String] = []
    let roles = Dictionary(uniqueKeysWithValues: p.roles.map { ($0.name, $0) })
    for u in p.users {
        var levels = [""]
        if p.isMLS {
            levels = u.name == "system_u" ? [":s0", ":s0:c1,c2", ":s0:c3,c4", ":s0:c1.c4", ":s0-s1:c0.c255", ":s1"] : [":s0"]
        }
        for r in u.roles {
            for t in roles[r]?.types ?? [] where p.type(named: t)?.isAttribute == false {
                for l in levels { out.append("\(u.name):\(r):\(t)\(l)") }
            }
        }
    }
    for t in p.types where !t.isAttribute {
        out.append("system_u:object_r:\(t.name)\(p.isMLS ? ":s0" : "")")
        if p.isMLS { out.append("system_u:object_r:\(t.name):s0:c1,c2") }
    }
    return out
}

@Suite("Xen decisions against checkpolicy -t xen -d -b", .enabled(if: haveCheckpolicy, "needs checkpolicy"))
struct XenOracleTests {
    /// Compares each decided check with libsepol's allowed set for the same source, target and class.
    static func compare(_ checks: [XenCheck], policy: XenPolicy, path: String, mls: Bool,
                        booleans: [String: Bool] = [:]) throws -> Int {
        let decided = checks.filter { if case .decided = $0.outcome { return true } else { return false } }
        let queries = decided.map { c in
            (source: c.source.description, target: c.target.description,
             classValue: policy.database.policyClass(named: c.tclass)?.value ?? 0)
        }
        let answers = try CheckpolicyOracle(policyPath: path, mls: mls).allowed(queries, booleans: booleans)
        for (c, a) in zip(decided, answers) {
            let theirs = try #require(a, "checkpolicy could not resolve \(c.source) or \(c.target)")
            for v in c.verdicts {
                #expect(v.allowed == theirs.contains(v.permission),
                        "\(path): \(c.step) \(c.source) → \(c.target) \(c.tclass) \(v.permission): svirt says \(v.allowed), libsepol allows \(theirs.sorted())")
            }
        }
        return decided.count
    }

    @Test("every check of the four label cases is decided as libsepol decides it, on every fixture policy",
          arguments: xenPolicyFixtures.map(\.name))
    func labelCases(policyName: String) throws {
        let mls = policyName.contains("mls")
        let policy = try loadXenPolicy(policyName)
        var checks: [XenCheck] = []
        var computed: [(XenComputedLabel, String, String, String)] = []
        for name in SVirtXenTests.labelCases {
            var text = try readText(xenConfigDirectory + "/\(name).cfg")
            if mls { text = withLevel(text, "s0:c1,c2") }
            let config = try configuration(text, source: "\(name).cfg")
            let build = try XenDomainBuild(config, policy: policy)
            let valid = build.labels.allSatisfy { $0.valid }
            #expect(valid, "\(name): \(build.labels.map { $0.problems.map(\.problem) })")
            checks += build.checks
            for step in build.steps {
                if case .computed(let l) = step { computed.append((l, name, build.domain.label.description, "")) }
            }
        }
        // Denials too: a guest given a device its type may not use, a model that may not serve its guest, a relabel
        // across roles, and a locked prot_domU_t.
        let dom0 = try policy.dom0()
        let level = mls ? ":s0:c1,c2" : ""
        let isolated = XenDomain(name: "iso", label: try SecurityContext(parsing: "system_u:system_r:isolated_domU_t\(level)"))
        let guest = XenDomain(name: "g", label: try SecurityContext(parsing: "system_u:system_r:domU_t\(level)"))
        checks += try policy.deviceAssignment(.pci(XenPCIAddress(bus: 0, device: 0x19, function: 0)), to: isolated, by: dom0)
        checks += try policy.deviceAssignment(.iomem(low: 0xfebc0, high: 0xfebe3), to: guest, by: dom0, iommu: .off)
        checks += try policy.deviceAssignment(.pirq(55), to: guest, by: dom0, iommu: .nointremap)
        checks += policy.eventChannel(isolated, guest) + policy.grantMap(guest, isolated) + policy.foreignMemory(guest, guest)
        // A relabel that changes the role: no 'allow system_r vm_r;', so RBAC removes domain transition.
        let vmLabel = try SecurityContext(parsing: "user_1:vm_r:nomigrate_t\(mls ? ":s0" : "")")
        let building = try SecurityContext(parsing: "system_u:system_r:nomigrate_t_building\(mls ? ":s0" : "")")
        let rbac = policy.check(step: "relabel", hook: "FLASK_RELABEL_DOMAIN", subject: "x", source: building, target: vmLabel,
                                class: "domain", permissions: ["transition"])
        if case .decided(let d) = rbac.outcome { #expect(d.result == .rbac, "\(d.result)") } else { Issue.record("not decided") }
        checks.append(rbac)
        let count = try Self.compare(checks, policy: policy, path: xenPolicyDirectory + "/" + policyName, mls: mls)
        #expect(count > 40)
        #expect(checks.contains { !$0.allowed } && checks.contains { $0.allowed })
    }

    @Test("the oracle gives the answers the fixture policy's rules say")
    func knownAnswers() throws {
        let oracle = CheckpolicyOracle(policyPath: xenPolicyDirectory + "/svirt-xen.30", mls: false)
        let db = try loadXenPolicy("svirt-xen.30").database
        let grant = try #require(db.policyClass(named: "grant")).value
        let answers = try oracle.allowed([
            ("system_u:system_r:domU_t", "system_u:system_r:domU_t", grant),
            ("system_u:system_r:domU_t", "system_u:system_r:isolated_domU_t", grant),
            ("user_1:vm_r:domU_t", "user_2:vm_r:domU_t", grant),
            ("system_u:system_r:no_such_t", "system_u:system_r:domU_t", grant),
        ])
        #expect(answers[0] == ["map_read", "map_write", "copy", "unmap"])
        #expect(answers[1] == [])
        #expect(answers[2] == ["unmap"])
        #expect(answers[3] == nil)
        let domain = try #require(db.policyClass(named: "domain")).value
        let t = try oracle.transitions([("system_u:system_r:domU_t", "system_u:system_r:domU_t", domain)])
        #expect(t == ["system_u:system_r:domU_t_self"])
    }

    @Test("_self, _target and event channel labels are the labels libsepol's transition_sid computes",
          arguments: xenPolicyFixtures.map(\.name))
    func computedLabels(policyName: String) throws {
        let mls = policyName.contains("mls")
        let policy = try loadXenPolicy(policyName)
        let l = mls ? ":s0:c1,c2" : ""
        let domains = ["domU_t", "isolated_domU_t", "prot_domU_t", "nomigrate_t", "nomigrate_t_building", "dm_dom_t",
                       "xenstore_t", "dom0_t"].map { "system_u:system_r:\($0)\(mls && $0 == "dom0_t" ? ":s0" : l)" }
        var queries: [(source: String, target: String, classValue: Int)] = []
        var ours: [String] = []
        let domainClass = try #require(policy.database.policyClass(named: "domain")).value
        let eventClass = try #require(policy.database.policyClass(named: "event")).value
        for a in domains {
            let ca = try SecurityContext(parsing: a)
            queries.append((a, a, domainClass))
            ours.append(policy.selfLabel(ca).label.description)
            for b in domains {
                let cb = try SecurityContext(parsing: b)
                queries.append((b, a, domainClass))
                ours.append(policy.targetLabel(guest: cb, deviceModel: ca).label.description)
                queries.append((a, b, eventClass))
                ours.append(try #require(policy.channelLabel(creator: ca, remote: cb)).label.description)
            }
        }
        let theirs = try CheckpolicyOracle(policyPath: xenPolicyDirectory + "/" + policyName, mls: mls).transitions(queries)
        for (i, q) in queries.enumerated() {
            #expect(theirs[i] == ours[i], "\(policyName): transition \(q): svirt \(ours[i]), libsepol \(theirs[i] ?? "none")")
        }
        #expect(ours.contains { $0.contains("domU_t_self") } && ours.contains { $0.contains("domU_t_target") })
    }

    @Test("3,000 seeded random queries per fixture policy give libsepol's allowed vectors, with booleans as set",
          arguments: xenPolicyFixtures.map(\.name))
    func randomQueries(policyName: String) throws {
        let mls = policyName.contains("mls")
        let base = try loadXenPolicy(policyName).database
        var rng = SeededRandom(seed: 0xC0FFEE ^ UInt64(policyName.utf8.count))
        let contexts = fixtureContexts(base)
        let classes = base.classes
        for booleans in [[:], ["prot_doms_locked": true, "guest_writeconsole": false]] as [[String: Bool]] {
            let db = try base.settingBooleans(booleans)
            var queries: [(source: String, target: String, classValue: Int)] = []
            for _ in 0..<(booleans.isEmpty ? 3000 : 1000) {
                queries.append((contexts.randomElement(using: &rng) ?? "", contexts.randomElement(using: &rng) ?? "",
                                classes.randomElement(using: &rng)?.value ?? 1))
            }
            let theirs = try CheckpolicyOracle(policyPath: xenPolicyDirectory + "/" + policyName, mls: mls)
                .allowed(queries, booleans: booleans)
            var allowedSome = 0
            for (q, t) in zip(queries, theirs) {
                let s = try db.resolve(q.source), tt = try db.resolve(q.target)
                let cls = classes[q.classValue - 1]
                let ours = Set(db.decide(source: s, target: tt, class: cls.name).allowedPermissions)
                #expect(ours == t, "\(policyName) \(booleans): \(q.source) → \(q.target) \(cls.name): svirt \(ours.sorted()), libsepol \((t ?? []).sorted())")
                if !ours.isEmpty { allowedSome += 1 }
            }
            #expect(allowedSome > 0)
        }
    }
}
