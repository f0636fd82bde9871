import Foundation
import SELinux
import SELinuxPolicy
import SVirt
import SVirtLinux
import Testing

/// A scratch state directory and an SELinux root whose configuration names one of the Debian policies.
struct BooleanHost {
    let dir: TempDir
    let env: HostEnvironment
    let registry: SQLiteRegistry

    init(policyType: String) throws {
        dir = try TempDir("svirt-bool")
        let root = "\(dir.path)/selinux"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "SELINUX=permissive\nSELINUXTYPE=\(policyType)\n".write(toFile: "\(root)/config", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/\(policyType)", withDestinationPath: "/etc/selinux/\(policyType)")
        env = try HostEnvironment(stateDirectory: "\(dir.path)/state", selinuxRoot: root)
        registry = try SQLiteRegistry(state: env.state)
    }

    func store() throws -> BooleanStore { try BooleanStore(environment: env, registry: registry) }

    func define(_ name: String, type: String, seclabel: String = "") throws {
        let uuid = UUID().uuidString.lowercased()
        let xml = """
            <domain type='\(type)'>
              <name>\(name)</name>
              <uuid>\(uuid)</uuid>
              <memory unit='MiB'>64</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64' machine='pc'>hvm</type></os>
              <devices/>\(seclabel)
            </domain>
            """
        let d = try DomainDefinition(xml: xml, source: name)
        _ = try registry.define(name: name, uuid: d.uuid, xml: d.xmlText())
    }
}

/// The virt booleans of a binary policy and their defaults, as setools reads them.
func setoolsVirtBooleans(_ policy: String) throws -> [String: Bool] {
    let script = """
        import setools, sys
        p = setools.SELinuxPolicy(sys.argv[1])
        for b in p.bools():
            if str(b).startswith(("virt_", "svirt_")): print(b, int(b.state))
        """
    let r = try run("/usr/bin/python3", ["-c", script, policy])
    #expect(r.status == 0, "\(r.err)")
    var out: [String: Bool] = [:]
    for line in r.out.split(separator: "\n") {
        let f = line.split(separator: " ")
        if f.count == 2 { out[String(f[0])] = f[1] == "1" }
    }
    return out
}

let debianPolicies: [String] = ["default", "mls"].filter { FileManager.default.fileExists(atPath: "/etc/selinux/\($0)/policy/policy.33") }

@Suite("booleans: the store, the virt booleans and what they change for VMs")
struct BooleanStoreTests {
    @Test("the list holds the policy's virt booleans with their defaults (as setools reads them) and the built-in policy's virt_transition_userdomain",
          arguments: debianPolicies)
    func listDefaults(type: String) throws {
        let host = try BooleanHost(policyType: type)
        defer { host.dir.cleanup() }
        let list = try host.store().list()
        let oracle = try setoolsVirtBooleans("/etc/selinux/\(type)/policy/policy.33")
        #expect(!oracle.isEmpty)
        let fromHost = list.filter { $0.policy.hasSuffix("/\(type)/policy/policy.33") }
        #expect(Dictionary(uniqueKeysWithValues: fromHost.map { ($0.name, $0.value) }) == oracle)
        #expect(fromHost.allSatisfy { $0.origin == .policyDefault && $0.value == $0.defaultValue && $0.override == nil })
        let userdomain = try #require(list.first { $0.name == "virt_transition_userdomain" })
        #expect(userdomain.policy == PolicyAccessChecker.builtInSource && !userdomain.value)
        #expect(!list.contains { $0.name == "nscd_use_shm" }, "booleans of other modules are not virt booleans")
    }

    @Test("an override changes the effective value, persists in a new store, and can be cleared; unknown names are refused")
    func overrides() throws {
        let host = try BooleanHost(policyType: "default")
        defer { host.dir.cleanup() }
        #expect(try host.store().effectiveBooleans()["virt_use_execmem"] == false)
        let outcome = try host.store().set("virt_use_execmem", true)
        #expect(outcome.effective && outcome.value == true)
        let again = try BooleanStore(environment: host.env, registry: SQLiteRegistry(state: host.env.state))
        #expect(try again.effectiveBooleans()["virt_use_execmem"] == true)
        #expect(try again.effectivePolicy().booleanValue("virt_use_execmem") == true)
        let listed = try #require(try again.list().first { $0.name == "virt_use_execmem" })
        #expect(listed.origin == .override && listed.value && !listed.defaultValue)
        // A boolean only the built-in policy has is stored too, and says who decides it.
        let user = try again.set("virt_transition_userdomain", true)
        #expect(user.notes.contains { $0.contains("svirt's built-in sVirt policy decides") })
        #expect(try again.effectiveBooleans()["virt_transition_userdomain"] == true)
        try again.set("virt_use_execmem", nil)
        #expect(try again.effectiveBooleans()["virt_use_execmem"] == false)
        do {
            try again.set("virt_use_teleport", true)
            Issue.record("an unknown boolean was accepted")
        } catch let e as SVirtError {
            #expect(e.code == .configuration)
            #expect(e.message.contains("'virt_use_teleport' is not a boolean") && e.message.contains("virt_use_execmem"))
        }
        #expect(try again.registry.booleanSettings()["virt_use_teleport"] == nil)
    }

