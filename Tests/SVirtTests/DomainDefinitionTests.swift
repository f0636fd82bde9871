import Foundation
import Testing
@testable import SVirt

@Suite("domain XML") struct DomainDefinitionTests {
    static let full = """
    <domain type='kvm' id='7' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
      <name>full</name>
      <uuid>C7A5FDBD-EDAF-9455-926A-D65C16DB1809</uuid>
      <memory unit='GiB'>2</memory>
      <currentMemory unit='KiB'>1048576</currentMemory>
      <vcpu placement='static'>4</vcpu>
      <os>
        <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
        <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
        <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/full_VARS.fd</nvram>
        <kernel>/var/lib/libvirt/boot/vmlinuz</kernel>
        <initrd>/var/lib/libvirt/boot/initrd.img</initrd>
        <cmdline>console=ttyS0 root=/dev/vda</cmdline>
        <dtb>/var/lib/libvirt/boot/board.dtb</dtb>
        <boot dev='hd'/>
      </os>
      <features><acpi/><apic/></features>
      <devices>
        <emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk type='file' device='disk'>
          <driver name='qemu' type='qcow2' cache='none'/>
          <source file='/var/lib/libvirt/images/full.qcow2'>
            <seclabel model='selinux' relabel='yes'><label>system_u:object_r:svirt_image_t:s0:c1,c2</label></seclabel>
          </source>
          <backingStore type='file'>
            <format type='qcow2'/>
            <source file='/var/lib/libvirt/images/base.qcow2'/>
            <backingStore type='file'>
              <format type='raw'/>
              <source file='/var/lib/libvirt/images/root.raw'/>
              <backingStore/>
            </backingStore>
          </backingStore>
          <target dev='vda' bus='virtio'/>
          <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
        </disk>
        <disk type='block' device='disk'>
          <source dev='/dev/vg0/full-data'/>
          <target dev='vdb' bus='virtio'/>
          <shareable/>
        </disk>
        <disk type='file' device='cdrom'>
          <target dev='sda' bus='sata'/>
          <readonly/>
        </disk>
        <disk type='network' device='disk'>
          <driver name='qemu' type='raw'/>
          <source protocol='nbd' name='export'><host name='storage.example' port='10809'/></source>
          <target dev='vdc' bus='virtio'/>
        </disk>
        <disk type='dir' device='floppy'>
          <source dir='/srv/floppy'/>
          <target dev='fda'/>
        </disk>
        <serial type='file'><source path='/var/log/full-serial.log'/><target port='0'/></serial>
        <serial type='pty'><target port='1'/></serial>
        <console type='pty'><target type='serial' port='0'/></console>
        <channel type='unix'><source mode='bind' path='/run/full/agent.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
        <parallel type='pipe'><source path='/run/full/pipe'/></parallel>
        <serial type='dev'><source path='/dev/ttyS3'/></serial>
        <hostdev mode='subsystem' type='pci' managed='yes'>
          <source><address domain='0x0000' bus='0x06' slot='0x02' function='0x1'/></source>
        </hostdev>
        <hostdev mode='subsystem' type='pci'>
          <driver name='kvm'/>
          <source><address bus='6' slot='3' function='0'/></source>
        </hostdev>
        <hostdev mode='subsystem' type='usb'>
          <source><vendor id='0x1234'/><product id='0xbeef'/><address bus='2' device='7'/></source>
        </hostdev>
        <tpm model='tpm-crb'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>
        <input type='evdev'><source dev='/dev/input/event3' grab='all'/></input>
        <input type='tablet' bus='usb'/>
        <filesystem type='mount' accessmode='passthrough'>
          <driver type='virtiofs'/>
          <source dir='/srv/share'/>
          <target dir='share'/>
        </filesystem>
        <video><model type='virtio'/></video>
      </devices>
      <seclabel type='static' model='selinux' relabel='yes'>
        <label>system_u:system_r:svirt_t:s0:c1,c2</label>
      </seclabel>
      <seclabel type='dynamic' model='dac' relabel='yes'/>
      <qemu:commandline><qemu:arg value='-no-reboot'/></qemu:commandline>
    </domain>
    """

