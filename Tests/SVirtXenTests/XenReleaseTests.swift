import Foundation
import Testing
import SELinux
import SELinuxPolicy
@testable import SVirtXen

@Suite("Xen initial SID names per release, and Xen statements in policy language")
struct XenReleaseTests {
    @Test("versions map to the release whose SID list they use")
    func versions() {
        #expect(XenRelease(version: "4.2") == .xen4_2)
        #expect(XenRelease(version: "4.3") == .xen4_3 && XenRelease(version: "4.16.5") == .xen4_3)
        #expect(XenRelease(version: "4.17") == .xen4_17 && XenRelease(version: "4.19-rc") == .xen4_17)
        #expect(XenRelease(version: "5.0") == .xen4_17)
        #expect(XenRelease(version: "4.1") == nil && XenRelease(version: "4") == nil && XenRelease(version: "x.y") == nil)
        #expect(XenRelease.xen4_17.initialSIDName(1) == "xenboot" && XenRelease.xen4_3.initialSIDName(1) == "xen")
        #expect(XenRelease.xen4_17.initialSIDName(13) == "domDM" && XenRelease.xen4_3.initialSIDName(13) == "sid13")
        #expect(XenRelease.xen4_2.initialSID(named: "domU") == nil && XenRelease.xen4_3.initialSID(named: "domU") == 11)
    }

    /// The `sid NAME CONTEXT` lines of a policy source, in order.
    static func sidContexts(_ text: String) -> [(String, String)] {
        text.split(separator: "\n").compactMap { line -> (String, String)? in
            let w = line.split(separator: " ").map(String.init)
            return w.count == 3 && w[0] == "sid" ? (w[1], w[2]) : nil
        }
    }

    @Test("a 4.17 policy's SIDs get the names of its source, and the policy says it is for 4.17 or later",
          arguments: xenPolicyFixtures.map(\.name))
    func namesMatchSource(policyName: String) throws {
        let policy = try loadXenPolicy(policyName)
        #expect(policy.release == .xen4_17 && !policy.releaseAssumed)
        let source = try readText(xenPolicyDirectory + (policyName.contains("mls") ? "/svirt-xen-mls.conf" : "/svirt-xen.conf"))
        let expected = Self.sidContexts(source)
        #expect(expected.count == 13)
        var ours: [(Int, String, String)] = []
        for case .initialSID(let sid, let name, let c) in policy.database.objectContexts(xenRelease: policy.release) {
            ours.append((sid, name, c.description))
        }
        ours.sort { $0.0 < $1.0 }
        #expect(ours.map(\.1) == expected.map(\.0))
        #expect(ours.map(\.2) == expected.map(\.1))
        #expect(try policy.initialContext("domU").type == "domU_t" && (try policy.initialContext("domDM")).type == "dm_dom_t")
    }

    @Test("libsepol names a 4.17 policy's SIDs with the 4.3-4.16 list, one place off: checkpolicy -F shows it",
          .enabled(if: haveCheckpolicy, "needs checkpolicy"))
    func libsepolMisnames() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/checkpolicy")
        p.arguments = ["-t", "xen", "-b", xenPolicyDirectory + "/svirt-xen.30", "-F", "-o", dir + "/out.conf"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let decompiled = Self.sidContexts(try readText(dir + "/out.conf"))
        let db = try loadXenPolicy("svirt-xen.30").database
        var byNumber: [Int: String] = [:]
        for case .initialSID(let sid, let name, _) in db.objectContexts(xenRelease: .xen4_3) { byNumber[sid] = name }
        // libsepol's names for SIDs 1...12 are the 4.3-4.16 list; the context of its "xen" is xenboot_t.
        #expect(Array(decompiled.prefix(12).map(\.0)) == (1...12).map { byNumber[$0] ?? "?" })
        #expect(decompiled.first?.0 == "xen" && decompiled.first?.1.contains("xenboot_t") == true)
        #expect(XenRelease.xen4_17.initialSIDName(1) == "xenboot")
    }