    @Test("virt_use_execmem changes the execmem decision of a TCG guest and nothing for a KVM guest", arguments: debianPolicies)
    func execmemEffects(type: String) throws {
        let host = try BooleanHost(policyType: type)
        defer { host.dir.cleanup() }
        try host.define("tcg", type: "qemu")
        try host.define("kvm", type: "kvm")
        let store = try host.store()
        let needs = try DomainAccessNeeds(environment: host.env, registry: host.registry, policy: store.policy).all()
        #expect(needs.warnings.isEmpty, "\(needs.warnings)")
        #expect(needs.needs["tcg"]?.contains { $0.tclass == "process" && $0.permissions == ["execmem"] } == true)
        #expect(needs.needs["kvm"]?.contains { $0.permissions == ["execmem"] } == false)
        let list = try store.list(effectsFor: needs.needs.values.flatMap { $0 })
        let execmem = try #require(list.first { $0.name == "virt_use_execmem" })
        #expect(execmem.effects.map(\.domain) == ["tcg"])
        let e = try #require(execmem.effects.first)
        #expect(e.allowedWhenOn && !e.allowedWhenOff && e.access == "svirt_t svirt_t:process { execmem }")
        // The other booleans change nothing for these two guests (no disks, no devices).
        #expect(list.filter { $0.name != "virt_use_execmem" }.allSatisfy { $0.effects.isEmpty })
    }

    @Test("an image on NFS takes the policy's genfscon label nfs_t, whose use virt_use_nfs decides", arguments: debianPolicies)
    func nfsEffect(type: String) throws {
        let data = try #require(FileManager.default.contents(atPath: "/etc/selinux/\(type)/policy/policy.33"))
        let policy = try PolicyDatabase(bytes: [UInt8](data))
        let mounts = [(point: "/srv/nfs", type: "nfs4"), (point: "/", type: "ext4")]
        let label = try #require(DomainAccessNeeds.fileSystemLabel("/srv/nfs/vm.img", mounts: mounts, policy: policy))
        #expect(label.type == "nfs_t")
        #expect(DomainAccessNeeds.fileSystemLabel("/srv/nfsother/vm.img", mounts: mounts, policy: policy) == nil)
        let process = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1,c2")
        let read = VMAccessNeed(domain: "vm", purpose: "disk 'vda' (read)", source: process, target: label, tclass: "file",
                                permissions: ["getattr", "open", "read"], object: "/srv/nfs/vm.img")
        let write = VMAccessNeed(domain: "vm", purpose: "disk 'vda' (read-write)", source: process, target: label, tclass: "file",
                                 permissions: ["getattr", "open", "read", "write"], object: "/srv/nfs/vm.img")
        let effects = VirtBooleans.effects(of: "virt_use_nfs", in: policy, needs: [read, write])
        // In the mls policy nfs_t is at s0: a VM at s0:c1,c2 may read it (dominance) but never write it (no write
        // down), whatever the boolean says; in the default (MCS) policy the boolean decides both.
        #expect(effects.map(\.purpose) == (type == "mls" ? ["disk 'vda' (read)"] : ["disk 'vda' (read)", "disk 'vda' (read-write)"]))
        #expect(effects.allSatisfy { $0.allowedWhenOn && !$0.allowedWhenOff })
        let need = write
        #expect(VirtBooleans.effects(of: "virt_use_samba", in: policy, needs: [need]).isEmpty)
    }

    @Test("QEMU's 'Permission denied' lines with CRLF endings give one path each")
    func landlockParsingCRLF() {
        let text = "Could not open '/var/lib/x/vm2.img': Permission denied\r\nwarning: x\r\n"
            + "failed to open /dev/vfio/12: Permission denied\r\n"
        let found = LandlockDenialLog.permissionDenials(in: text)
        #expect(found.map(\.path) == ["/var/lib/x/vm2.img", "/dev/vfio/12"])
        #expect(found.map(\.line) == ["Could not open '/var/lib/x/vm2.img': Permission denied", "failed to open /dev/vfio/12: Permission denied"])
    }

