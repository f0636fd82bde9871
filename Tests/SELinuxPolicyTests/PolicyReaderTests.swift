import Foundation
import SELinux
import Testing
@testable import SELinuxPolicy

@Suite("policy reader")
struct PolicyReaderTests {
    static let smallVersions = Array(24...33)

    @Test("the fixture policy reads at every version from 24 to 33 with the same symbols", arguments: smallVersions)
    func everyVersion(version: Int) throws {
        let p = try loadPolicy("\(fixtureDirectory)/small.\(version)")
        #expect(p.target == .selinux)
        #expect(p.version == version)
        #expect(p.isMLS)
        #expect(p.handleUnknown == .deny)
        let s = p.statistics
        #expect(s.types == 13 && s.attributes == 4 && s.typeAliases == 2)
        #expect(s.roles == 4 && s.users == 3 && s.booleans == 3 && s.conditionals == 3)
        #expect(s.sensitivities == 2 && s.categories == 8)
        #expect(s.constraints == 3 && s.mlsConstraints == 4 && s.validatetrans == 1 && s.mlsValidatetrans == 1)
        #expect(s.typeBounds == 1 && s.permissiveTypes == 1 && s.policyCapabilities == 2)
        #expect(p.policyCapabilities == ["network_peer_controls", "open_perms"])
        #expect(p.permissiveTypes == ["admin_t"])
        #expect(p.type(named: "common_t")?.name == "shared_t")
        #expect(p.type(named: "child_t")?.bounds == "app_t")
        #expect(p.sensitivities.map(\.aliases) == [[], ["secret"]])
        #expect(p.categories[3].aliases == ["cat_three"])
        #expect(p.users.first { $0.name == "user_u" }?.range?.description == "s0-s0:c0.c5")
        #expect(s.filenameTransitions == (version >= 25 ? 2 : 0))
        // allowxperm on the attribute domain expands to its five types.
        #expect(s.allowxperm == (version >= 30 ? 5 : 0))
        #expect(s.ibpkeycon == (version >= 31 ? 1 : 0) && s.ibendportcon == (version >= 31 ? 1 : 0))
        #expect(s.portcon == 2 && s.netifcon == 1 && s.nodecon == 2 && s.fsUse == 3 && s.genfscon == 2)
        // default_* statements arrive at 27 (user/role/range) and 28 (type).
        #expect(s.defaults == (version >= 27 ? 2 : 0))
        let texts = p.constraints.map(\.text)
        // From version 29 the policy keeps the type names as written; before, the expanded types.
        #expect(texts.contains(version >= 29 ? "mlsconstrain file { read write } (h1 dom h2 or t1 == mls_exempt);"
                                             : "mlsconstrain file { read write } (h1 dom h2 or t1 == { kernel_t child_t });"))
        #expect(texts.contains("constrain process transition ((r1 == r2 or r1 dom r2) or r1 == { user_r system_r });"))
    }

    @Test("object contexts come back with their contexts")
    func objectContexts() throws {
        let p = try loadPolicy("\(fixtureDirectory)/small.33")
        let ocons = p.objectContexts
        #expect(ocons.contains(.port(protocol: 17, low: 1000, high: 2000,
                                     context: try SecurityContext(parsing: "system_u:object_r:port_t:s0:c1"))))
        #expect(ocons.contains(.infinibandEndPort(device: "mlx4_0", port: 1,
                                                  context: try SecurityContext(parsing: "system_u:object_r:ib_t:s0"))))
        #expect(ocons.contains(.node(address: "10.0.0.0", mask: "255.0.0.0",
                                     context: try SecurityContext(parsing: "system_u:object_r:node_t:s0"))))
        #expect(ocons.contains(.genfs(fileSystem: "proc", path: "/sys", tclass: "dir",
                                      context: try SecurityContext(parsing: "system_u:object_r:shared_t:s0"))))
        #expect(ocons.contains(.initialSID(sid: 1, name: "kernel",
                                           context: try SecurityContext(parsing: "system_u:system_r:kernel_t:s0-s1:c0.c7"))))
    }

    @Test("Xen policies at versions 24 and 30 expose pirq, ioport, iomem, pcidevice and devicetree contexts")
    func xen() throws {
        let nic = try SecurityContext(parsing: "system_u:object_r:nic_dev_t")
        for v in [24, 30] {
            let p = try loadPolicy("\(fixtureDirectory)/xen.\(v)")
            #expect(p.target == .xen && p.version == v && !p.isMLS)
            let o = p.objectContexts
            #expect(o.contains(.xenPIRQ(irq: 33, context: nic)))
            #expect(o.contains(.xenIOPort(low: 0xecc0, high: 0xecdf, context: nic)))
            #expect(o.contains(.xenIOMemory(low: 0xfebe0, high: 0xfebff, context: nic)))
            #expect(o.contains(.xenPCIDevice(device: 0xc8, context: nic)))
            #expect(o.contains(.initialSID(sid: 12, name: "domU", context: try SecurityContext(parsing: "system_u:system_r:domU_t"))))
            #expect(o.contains(.xenDeviceTree(path: "/soc/ethernet@ff0e0000", context: nic)) == (v == 30))
            #expect(o.contains(.xenIOMemory(low: 0x1_0000_0000, high: 0x1_0000_0000, context: nic)) == (v == 30))
            let d = try p.decide(source: SecurityContext(parsing: "system_u:system_r:domU_t"),
                                 target: SecurityContext(parsing: "system_u:object_r:nic_dev_t"), class: "resource")
            #expect(d.allowedPermissions == ["use"])
        }
    }

    @Test("a CIL policy without MLS reads and follows handle_unknown allow")
    func cil() throws {
        let p = try loadPolicy("\(fixtureDirectory)/tiny.33")
        #expect(!p.isMLS && p.handleUnknown == .allow)
        let d = try p.decide(source: "sys_u:sys_r:proc_t", target: "sys_u:object_r:data_t", class: "no_such_class")
        #expect(d.allowed == .all)
        #expect(throws: PolicyFormatError.self) { try p.resolve("sys_u:sys_r:proc_t:s0") }
    }

    @Test("the Debian policies read, with the counts seinfo reports",
          .enabled(if: haveDebianPolicies, "needs selinux-policy-default and selinux-policy-mls"))
    func debian() throws {
        let p = try loadPolicy(debianDefaultPolicy)
        let s = p.statistics
        #expect(p.version == 33 && p.isMLS && p.handleUnknown == .allow)
        #expect(s.classes == 134 && s.types == 3936 && s.attributes == 217 && s.booleans == 291 && s.conditionals == 321)
        #expect(s.roles == 15 && s.users == 7 && s.initialSIDs == 27 && s.portcon == 479 && s.genfscon == 93)
        #expect(s.allow == 104302 && s.auditallow == 21 && s.dontaudit == 16813 && s.rangeTransitions == 14)
        // seinfo counts type_transition rules with their filename forms.
        #expect(s.typeTransitions + s.filenameTransitions == 9245)
        #expect(s.constraints == 133 && s.mlsConstraints == 110 && s.policyCapabilities == 5)
        #expect(p.booleanValue("virt_use_execmem") == false)
        let m = try loadPolicy(debianMLSPolicy)
        #expect(m.sensitivities.count == 16 && m.categories.count == 1024)
    }

    @Test("the built-in policy has what sVirt needs")
    func builtIn() throws {
        let p = try BuiltInPolicy.load()
        #expect(p.isMLS && p.version == 33)
        for t in ["svirt_t", "svirt_tcg_t", "svirt_image_t", "virt_image_t", "virt_content_t", "virtd_t", "unconfined_t"] {
            #expect(p.type(named: t) != nil, "\(t)")
        }
        for c in ["file", "dir", "process", "blk_file", "chr_file", "sock_file", "fifo_file", "lnk_file"] {
            #expect(p.policyClass(named: c) != nil, "\(c)")
        }
        #expect(p.booleanValue("virt_use_execmem") == false && p.booleanValue("virt_transition_userdomain") == false)
        #expect(BuiltInPolicy.bytes == (try readBytes(repositoryRoot + "/policy/builtin/svirt.33")),
                "the embedded bytes are the committed policy/builtin/svirt.33; run scripts/generate-builtin-policy.sh")
        let vm = "system_u:system_r:svirt_t:s0:c1,c2"
        #expect(try p.check(source: SecurityContext(parsing: vm), target: SecurityContext(parsing: "system_u:object_r:svirt_image_t:s0:c1,c2"),
                            class: "file", permissions: ["read", "write"]).result == .allow)
        #expect(try p.check(source: SecurityContext(parsing: vm), target: SecurityContext(parsing: "system_u:object_r:svirt_image_t:s0:c3,c4"),
                            class: "file", permissions: ["read", "write"]).result == .constraint)
        #expect(try p.check(source: SecurityContext(parsing: vm), target: SecurityContext(parsing: "system_u:object_r:virt_image_t:s0"),
                            class: "file", permissions: ["read"]).result == .teRule)
        let execmem = try p.check(source: SecurityContext(parsing: vm), target: SecurityContext(parsing: vm), class: "process",
                                  permissions: ["execmem"])
        #expect(execmem.result == .boolean && execmem.booleans == [BooleanSetting(name: "virt_use_execmem", value: true)])
        let tcg = "system_u:system_r:svirt_tcg_t:s0:c1,c2"
        #expect(try p.check(source: SecurityContext(parsing: tcg), target: SecurityContext(parsing: tcg), class: "process",
                            permissions: ["execmem"]).result == .allow)
    }
}