    @Test("Xen object contexts print as policy statements, PCI addresses also decoded")
    func statements() throws {
        let db = try loadXenPolicy("svirt-xen.30").database
        let s = db.objectContexts.filter { if case .initialSID = $0 { return false } else { return true } }.map(\.statement)
        #expect(s.contains("pirqcon 33 system_u:object_r:nic_dev_t"))
        #expect(s.contains("ioportcon 0xecc0-0xecdf system_u:object_r:nic_dev_t"))
        #expect(s.contains("iomemcon 0xfebd0-0xfebdf system_u:object_r:nic_dev_t"))
        #expect(s.contains("iomemcon 0xfebe0 system_u:object_r:nic_dev_t"))
        #expect(s.contains("pcidevicecon 0xc8 system_u:object_r:nic_dev_t  # 0000:00:19.0"))
        #expect(s.contains("pcidevicecon 0x10800 system_u:object_r:gpu_dev_t  # 0001:08:00.0"))
        #expect(s.contains("devicetreecon \"/soc/ethernet@ff0e0000\" system_u:object_r:nic_dev_t"))
        let v24 = try loadXenPolicy("svirt-xen.24").database.objectContexts.map(\.statement)
        #expect(!v24.contains { $0.hasPrefix("devicetreecon") })
        #expect(XenPCIAddress(sbdf: 0xc8).description == "0000:00:19.0")
        #expect(XenPCIAddress(parsing: "00:19.0")?.sbdf == 0xc8)
        #expect(XenPCIAddress(parsing: "0001:08:00.0")?.sbdf == 0x10800)
        #expect(XenPCIAddress(parsing: "00:20.0") == nil && XenPCIAddress(parsing: "00:19.8") == nil)
        #expect(XenPCIAddress(parsing: "0:0:0:0") == nil && XenPCIAddress(parsing: "") == nil)
    }
}

@Suite("svirt's Xen test policy")
struct XenFixturePolicyTests {
    @Test("the committed sources and binaries are what scripts/compile-xen-fixtures.sh makes of the template",
          .enabled(if: haveCheckpolicy, "needs checkpolicy"))
    func regenerates() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/scripts", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/Tests/Fixtures/xen/policy", withIntermediateDirectories: true)
        try fm.copyItem(atPath: repositoryRoot + "/scripts/compile-xen-fixtures.sh", toPath: dir + "/scripts/compile-xen-fixtures.sh")
        try fm.copyItem(atPath: xenPolicyDirectory + "/svirt-xen.conf.in", toPath: dir + "/Tests/Fixtures/xen/policy/svirt-xen.conf.in")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [dir + "/scripts/compile-xen-fixtures.sh"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for name in ["svirt-xen.conf", "svirt-xen-mls.conf"] + xenPolicyFixtures.map(\.name) {
            let made = try readBytes(dir + "/Tests/Fixtures/xen/policy/" + name)
            #expect(made == (try readBytes(xenPolicyDirectory + "/" + name)), "\(name) differs from what the script makes")
        }
    }

    @Test("the fixture binaries are Xen policies at versions 24 and 30, with and without MLS")
    func facts() throws {
        for (name, mls) in xenPolicyFixtures {
            let db = try loadXenPolicy(name).database
            #expect(db.target == .xen && db.isMLS == mls && db.version == (name.hasSuffix(".24") ? 24 : 30))
            #expect(db.classes.map(\.name) == ["xen", "xen2", "domain", "domain2", "hvm", "mmu", "resource", "shadow", "event",
                                               "grant", "security", "version", "argo"])
            #expect(db.statistics.pirqcon == 2 && db.statistics.pcidevicecon == 2)
            #expect(db.statistics.devicetreecon == (name.hasSuffix(".30") ? 1 : 0))
            #expect(db.booleans.map(\.name).sorted() == ["guest_writeconsole", "prot_doms_locked"])
        }
    }
}