    @Test("QEMU's 'Permission denied' lines give their paths, and the governing Landlock rule is named")
    func landlockParsing() throws {
        let text = """
            qemu-system-x86_64: -blockdev {"driver":"file"}: Could not open '/var/lib/x/vm2.img': Permission denied
            qemu-system-x86_64: warning: host doesn't support requested feature
            Could not access KVM kernel module: Permission denied
            failed to open /dev/vfio/12: Permission denied
            """
        let found = LandlockDenialLog.permissionDenials(in: text)
        #expect(found.map(\.path) == ["/var/lib/x/vm2.img", nil, "/dev/vfio/12"])
        let rules = [
            LandlockRuleRecord(Landlock.PathRule(path: "/var/lib/x/vm1.img", access: .readWrite, reason: "disk 'vda'")),
            LandlockRuleRecord(Landlock.PathRule(path: "/usr/share/qemu", access: .readOnly, reason: "firmware")),
        ]
        #expect(LandlockDenialLog.refusingRule(for: "/var/lib/x/vm2.img", write: true, rules: rules).hasPrefix("no rule of the VM's Landlock ruleset covers"))
        let ro = LandlockDenialLog.refusingRule(for: "/usr/share/qemu/bios.bin", write: true, rules: rules)
        #expect(ro.contains("read-only /usr/share/qemu") && ro.contains("writing is refused"), "\(ro)")
        #expect(LandlockDenialLog.refusingRule(for: "/x", write: nil, rules: nil).contains("not recorded"))
    }
}

@Suite("booleans where SELinux is on, and Landlock refusal records")
struct BooleanKernelTests {
    /// A procfs whose mount table names a selinuxfs directory with `enforce` and booleans, as the kernel lays it out.
    static func fakeSELinuxfs(_ dir: TempDir, booleans: [String: String]) throws -> HostProbe {
        let fs = "\(dir.path)/selinuxfs"
        try FileManager.default.createDirectory(atPath: "\(fs)/booleans", withIntermediateDirectories: true)
        try "1".write(toFile: "\(fs)/enforce", atomically: true, encoding: .utf8)
        for (k, v) in booleans { try v.write(toFile: "\(fs)/booleans/\(k)", atomically: true, encoding: .utf8) }
        _ = try dir.file("proc/self/mounts", "proc /proc proc rw 0 0\nselinuxfs \(fs) selinuxfs rw,relatime 0 0\n")
        return HostProbe(procRoot: "\(dir.path)/proc")
    }

    @Test("where SELinux is on the kernel's values decide, and setting one stores svirt's override and names setsebool -P")
    func kernelValues() throws {
        let host = try BooleanHost(policyType: "default")
        defer { host.dir.cleanup() }
        let probe = try Self.fakeSELinuxfs(host.dir, booleans: ["virt_use_execmem": "1 1", "virt_use_nfs": "0 0"])
        let store = try BooleanStore(environment: host.env, registry: host.registry, probe: probe)
        #expect(store.selinuxEnabled)
        try host.registry.setBoolean("virt_use_nfs", true)
        let effective = try store.effectiveBooleans()
        #expect(effective["virt_use_execmem"] == true, "the kernel's value, not the policy's default")
        #expect(effective["virt_use_nfs"] == false, "svirt's override does not count where SELinux is on")
        let list = try store.list()
        #expect(list.first { $0.name == "virt_use_execmem" }?.origin == .kernel)
        let outcome = try store.set("virt_use_samba", true)
        #expect(outcome.notes.contains { $0.contains("svirt does not change them") && $0.contains("setsebool -P virt_use_samba on") })
        #expect(!outcome.effective, "the kernel's boolean is untouched")
    }

    @Test("Permission denied lines in a Landlock guest's QEMU log are read live, recorded and read back; guests not under Landlock are not recorded")
    func records() throws {
        let host = try BooleanHost(policyType: "default")
        defer { host.dir.cleanup() }
        let log = try host.dir.file("run/vm/qemu.log", "qemu-system-x86_64: Could not open '/srv/other.img': Permission denied\nother output\n")
        var row = RunningDomain(name: "vm", uuid: "u", id: 1, state: .running, label: "system_u:system_r:svirt_t:s0:c1,c2",
                                liveXML: "<domain/>", startedAt: 0)
        row.details.logFile = log
        row.details.confinement = "landlock"
        row.details.landlockRules = [LandlockRuleRecord(Landlock.PathRule(path: "/srv/own.img", access: .readWrite, reason: "disk"))]
        let live = LandlockDenialLog.live(row)
        #expect(live.map(\.path) == ["/srv/other.img"])
        #expect(live.first?.rule.hasPrefix("no rule of the VM's Landlock ruleset covers /srv/other.img") == true)
        #expect(try LandlockDenialLog.recorded(domain: "vm", registry: host.registry).isEmpty)
        for d in live { LandlockDenialLog.record(d.message, origin: d.origin, running: row, registry: host.registry) }
        let back = try LandlockDenialLog.recorded(domain: "vm", registry: host.registry)
        #expect(back.map(\.path) == ["/srv/other.img"] && back.first?.process == row.label)
        var selinuxRow = row
        selinuxRow.name = "confined"
        selinuxRow.details.confinement = "enforcing"
        #expect(LandlockDenialLog.record("Could not open '/x': Permission denied", origin: "qmp", running: selinuxRow,
                                         registry: host.registry).isEmpty)
        #expect(try LandlockDenialLog.recorded(domain: "confined", registry: host.registry).isEmpty)
    }
}
