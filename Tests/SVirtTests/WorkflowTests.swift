import Foundation
import SELinux
import SELinuxPolicy
import Testing
@testable import SVirt

/// The library half of import, clone and edit: XML in, XML out, no files touched.
@Suite("VM Manager workflows: import, clone plan, seclabel edits")
struct WorkflowTests {
    static let shareable = """
        <domain type='kvm'>
          <name>Shareable_VM</name>
          <uuid>0b6c1d2e-8a43-4f6c-9a0e-1b2c3d4e5f03</uuid>
          <memory unit='MiB'>256</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/>
              <source file='/var/lib/libvirt/images/Shareable_VM.img'/>
              <target dev='hda' bus='ide'/>
              <shareable/>
            </disk>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/Shareable_VM-private.qcow2'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <driver name='qemu' type='raw'/>
              <source file='/srv/iso/install.iso'/>
              <target dev='sda' bus='sata'/>
              <readonly/>
            </disk>
            <interface type='network'>
              <mac address='52:54:00:aa:bb:cc'/>
              <source network='default'/>
            </interface>
          </devices>
        </domain>
        """

    @Test("an imported domain's XML reads back with the given disks, flags, formats, memory, vcpus and type")
    func importXML() throws {
        let a = try ImportedDomain.ImportedDisk.parse("/images/a.qcow2,shareable,format=qcow2")
        let b = try ImportedDomain.ImportedDisk.parse("/images/b.img,readonly")
        var d = ImportedDomain(name: "imp", memoryMiB: 768, vcpus: 3, type: .qemu, disks: [a, b])
        d.disks[1].format = .raw
        let domain = try d.definition()
        #expect(domain.name == "imp" && domain.virtType == .qemu && domain.vcpus == 3 && domain.memoryKiB == 768 * 1024)
        #expect(domain.disks.map(\.path) == ["/images/a.qcow2", "/images/b.img"])
        #expect(domain.disks.map(\.format) == [.qcow2, .raw])
        #expect(domain.disks.map(\.shareable) == [true, false] && domain.disks.map(\.readOnly) == [false, true])
        #expect(domain.disks.map(\.target) == ["vda", "vdb"])
        // Two imports get two UUIDs.
        #expect(try d.definition().uuid != domain.uuid)
    }

