import Foundation
import Testing
import SELinux
import SELinuxPolicy
@testable import SVirtXen

@Suite("Xen domain build simulation")
struct XenBuildTests {
    @Test("each label case gives its expected steps (golden files), the same on policy versions 24 and 30",
          arguments: ["svirt-xen.24", "svirt-xen.30"])
    func goldenSteps(policyName: String) throws {
        let policy = try loadXenPolicy(policyName)
        for name in labelCases {
            let build = try XenDomainBuild(try loadConfiguration(name), policy: policy)
            let expected = try readText(xenConfigDirectory + "/\(name).steps").split(separator: "\n").map(String.init)
            #expect(build.stepLines == expected, "\(policyName) \(name):\n\(build.stepLines.joined(separator: "\n"))")
            #expect(build.allowed)
        }
    }

    @Test("the steps name what each label case must do: create from dom0, relabel for init_seclabel, set_target for a stub domain")
    func stepKinds() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        func steps(_ name: String) throws -> [String] { try XenDomainBuild(try loadConfiguration(name), policy: policy).checks.map(\.step) }
        for name in labelCases {
            let build = try XenDomainBuild(try loadConfiguration(name), policy: policy)
            let create = try #require(build.checks.first { $0.step == "create" })
            #expect(create.source.type == "dom0_t" && create.tclass == "domain" && create.permissions == ["create"])
        }
        #expect(try steps("init-seclabel").filter { $0.hasPrefix("relabel") }
                == ["relabel: relabelfrom", "relabel: relabelto", "relabel: transition"])
        #expect(try !steps("seclabel-only").contains { $0.hasPrefix("relabel") })
        #expect(try steps("stubdom").filter { $0.hasPrefix("set_target") }
                == ["set_target: make_priv_for", "set_target: set_as_target", "set_target"])
        #expect(try !steps("no-label").contains { $0.hasPrefix("set_target") || $0 == "resolve labels" })
        let plain = try XenDomainBuild(try loadConfiguration("no-label"), policy: policy)
        #expect(plain.labels.first?.key.contains("domU") == true && plain.domain.label.type == "domU_t")
        let stub = try XenDomainBuild(try loadConfiguration("stubdom"), policy: policy)
        #expect(stub.deviceModel?.targetLabel?.type == "domU_t_target" && stub.deviceModel?.deviceModelOf == "hvm1")
    }

    @Test("a stub domain without its own label gets the domDM initial SID")
    func defaultDeviceModel() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        let build = try XenDomainBuild(try configuration("""
            name = 'h'
            type = 'hvm'
            device_model_stubdomain_override = 1
            """), policy: policy)
        #expect(build.labels.map(\.key).contains("initial SID domDM (libxl's default)"))
        #expect(build.deviceModel?.label.type == "dm_dom_t" && build.allowed)
    }

    @Test("denials come with the reason: TE with the missing rule, a boolean, a constraint, RBAC, an invalid label")
    func denials() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        // TE: isolated_domU_t may not use the NIC.
        let te = try XenDomainBuild(try configuration("""
            name = 'iso'
            seclabel = 'system_u:system_r:isolated_domU_t'
            pci = [ '00:19.0' ]
            """), policy: policy)
        #expect(!te.allowed)
        let use = try #require(te.checks.first { !$0.allowed })
        #expect(use.step.hasPrefix("use pci:0000:00:19.0") && use.step.contains("line 3"))
        #expect(use.missingRule == "allow isolated_domU_t nic_dev_t:resource use_iommu;")
        #expect(te.text(policy: "p", release: policy.release, assumed: false).contains("DENIED"))
        // A boolean: prot_domU_t cannot be created while prot_doms_locked is on.
        let locked = try XenPolicy(policy.database.settingBooleans(["prot_doms_locked": true]))
        let prot = try XenDomainBuild(try configuration("name = 'p'\nseclabel = 'system_u:system_r:prot_domU_t'\n"), policy: locked)
        let create = try #require(prot.checks.first { $0.step == "create" })
        #expect(!create.allowed && create.verdicts[0].reason.contains("prot_doms_locked=0"))
        // A constraint: grants between guests of different users.
        let a = XenDomain(name: "a", label: try SecurityContext(parsing: "user_1:vm_r:domU_t"))
        let b = XenDomain(name: "b", label: try SecurityContext(parsing: "user_2:vm_r:domU_t"))
        let grant = policy.grantMap(a, b)[0]
        #expect(!grant.allowed && grant.verdicts.allSatisfy { $0.reason.contains("u1 == u2") })
        // RBAC: a relabel that changes the role.
        let rbac = try XenDomainBuild(try configuration("""
            name = 'v'
            init_seclabel = 'system_u:system_r:nomigrate_t_building'
            seclabel = 'user_1:vm_r:nomigrate_t'
            """), policy: policy)
        let transition = try #require(rbac.checks.first { $0.step == "relabel: transition" })
        #expect(!transition.allowed && transition.verdicts[0].reason.contains("RBAC"))
        // An invalid label: every component is checked, and the checks that need it are not reached.
        let bad = try XenDomainBuild(try configuration("name = 'x'\nseclabel = 'user_1:vm_r:dm_dom_t'\n"), policy: policy)
        #expect(bad.labels[0].problems.map(\.component) == ["type"])
        #expect(!bad.allowed)
        let unknown = try XenDomainBuild(try configuration("name = 'x'\nseclabel = 'nobody:nothing_r:no_t:s0'\n"), policy: policy)
        #expect(Set(unknown.labels[0].problems.map(\.component)) == ["user", "role", "type", "level"])
        #expect(unknown.checks.contains { if case .notReached = $0.outcome { return true } else { return false } })
    }

    @Test("MLS: a label without a level, or with levels that differ across the relabel, is reported")
    func mlsLabels() throws {
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let noLevel = try XenDomainBuild(try loadConfiguration("seclabel-only"), policy: policy)
        #expect(noLevel.labels[0].problems.map(\.component) == ["level"])
        let nonMLS = try loadXenPolicy("svirt-xen.30")
        let withLevel = try XenDomainBuild(try configuration("name = 'g'\nseclabel = 'system_u:system_r:domU_t:s0:c1,c2'\n"),
                                           policy: nonMLS)
        #expect(withLevel.labels[0].problems.first?.problem.contains("EINVAL") == true)
        let split = try XenDomainBuild(try configuration("""
            name = 'v'
            init_seclabel = 'system_u:system_r:nomigrate_t_building:s0:c1,c2'
            seclabel = 'system_u:system_r:nomigrate_t:s0:c3,c4'
            """), policy: policy)
        let transition = try #require(split.checks.first { $0.step == "relabel: transition" })
        #expect(!transition.allowed && transition.verdicts[0].reason.contains("mlsconstrain domain transition"))
    }

    @Test("devices are labelled from pirqcon, ioportcon, iomemcon, pcidevicecon and devicetreecon, else the initial SID")
    func deviceLabels() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        func types(_ d: XenDevice) throws -> [String] { try policy.deviceLabels(d).map { "\($0.device)=\($0.label.type)" } }
        #expect(try types(.pirq(33)) == ["irq:33=nic_dev_t"])
        #expect(try types(.pirq(34)) == ["irq:34=irq_t"])
        #expect(try types(.pci(XenPCIAddress(bus: 0, device: 0x19, function: 0))) == ["pci:0000:00:19.0=nic_dev_t"])
        #expect(try types(.pci(XenPCIAddress(segment: 1, bus: 8, device: 0, function: 0))) == ["pci:0001:08:00.0=gpu_dev_t"])
        #expect(try types(.pci(XenPCIAddress(bus: 0xc8, device: 0, function: 0))) == ["pci:0000:c8:00.0=device_t"])
        #expect(try types(.deviceTree("/soc/ethernet@ff0e0000")) == ["dt:/soc/ethernet@ff0e0000=nic_dev_t"])
        #expect(try types(.iomem(low: 0xfebc0, high: 0xfebe3))
                == ["iomem:0xfebc0-0xfebcf=iomem_t", "iomem:0xfebd0-0xfebdf=nic_dev_t", "iomem:0xfebe0=nic_dev_t",
                    "iomem:0xfebe1-0xfebe3=iomem_t"])
        #expect(try types(.ioports(low: 0xecc8, high: 0xecc8)) == ["ioport:0xecc8=nic_dev_t"])
        #expect(try types(.ioports(low: 0x3f8, high: 0x3ff)) == ["ioport:0x3f8-0x3ff=ioport_t"])
        // Version 24 drops devicetreecon: the path falls back to the device SID.
        let v24 = try loadXenPolicy("svirt-xen.24")
        #expect(try v24.deviceLabels(.deviceTree("/soc/ethernet@ff0e0000")).map(\.label.type) == ["device_t"])
    }

    @Test("Xen's target substitution: the same domain is _self, a device model's guest is _target, another domain is itself")
    func targetSubstitution() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        let a = XenDomain(name: "a", label: try SecurityContext(parsing: "system_u:system_r:domU_t"))
        let b = XenDomain(name: "b", label: try SecurityContext(parsing: "system_u:system_r:domU_t"))
        #expect(policy.targetSID(a, a).0.type == "domU_t_self")
        #expect(policy.targetSID(a, b).0.type == "domU_t")
        let dm = XenDomain(name: "a-dm", label: try SecurityContext(parsing: "system_u:system_r:dm_dom_t"), deviceModelOf: "a")
        #expect(policy.targetSID(dm, a).0.type == "domU_t_target")
        #expect(policy.targetSID(dm, b).0.type == "domU_t")
        // So a device model may map its own guest's memory and no other guest's.
        #expect(policy.foreignMemory(dm, a)[0].allowed && !policy.foreignMemory(dm, b)[0].allowed)
        // domU_t → domU_t grant: allowed both ways, by different rules (domU_t_self and domU_t).
        #expect(policy.grantMap(a, a)[0].target.type == "domU_t_self" && policy.grantMap(a, b)[0].allowed)
    }

    @Test("a SELinux policy is refused with a message that says which file Xen loads")
    func notXen() throws {
        let path = repositoryRoot + "/Tests/Fixtures/policy/small.33"
        let db = try PolicyDatabase(bytes: try readBytes(path))
        #expect { try XenPolicy(db) } throws: { e in
            (e as? XenError)?.message.contains("xenpolicy") == true
        }
    }
}