    @Test("every element the driver needs is read")
    func full() throws {
        let d = try Fixtures.parse(Self.full)
        #expect(d.name == "full")
        #expect(d.uuid == "c7a5fdbd-edaf-9455-926a-d65c16db1809")
        #expect(d.virtType == .kvm)
        #expect(d.memoryKiB == 2 * 1024 * 1024)
        #expect(d.vcpus == 4)
        #expect(d.os.arch == "x86_64" && d.os.machine == "pc-q35-8.2")
        #expect(d.os.loader == "/usr/share/OVMF/OVMF_CODE.fd" && d.os.loaderReadOnly && d.os.loaderType == "pflash")
        #expect(d.os.nvram == "/var/lib/libvirt/qemu/nvram/full_VARS.fd")
        #expect(d.os.nvramTemplate == "/usr/share/OVMF/OVMF_VARS.fd")
        #expect(d.os.kernel == "/var/lib/libvirt/boot/vmlinuz")
        #expect(d.os.initrd == "/var/lib/libvirt/boot/initrd.img")
        #expect(d.os.cmdline == "console=ttyS0 root=/dev/vda")
        #expect(d.os.dtb == "/var/lib/libvirt/boot/board.dtb")
        #expect(d.emulator == "/usr/bin/qemu-system-x86_64")

        #expect(d.disks.count == 5)
        let vda = d.disks[0]
        #expect(vda.format == .qcow2 && vda.path == "/var/lib/libvirt/images/full.qcow2" && vda.target == "vda")
        #expect(vda.seclabels == [DeviceSeclabel(model: "selinux", relabel: true, label: "system_u:object_r:svirt_image_t:s0:c1,c2")])
        #expect(vda.backingStore == .chain([
            Disk.BackingImage(type: .file, format: .qcow2, path: "/var/lib/libvirt/images/base.qcow2"),
            Disk.BackingImage(type: .file, format: .raw, path: "/var/lib/libvirt/images/root.raw"),
        ]))
        #expect(d.disks[1].type == .block && d.disks[1].path == "/dev/vg0/full-data" && d.disks[1].shareable)
        #expect(d.disks[2].device == .cdrom && d.disks[2].path == nil && d.disks[2].readOnly)
        #expect(d.disks[3].type == .network && d.disks[3].network?.displayName == "nbd://storage.example:10809/export")
        #expect(d.disks[4].type == .dir && d.disks[4].path == "/srv/floppy" && d.disks[4].device == .floppy)

        let c = d.characterDevices
        #expect(c.map(\.kind) == [.serial, .serial, .console, .channel, .parallel, .serial])
        #expect(c[0].sourceType == .file && c[0].path == "/var/log/full-serial.log" && c[0].index == 0)
        #expect(c[1].sourceType == .pty && c[1].index == 1)
        #expect(c[2].targetType == "serial")
        #expect(c[3].sourceType == .unix && c[3].mode == "bind" && c[3].path == "/run/full/agent.sock")
        #expect(c[4].sourceType == .pipe && c[4].path == "/run/full/pipe")
        #expect(c[5].sourceType == .dev && c[5].path == "/dev/ttyS3" && c[5].index == 2)

        #expect(d.hostDevices.map(\.source) == [
            .pci(HostDevice.PCIAddress(domain: 0, bus: 6, slot: 2, function: 1), backend: .vfio),
            .pci(HostDevice.PCIAddress(domain: 0, bus: 6, slot: 3, function: 0), backend: .kvm),
            .usb(bus: 2, device: 7),
        ])
        #expect(d.tpms == [TPMDevice(model: "tpm-crb", backend: .passthrough(path: "/dev/tpm0"))])
        #expect(d.inputs == [InputDevice(type: "evdev", evdev: "/dev/input/event3"), InputDevice(type: "tablet", evdev: nil)])
        #expect(d.filesystems == [SharedFilesystem(driver: "virtiofs", sourceDirectory: "/srv/share", target: "share", readOnly: false)])

        #expect(d.seclabels.count == 2)
        #expect(d.selinuxSeclabel == DomainSeclabel(model: "selinux", type: .static, relabel: true,
                                                    label: "system_u:system_r:svirt_t:s0:c1,c2"))
        #expect(d.seclabel(model: "dac")?.type == .dynamic)
    }

    @Test("what was defined comes back unchanged, unknown elements and attributes included")
    func dumpUnchanged() throws {
        let d = try Fixtures.parse(Self.full)
        #expect(d.xmlText() == Self.full)
        let again = try Fixtures.parse(d.xmlText())
        #expect(again == d)
    }

    @Test("the live XML replaces the selinux seclabel in place and keeps everything else")
    func dumpLive() throws {
        let xml = Fixtures.domain(name: "vm", devices: "<video/>", seclabel: "<seclabel type='dynamic' model='selinux'/>\n  <foo bar='1'/>")
        let d = try Fixtures.parse(xml)
        let label = SecurityLabel(type: .dynamic, relabel: true,
                                  process: Fixtures.context("system_u:system_r:svirt_t:s0:c41,c264"),
                                  image: Fixtures.context("system_u:object_r:svirt_image_t:s0:c41,c264"),
                                  range: .init(Fixtures.level("s0:c41,c264")))
        let live = d.xmlText(seclabels: d.liveSeclabels(with: label))
        #expect(live.contains("</devices>\n  <seclabel type='dynamic' model='selinux' relabel='yes'>"
                              + "<label>system_u:system_r:svirt_t:s0:c41,c264</label>"
                              + "<imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel></seclabel>\n  <foo bar='1'/>"))
        #expect(live.contains("<video/>"))
        let parsed = try Fixtures.parse(live, mode: .live)
        #expect(parsed.selinuxSeclabel.label == "system_u:system_r:svirt_t:s0:c41,c264")
        #expect(parsed.selinuxSeclabel.imageLabel == "system_u:object_r:svirt_image_t:s0:c41,c264")
        // A definition without seclabel gets one appended before </domain>.
        let bare = try Fixtures.parse("<domain type='kvm'>\n  <name>bare</name>\n  <memory>1024</memory>\n</domain>")
        let bareLive = bare.xmlText(seclabels: bare.liveSeclabels(with: label))
        #expect(bareLive.hasSuffix("<memory>1024</memory>\n  <seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c41,c264</label><imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel></seclabel>\n</domain>"))
    }

    @Test("static and none seclabels are formatted as libvirt formats them")
    func seclabelFormat() {
        let st = DomainSeclabel(model: "selinux", type: .static, relabel: false, label: "system_u:system_r:svirt_t:s0:c1,c2")
        #expect(XMLTree.xmlText(of: DomainDefinition.seclabelElement(st))
                == "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>")
        let none = DomainSeclabel(model: "selinux", type: .none, relabel: false)
        #expect(XMLTree.xmlText(of: DomainDefinition.seclabelElement(none)) == "<seclabel type='none' model='selinux'/>")
    }

    @Test("a missing uuid is generated and written after <name>")
    func generatedUUID() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "nouuid"))
        #expect(d.uuid.count == 36)
        #expect(d.xmlText().contains("<name>nouuid</name>\n  <uuid>\(d.uuid)</uuid>"))
    }

    @Test("memory units are converted to KiB, with overflow refused")
    func memory() throws {
        func kib(_ m: String) throws -> UInt64 {
            try Fixtures.parse("<domain type='kvm'><name>m</name>\(m)</domain>").memoryKiB
        }
        #expect(try kib("<memory>1024</memory>") == 1024)
        #expect(try kib("<memory unit='MiB'>512</memory>") == 512 * 1024)
        #expect(try kib("<memory unit='b'>1000</memory>") == 1)
        #expect(try kib("<memory unit='GB'>1</memory>") == 976_563)
        #expect(Fixtures.error("<domain type='kvm'><name>m</name><memory unit='TiB'>99999999999</memory></domain>")
                == "memory: 99999999999 TiB is too large")
        #expect(Fixtures.error("<domain type='kvm'><name>m</name><memory unit='parsec'>1</memory></domain>")?
            .hasPrefix("memory: unit='parsec' is not a unit") == true)
        #expect(Fixtures.error("<domain type='kvm'><name>m</name></domain>")?.hasPrefix("domain: <memory> is missing") == true)
    }

    @Test("libvirt's leniency: a dynamic <seclabel>'s <label> is dropped at define with a warning, and kept out of the definition")
    func dynamicLabelDropped() throws {
        for seclabel in ["<seclabel type='dynamic' model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>",
                         "<seclabel model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>"] {
            let d = try DomainDefinition(xml: "<domain type='kvm'><name>v</name><memory>1024</memory>\(seclabel)</domain>")
            #expect(d.selinuxSeclabel.type == .dynamic && d.selinuxSeclabel.label == nil)
            #expect(d.parseWarnings.count == 1 && d.parseWarnings[0].contains("dropped, as libvirt drops it at define"))
            #expect(!d.xmlText().contains("s0:c1,c2"))
        }
        // A static label keeps it, with no warning.
        let s = try DomainDefinition(xml: "<domain type='kvm'><name>v</name><memory>1024</memory><seclabel type='static' model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel></domain>")
        #expect(s.parseWarnings.isEmpty && s.selinuxSeclabel.label == "system_u:system_r:svirt_t:s0:c1,c2")
    }

    @Test("libvirt's leniency: a <baselabel> with a malformed level gives its type, with a warning")
    func baselabelMalformedLevel() throws {
        let d = try DomainDefinition(xml: "<domain type='kvm'><name>v</name><memory>1024</memory><seclabel type='dynamic' model='selinux'><baselabel>system_u:system_r:svirt_t:xxxxxx</baselabel></seclabel></domain>")
        #expect(d.selinuxSeclabel.baseLabel == "system_u:system_r:svirt_t:s0")
        #expect(d.parseWarnings.first?.contains("'xxxxxx' is not a level; svirt uses the type svirt_t") == true, "\(d.parseWarnings)")
        // A baselabel that is not a context at all is still refused.
        #expect(throws: SVirtError.self) {
            _ = try DomainDefinition(xml: "<domain type='kvm'><name>v</name><memory>1024</memory><seclabel type='dynamic' model='selinux'><baselabel>garbage</baselabel></seclabel></domain>")
        }
    }

    @Test("a per-device <seclabel relabel='yes'> without a <label> is refused, as libvirt refuses it")
    func deviceRelabelNeedsLabel() throws {
        let xml = """
            <domain type='kvm'><name>v</name><memory>1024</memory><devices><disk type='file' device='disk'>
            <source file='/img/a.img'><seclabel model='selinux' relabel='yes'/></source><target dev='vda'/></disk></devices></domain>
            """
        let e = try #require(throws: SVirtError.self) { _ = try DomainDefinition(xml: xml) }
        #expect(e.message.contains("relabel='yes' needs the <label>"), "\(e.message)")
    }

    @Test("the names '.' and '..' are refused, as are '/' and NUL, naming the input and the fix")
    func dotNames() {
        for name in [".", "..", " .. "] {
            let m = Fixtures.error(Fixtures.domain(name: name))
            let shown = name.trimmingCharacters(in: .whitespaces)
            #expect(m?.hasPrefix("name: '\(shown)' is not a domain name") == true, "\(name) gave \(m ?? "no error")")
            #expect(m?.contains("choose a name") == true)
        }
        #expect(Fixtures.error(Fixtures.domain(name: "a/..")) != nil)
        #expect(Fixtures.error(Fixtures.domain(name: "a&#0;b")) != nil)
        #expect(Fixtures.error(Fixtures.domain(name: "a&#x1;b")) != nil)
        // Dots with anything else are ordinary names.
        #expect(Fixtures.error(Fixtures.domain(name: "...")) == nil)
        #expect(Fixtures.error(Fixtures.domain(name: ".vm")) == nil)
    }

    @Test("errors name the element and the problem")
    func errors() {
        let cases: [(String, String)] = [
            ("<vm/>", "<vm>: a domain definition is a <domain> element"),
            ("<domain><name>a</name></domain>", "domain: the type attribute is missing"),
            ("<domain type='xen'><name>a</name></domain>", "domain: type='xen' is not supported"),
            ("<domain type='kvm'><memory>1</memory></domain>", "domain: <name> is missing"),
            ("<domain type='kvm'><name>a/b</name><memory>1</memory></domain>", "name: 'a/b' contains '/'"),
            ("<domain type='kvm'><name>a</name><uuid>xyz</uuid><memory>1</memory></domain>", "uuid: 'xyz' is not a UUID"),
            ("<domain type='kvm'><name>a</name><memory>1</memory><vcpu>0</vcpu></domain>", "vcpu: '0' is not a CPU count"),
            ("<domain type='kvm'><name>a</name><memory>1</memory><os><type>linux</type></os></domain>", "os <type>: 'linux' is not supported"),
            ("<domain type='kvm'><name>a</name><memory>1</memory><os><kernel>vmlinuz</kernel></os></domain>",
             "os <kernel>: the path 'vmlinuz' is relative"),
        ]
        for (xml, prefix) in cases {
            let m = Fixtures.error(xml)
            #expect(m?.hasPrefix(prefix) == true, "\(xml) gave \(m ?? "no error")")
        }
        func dev(_ d: String) -> String? { Fixtures.error(Fixtures.domain(name: "d", devices: d)) }
        let deviceCases: [(String, String)] = [
            ("<disk type='volume'><source pool='p' volume='v'/><target dev='vda'/></disk>", "disk 'vda': type='volume'"),
            ("<disk type='file' device='tape'><target dev='vda'/></disk>", "disk 'vda': device='tape' is not a disk device"),
            ("<disk type='file'><driver type='vmdk'/><source file='/a'/><target dev='vda'/></disk>",
             "disk 'vda' <driver>: type='vmdk' is not supported"),
            ("<disk type='file'><target dev='vda'/></disk>", "disk 'vda': <source> is missing"),
            ("<disk type='block'><source file='/a'/><target dev='vdb'/></disk>",
             "disk 'vdb' <source>: a type='block' disk gives its path in the 'dev' attribute"),
            ("<disk type='file'><source file='img.raw'/><target dev='vda'/></disk>",
             "disk 'vda' <source file>: the path 'img.raw' is relative"),
            ("<disk type='file'><source file='/a'/><backingStore type='file'><source file='/b'/></backingStore><target dev='vda'/></disk>",
             "disk 'vda' <backingStore>: <format type='raw|qcow2'/> is missing"),
            ("<disk type='network'><source name='x'/><target dev='vdc'/></disk>", "disk 'vdc' <source>: a network disk needs protocol="),
            ("<serial type='file'><target port='0'/></serial>", "serial #0: a type='file' device needs <source path='...'/>"),
            ("<channel type='unix'><source mode='listen' path='/s'/></channel>", "channel #0 <source>: mode='listen' is not a socket mode"),
            ("<hostdev mode='subsystem' type='scsi'><source/></hostdev>", "hostdev #1: type='scsi' is not supported"),
            ("<hostdev mode='capabilities' type='storage'><source/></hostdev>", "hostdev #1: mode='capabilities' is not supported"),
            ("<hostdev mode='subsystem' type='pci'><source><address bus='0x100' slot='0' function='0'/></source></hostdev>",
             "hostdev #1 <address>: bus='0x100' is not a number from 0 to 0xff"),
            ("<hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0x20' function='0'/></source></hostdev>",
             "hostdev #1 <address>: slot='0x20' is not a number from 0 to 0x1f"),
            ("<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/></source></hostdev>",
             "hostdev #1 <source>: a USB device is given by <address bus='1' device='3'/>"),
            ("<hostdev mode='subsystem' type='pci'><driver name='xen'/><source><address bus='1' slot='0' function='0'/></source></hostdev>",
             "hostdev #1 <driver>: name='xen' is not a PCI backend"),
            ("<tpm><backend type='external'/></tpm>", "tpm <backend>: type='external' is not supported"),
            ("<input type='evdev'/>", "input type='evdev': <source> must name the host event device"),
            ("<disk type='file'><source file='/a'><seclabel relabel='no'/></source><target dev='vda'/></disk>",
             "disk 'vda' <source> <seclabel>: the model is missing"),
            ("<disk type='file'><source file='/a'><seclabel model='selinux' relabel='no'><label>system_u:object_r:x_t:s0</label></seclabel></source><target dev='vda'/></disk>",
             "disk 'vda' <source> <seclabel>: a <label> with relabel='no' contradicts itself"),
            ("<disk type='file'><source file='/a'><seclabel model='selinux'><label>not a context</label></seclabel></source><target dev='vda'/></disk>",
             "disk 'vda' <source> <seclabel> <label>: 'not a context' is not a valid security context"),
            ("<disk type='file'><source file='/a'><seclabel model='selinux'/><seclabel model='selinux'/></source><target dev='vda'/></disk>",
             "disk 'vda' <source> <seclabel>: model='selinux' is given twice"),
        ]
        for (xml, prefix) in deviceCases {
            let m = dev(xml)
            #expect(m?.hasPrefix(prefix) == true, "\(xml) gave \(m ?? "no error")")
        }
    }

    @Test("an empty <backingStore/> says the image has no backing file")
    func emptyBackingStore() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "b", devices: Fixtures.fileDisk("/i.qcow2", format: "qcow2", extra: "<backingStore/>")))
        #expect(d.disks[0].backingStore == Disk.BackingStore.none)
        let u = try Fixtures.parse(Fixtures.domain(name: "b", devices: Fixtures.fileDisk("/i.qcow2", format: "qcow2")))
        #expect(u.disks[0].backingStore == .unspecified)
    }

    @Test("random mutations of a full definition give a definition or an error, never a crash")
    func mutations() {
        let bytes = Array(Self.full.utf8)
        let alphabet = Array("<>/='\"&;#x0123456789abcdef -:.\n".utf8) + [0xC3, 0xFF, 0x00]
        var rng = SeededGenerator(seed: 2024)
        var parsed = 0
        for _ in 0..<5000 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
                case 1: b.remove(at: at)
                default: b.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)], at: at)
                }
            }
            if (try? DomainDefinition(xml: String(decoding: b, as: UTF8.self))) != nil { parsed += 1 }
        }
        // Some mutations land in text and still parse; most break the markup.
        #expect(parsed > 0 && parsed < 5000)
        #expect(Fixtures.error("<domain type='kvm'><name>m</name><memory unit='b'>18446744073709551615</memory></domain>") == nil)
    }

    @Test("a USB device marked missing needs no address")
    func usbMissing() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "u", devices: "<hostdev mode='subsystem' type='usb'><source startupPolicy='optional' missing='yes'><vendor id='0x1'/><product id='0x2'/></source></hostdev>"))
        #expect(d.hostDevices.first?.missing == true)
    }
}
