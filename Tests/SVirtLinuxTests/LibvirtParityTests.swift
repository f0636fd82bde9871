import Foundation
import Glibc
import SELinux
import Testing
@testable import SVirt
@testable import SVirtLinux

/// Regressions from mapping libvirt's sVirt QE cases (tp-libvirt `svirt`) onto svirt.
@Suite("libvirt parity regressions", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct LibvirtParityTests {
    func lifecycle(_ dir: TemporaryDirectory) throws -> DomainLifecycle { try landlockLifecycleAsNobody(dir) }

    @Test("svirt_start_destroy with <seclabel model='dac'/>: destroy gives back owner, label and level",
          arguments: ["<seclabel type='dynamic' model='dac'/>",
                      "<seclabel type='dynamic' model='selinux'/><seclabel type='dynamic' model='dac' relabel='yes'/>"])
    func dacSeclabelDestroy(seclabel: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let img = try makeImage(dir, "dac.img", megabytes: 1)
        chown(img, 1234, 1234)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let xml = domainXML("dacvm", disk: img, seclabel: seclabel)
        let s = try await life.start(try DomainDefinition(xml: xml), options: o)
        #expect(ownerOf(img) == (65534, 65534))
        #expect(labelOf(img) == s.label.image.description)
        let stopped = try await life.stop(name: "dacvm", mode: .destroy)
        #expect(stopped.failures.isEmpty, "\(stopped.failures)")
        #expect(ownerOf(img) == (1234, 1234))
        #expect(labelOf(img) == "system_u:object_r:virt_image_t:s0")
        #expect(((try? ExtendedAttributes.list(path: img)) ?? []).filter { $0.hasPrefix("trusted.svirt.") }.isEmpty)
        #expect(try life.local.reservationsNow().isEmpty)
    }

    @Test("svirt_start_destroy with a bind-mode unix serial: QEMU starts (svirt makes the socket) and stops cleanly",
          .enabled(if: hasQEMU && landlockVersion >= 6, "needs QEMU and Landlock ABI 6"))
    func bindModeSerial() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let img = try makeImage(dir, "ser.img", megabytes: 1)
        let sock = dir.file("test1.sock")
        let xml = """
            <domain type='qemu'><name>serialvm</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
              <os><type arch='x86_64' machine='pc'>hvm</type></os>
              <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(img)'/>
                <target dev='vda' bus='virtio'/></disk>
                <serial type='unix'><source mode='bind' path='\(sock)'/><target port='0'/></serial></devices>
            </domain>
            """
        let s = try await life.start(try DomainDefinition(xml: xml))
        var st = stat()
        #expect(lstat(sock, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK)
        #expect(s.domain.process != nil)
        let stopped = try await life.stop(name: "serialvm", mode: .destroy)
        #expect(stopped.failures.isEmpty, "\(stopped.failures)")
    }
}