@Suite("policy format errors")
struct PolicyFormatErrorTests {
    @Test("a truncated policy names the section and the offset where the bytes ended")
    func truncated() throws {
        let bytes = try readBytes("\(fixtureDirectory)/small.33")
        let cut = Array(bytes.prefix(bytes.count / 2))
        do {
            _ = try PolicyDatabase(bytes: cut, source: "half.33")
            Issue.record("a truncated policy must not load")
        } catch let e as PolicyFormatError {
            #expect(e.code == .truncated || e.code == .tooLarge)
            #expect(e.offset <= cut.count)
            #expect(e.description.contains("'half.33'"))
            #expect(e.description.contains("at byte"))
        }
    }

    @Test("a wrong magic number and an unsupported version are refused at their offsets")
    func header() throws {
        var bytes = try readBytes("\(fixtureDirectory)/small.33")
        bytes[0] = 0
        #expect { try PolicyDatabase(bytes: bytes) } throws: { e in
            guard let e = e as? PolicyFormatError else { return false }
            return e.code == .badMagic && e.offset == 0 && e.section == "header"
        }
        bytes = try readBytes("\(fixtureDirectory)/small.33")
        bytes[16] = 23
        #expect { try PolicyDatabase(bytes: bytes) } throws: { e in
            guard let e = e as? PolicyFormatError else { return false }
            return e.code == .unsupportedVersion && e.offset == 16 && e.found == "version 23"
        }
    }

    @Test("an index past its table is an out-of-range error naming what the policy has")
    func outOfRange() throws {
        let p = try loadPolicy("\(fixtureDirectory)/tiny.33")
        #expect(p.statistics.types == 3)
        // The first access vector rule follows the symbol tables; find it by its source type field: patch
        // every 16-bit type field of the first rule until one read fails with an out-of-range type.
        var bytes = try readBytes("\(fixtureDirectory)/tiny.33")
        var found = false
        for at in stride(from: 100, to: bytes.count - 2, by: 1) where bytes[at] == 1 && bytes[at + 1] == 0 {
            var b = bytes
            b[at] = 0xff
            b[at + 1] = 0x7f
            if case .failure(let e as PolicyFormatError) = Result(catching: { try PolicyDatabase(bytes: b) }),
               e.section == "access vector table", e.code == .outOfRange {
                #expect(e.expected == "a type 1...4")   // three types and one attribute
                #expect(e.found == "type 32767")
                found = true
                break
            }
        }
        bytes.removeAll()
        #expect(found)
    }
}
