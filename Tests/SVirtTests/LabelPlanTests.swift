import SELinux
import Testing
@testable import SVirt

@Suite("label plans (section 8)") struct LabelPlanTests {
    func plan(_ xmlFile: String, level: String, contexts: ContextsConfiguration = Fixtures.debianContexts,
              host: FakeHost = FakeHost(), mode: LabelPlanner.Mode = .apply) throws -> LabelPlan {
        let d = try DomainDefinition(xml: try Golden.text(xmlFile))
        let label = try Fixtures.generator(contexts).generateLabel(for: d, level: Fixtures.level(level)).label
        return try LabelPlanner(contexts: contexts, host: host).plan(for: d, label: label, mode: mode)
    }

    func text(_ p: LabelPlan) -> String { p.lines.map { $0 + "\n" }.joined() }

    @Test("the chapter's VMs have the golden plans", arguments: [
        ("Dynamic_VM1", "s0:c585,c813"), ("Dynamic_VM2", "s0:c535,c601"), ("Shareable_VM", "s0:c231,c245"),
        ("Static_VM1", "s0:c1,c2"),
    ])
    func chapter(name: String, level: String) throws {
        let p = try plan("\(name).xml", level: level)
        #expect(try Golden.check(text(p), "\(name).plan"), "\(text(p))")
    }

    @Test("every row of the section 8 table has its golden line")
    func section8Golden() throws {
        let p = try plan("Section8.xml", level: "s0:c10,c20", host: FakeHost.section8)
        #expect(try Golden.check(text(p), "Section8.plan"), "\(text(p))")
    }

    /// (path, remember, restore, access) for each relabelled path of Section8, and nil context for those left alone.
    @Test("each rule of the table remembers and restores as section 8 says")
    func section8Rules() throws {
        let p = try plan("Section8.xml", level: "s0:c10,c20", host: FakeHost.section8)
        func entry(_ path: String) -> LabelPlan.Entry? { p.entries.first { $0.path == path } }
        let image = "system_u:object_r:svirt_image_t:s0:c10,c20"
        let cases: [(String, String?, Bool, LabelPlan.RestoreRule, LabelPlan.Access)] = [
            // top image: image label, remembered, recalled
            ("/var/lib/libvirt/images/s8-top.qcow2", image, true, .recall, .readWrite),
            // backing files: content label, never remembered or restored
            ("/var/lib/libvirt/images/s8-base.qcow2", "system_u:object_r:virt_content_t:s0", false, .leave, .read),
            ("/var/lib/libvirt/images/s8-root.raw", "system_u:object_r:virt_content_t:s0", false, .leave, .read),
            // shareable: the image base verbatim
            ("/var/lib/libvirt/images/s8-shared.img", "system_u:object_r:svirt_image_t:s0", false, .leave, .readWrite),
            // readonly: the content label
            ("/var/lib/libvirt/images/s8-ro.img", "system_u:object_r:virt_content_t:s0", false, .leave, .read),
            // shareable wins over readonly
            ("/var/lib/libvirt/images/s8-shared-ro.img", "system_u:object_r:svirt_image_t:s0", false, .leave, .read),
            // per-disk relabel='no'
            ("/var/lib/libvirt/images/s8-norelabel.img", nil, false, .leave, .readWrite),
            // per-disk label, inherited by the chain
            ("/var/lib/libvirt/images/s8-custom.qcow2", "system_u:object_r:svirt_custom_image_t:s0:c10,c20", true, .recall, .readWrite),
            ("/var/lib/libvirt/images/s8-custom-base.raw", "system_u:object_r:svirt_custom_image_t:s0:c10,c20", false, .leave, .read),
            // network and directory disks are left alone
            ("nbd://storage.example:10809/export", nil, false, .leave, .readWrite),
            ("/srv/s8-dir", nil, false, .leave, .readWrite),
            // the chain read from the qcow2 header
            ("/var/lib/libvirt/images/s8-auto.qcow2", image, true, .recall, .readWrite),
            ("/var/lib/libvirt/images/s8-auto-base.raw", "system_u:object_r:virt_content_t:s0", false, .leave, .read),
            // hostdevs
            ("/dev/bus/usb/002/007", image, true, .recall, .readWrite),
            ("/dev/vfio/42", image, false, .defaultLabel, .readWrite),
            ("/sys/bus/pci/devices/0000:06:03.0/config", image, true, .recall, .readWrite),
            ("/sys/bus/pci/devices/0000:06:03.0/resource2", image, true, .recall, .readWrite),
            // input, TPM
            ("/dev/input/event3", image, true, .recall, .readWrite),
            ("/dev/tpm0", image, false, .defaultLabel, .readWrite),
            ("/sys/class/tpm/tpm0/device/cancel", image, false, .defaultLabel, .readWrite),
            // chardevs
            ("/var/log/svirt/s8-serial.log", image, true, .recall, .readWrite),
            ("/dev/ttyS3", image, true, .recall, .readWrite),
            ("/run/s8/plainpipe", image, true, .recall, .readWrite),
            ("/var/log/svirt/s8-norelabel.log", nil, false, .leave, .readWrite),
            ("/var/log/svirt/s8-custom.log", "system_u:object_r:svirt_custom_log_t:s0:c10,c20", true, .recall, .readWrite),
            ("/run/s8/agent.sock", image, true, .recall, .readWrite),
            ("/run/s8/bind-exists.sock", image, true, .recall, .readWrite),
            ("/run/s8/bind-new.sock", nil, false, .leave, .readWrite),
            ("/run/s8/pipe.in", image, true, .recall, .readWrite),
            ("/run/s8/pipe.out", image, true, .recall, .readWrite),
            // firmware, nvram, kernel
            ("/usr/share/OVMF/OVMF_CODE.fd", nil, false, .leave, .read),
            ("/var/lib/libvirt/qemu/nvram/Section8_VARS.fd", image, true, .recall, .readWrite),
            ("/var/lib/libvirt/boot/vmlinuz", "system_u:object_r:virt_content_t:s0", true, .recall, .read),
            ("/var/lib/libvirt/boot/initrd.img", "system_u:object_r:virt_content_t:s0", true, .recall, .read),
            ("/var/lib/libvirt/boot/board.dtb", "system_u:object_r:virt_content_t:s0", true, .recall, .read),
            // virtiofs
            ("/srv/share", nil, false, .leave, .readWrite),
        ]
        for (path, context, remember, restore, access) in cases {
            let e = try #require(entry(path), "no entry for \(path)")
            #expect(e.context?.description == context, "\(path)")
            #expect(e.remember == remember, "\(path) remember")
            #expect(e.restore == restore, "\(path) restore")
            #expect(e.access == access, "\(path) access")
        }
        // Device grants are the hostdev, input and TPM nodes; the serial 'dev' node is not one.
        #expect(entry("/dev/bus/usb/002/007")?.isDeviceGrant == true)
        #expect(entry("/dev/input/event3")?.isDeviceGrant == true)
        #expect(entry("/dev/tpm0")?.isDeviceGrant == true)
        #expect(entry("/dev/ttyS3")?.isDeviceGrant == false)
        // Console 0 is serial 0 again, pty devices have no path, and the empty cdrom has nothing.
        #expect(p.entries.filter { $0.kind == .characterDevice }.count == 10)
        #expect(p.warnings.contains { $0.contains("/srv/s8-dir is a directory") })
    }

    @Test("a domain with relabel='no' lists every resource and touches none")
    func relabelOff() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "s", devices: Fixtures.fileDisk("/i.img") + "<serial type='file'><source path='/log'/></serial>",
                                                   seclabel: "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        let p = try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
        #expect(p.lines == ["/i.img;", "/log;"])
        #expect(p.entries.allSatisfy { $0.restore == .leave && !$0.remember && $0.note?.contains("relabel='no'") == true })
    }

    @Test("a static label with relabel='yes' labels the images with its own range")
    func staticRelabel() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "s", devices: Fixtures.fileDisk("/i.img"),
                                                   seclabel: "<seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c1022,c1023</label></seclabel>"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        let p = try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
        #expect(p.lines == ["/i.img;system_u:object_r:svirt_image_t:s0:c1022,c1023"])
    }

    @Test("a missing PCI device or unreadable chain is an error when labelling and a warning when restoring")
    func missingHostThings() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "m", devices: Fixtures.fileDisk("/x.qcow2", format: "qcow2")
            + "<hostdev mode='subsystem' type='pci'><source><address bus='9' slot='0' function='0'/></source></hostdev>"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        let planner = LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost())
        #expect(throws: SVirtError.self) { try planner.plan(for: d, label: label) }
        let p = try planner.plan(for: d, label: label, mode: .restore)
        #expect(p.lines == ["/x.qcow2;system_u:object_r:svirt_image_t:s0:c1,c2"])
        #expect(p.warnings.count == 2)
    }

    @Test("runtime paths and an emulated TPM's socket are labelled with the image label")
    func runtime() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "r", devices: "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        let p = try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost())
            .plan(for: d, label: label, runtime: RuntimeResources(privatePaths: ["/run/svirt/r"], tpmEmulatorSocket: "/run/svirt/r/swtpm.sock"))
        #expect(p.lines == ["/run/svirt/r/swtpm.sock;system_u:object_r:svirt_image_t:s0:c1,c2",
                            "/run/svirt/r;system_u:object_r:svirt_image_t:s0:c1,c2"])
        #expect(p.entries[0].restore == .leave && !p.entries[0].remember)
        #expect(p.entries[1].restore == .recall && p.entries[1].remember)
    }
}