    @Test("bad --disk text and bad sizes are errors that name the option and the fix")
    func importErrors() throws {
        for (text, needle) in [(",shareable", "the path is empty"), ("/a.img,shared", "'shared' is not a disk option"),
                               ("/a.img,format=vmdk", "format=vmdk is not supported"), ("/a.img,device=lun", "device=lun")] {
            #expect { try ImportedDomain.ImportedDisk.parse(text) } throws: { ($0 as? SVirtError)?.message.contains(needle) == true }
        }
        let disk = ImportedDomain.ImportedDisk(path: "/a.img", format: .raw)
        #expect { try ImportedDomain(name: "x", memoryMiB: 0, disks: [disk]).xmlText() } throws: {
            ($0 as? SVirtError)?.message.contains("--memory 0") == true
        }
        #expect { try ImportedDomain(name: "x", disks: [ImportedDomain.ImportedDisk(path: "rel.img", format: .raw)]).xmlText() } throws: {
            ($0 as? SVirtError)?.message.contains("is relative") == true
        }
        #expect { try ImportedDomain(name: "x", disks: [ImportedDomain.ImportedDisk(path: "/a.img")]).xmlText() } throws: {
            ($0 as? SVirtError)?.message.contains("format is not known") == true
        }
        #expect { try ImportedDomain(name: "a/b", disks: [disk]).xmlText() } throws: { ($0 as? SVirtError)?.message.contains("'/'") == true }
    }

    @Test("the Shareable_VM clone gets a new name, uuid and MAC, a copy of the private disk, and the same shared and read-only sources")
    func clonePlan() throws {
        let original = try DomainDefinition(xml: Self.shareable)
        let plan = try DomainClonePlan.plan(original, newName: "Shareable_VM-clone", takenMACs: ["52:54:00:aa:bb:cc"]) { _ in false }
        let clone = plan.clone
        #expect(clone.name == "Shareable_VM-clone" && clone.uuid != original.uuid)
        #expect(clone.disks.map(\.path) == ["/var/lib/libvirt/images/Shareable_VM.img",
                                            "/var/lib/libvirt/images/Shareable_VM-clone-private.qcow2", "/srv/iso/install.iso"])
        #expect(plan.copies.map(\.source) == ["/var/lib/libvirt/images/Shareable_VM-private.qcow2"])
        #expect(plan.kept.map(\.what) == [original.disks[0].displayName(index: 0), original.disks[2].displayName(index: 2)])
        let macs = DomainClonePlan.macAddresses(in: clone)
        #expect(macs.count == 1 && macs != ["52:54:00:aa:bb:cc"] && macs[0].hasPrefix("52:54:00:"))
        #expect(plan.macs.map(\.old) == ["52:54:00:aa:bb:cc"] && plan.macs.map(\.new) == macs)
        // The rest of the document survives.
        #expect(clone.xmlText().contains("<source network='default'/>") && clone.disks[0].shareable)

        // --file names the copy; a taken path gets a number.
        let named = try DomainClonePlan.plan(original, newName: "c", files: ["/new/c.qcow2"]) { _ in false }
        #expect(named.copies.map(\.destination) == ["/new/c.qcow2"])
        let numbered = try DomainClonePlan.plan(original, newName: "c") { $0 == "/var/lib/libvirt/images/c-private.qcow2" }
        #expect(numbered.copies.map(\.destination) == ["/var/lib/libvirt/images/c-private-1.qcow2"])
    }

    @Test("clone errors: the same name, an existing --file, the source as --file, a wrong count of --file")
    func cloneErrors() throws {
        let original = try DomainDefinition(xml: Self.shareable)
        func message(_ body: () throws -> DomainClonePlan) -> String {
            do { _ = try body(); return "no error" } catch { return (error as? SVirtError)?.message ?? "\(error)" }
        }
        #expect(message { try DomainClonePlan.plan(original, newName: "Shareable_VM") { _ in false } }.contains("needs a name other than"))
        #expect(message { try DomainClonePlan.plan(original, newName: "c", files: ["/x"]) { $0 == "/x" } }.contains("--file /x already exists"))
        #expect(message { try DomainClonePlan.plan(original, newName: "c", files: [original.disks[1].path ?? ""]) { _ in false } }
            .contains("is the source of"))
        let two = message { try DomainClonePlan.plan(original, newName: "c", files: ["/x", "/y"]) { _ in false } }
        #expect(two.contains("2 --file given, but 'Shareable_VM' has 1 private file(s) to copy"), "\(two)")
        #expect(message { try DomainClonePlan.plan(original, newName: "c", files: ["rel"]) { _ in false } }.contains("relative"))
    }

    @Test("a static-label VM is refused with the reason (one image per static label) unless forced, and then warned about")
    func cloneStatic() throws {
        let label = DomainSeclabel(model: "selinux", type: .static, relabel: false, label: "system_u:system_r:svirt_t:s0:c1022,c1023")
        let original = try DomainDefinition(xml: Self.shareable).settingSelinuxSeclabel(label)
        do {
            _ = try DomainClonePlan.plan(original, newName: "c") { _ in false }
            Issue.record("a static-label VM must not clone without force")
        } catch let e as SVirtError {
            #expect(e.message.contains("one image per static label") && e.message.contains("share one level"), "\(e.message)")
            #expect(e.message.contains("--force"))
        }
        let forced = try DomainClonePlan.plan(original, newName: "c", force: true) { _ in false }
        #expect(forced.clone.selinuxSeclabel.label == label.label)
        #expect(forced.warnings.contains { $0.contains("keeps the static label") })
    }

    @Test("--set-seclabel text: static, dynamic, dynamic with a base label, none; bad text names the fix")
    func seclabelSpec() throws {
        let s = try DomainDefinition.seclabel(spec: "static:system_u:system_r:svirt_t:s0:c1022,c1023", relabel: false)
        #expect(s.type == .static && s.label == "system_u:system_r:svirt_t:s0:c1022,c1023" && s.relabel == false)
        #expect(try DomainDefinition.seclabel(spec: "dynamic", relabel: nil).type == .dynamic)
        #expect(try DomainDefinition.seclabel(spec: "dynamic:system_u:system_r:svirt_tcg_t:s0", relabel: nil).baseLabel
            == "system_u:system_r:svirt_tcg_t:s0")
        #expect(try DomainDefinition.seclabel(spec: "none", relabel: nil).type == .none)
        for (spec, relabel, needle) in [("static", Bool?.none, "needs a context"), ("fixed:a:b:c", nil, "is not a label type"),
                                        ("dynamic", false, "drop --relabel no"), ("static:bad", nil, "--set-seclabel 'static:bad'")] {
            #expect { try DomainDefinition.seclabel(spec: spec, relabel: relabel) } throws: {
                ($0 as? SVirtError)?.message.contains(needle) == true
            }
        }
        let domain = try DomainDefinition(xml: Self.shareable).settingSelinuxSeclabel(s)
        #expect(domain.xmlText().contains("<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1022,c1023</label></seclabel>"))
    }

    @Test("the Debian policy rejects a seclabel's unknown type, a role the user may not have, and a sensitivity outside the policy, with the engine's reason",
          .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/policy/policy.33"), "needs the Debian policy"))
    func seclabelPolicy() throws {
        let data = try #require(FileManager.default.contents(atPath: "/etc/selinux/default/policy/policy.33"))
        let policy = try data.withUnsafeBytes { try PolicyDatabase(bytes: $0, source: "policy.33") }
        let base = try DomainDefinition(xml: Self.shareable)
        func problems(_ label: String) throws -> [DomainDefinition.SeclabelProblem] {
            try base.settingSelinuxSeclabel(DomainSeclabel(model: "selinux", type: .static, relabel: false, label: label))
                .seclabelProblems(in: policy)
        }
        #expect(try problems("system_u:system_r:svirt_t:s0:c1022,c1023").isEmpty)
        #expect(try problems("system_u:system_r:nosuch_t:s0:c1,c2").map(\.reason) == ["the policy has no type 'nosuch_t'"])
        #expect(try problems("staff_u:system_r:svirt_t:s0:c1,c2").first?.reason.contains("may not have role system_r") == true)
        // Debian's MCS policy has the one sensitivity s0.
        let s3 = try problems("system_u:system_r:svirt_t:s3:c1,c2")
        #expect(s3.count == 1 && s3.first?.reason.contains("s3") == true, "\(s3)")
    }
}
