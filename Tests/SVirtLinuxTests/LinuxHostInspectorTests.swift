import Foundation
import SVirt
import Testing
@testable import SVirtLinux

@Suite("the host as the planner sees it") struct LinuxHostInspectorTests {
    @Test("a qcow2 chain made by qemu-img is followed through the real headers",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/qemu-img"), "needs qemu-img"))
    func realChain() throws {
        let dir = try ScratchDirectory()
        let q = "/usr/bin/qemu-img"
        #expect(try run(q, ["create", "-q", "-f", "raw", "\(dir.path)/base.raw", "1M"]).status == 0)
        #expect(try run(q, ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "\(dir.path)/mid.qcow2"]).status == 0)
        #expect(try run(q, ["create", "-q", "-f", "qcow2", "-b", "\(dir.path)/mid.qcow2", "-F", "qcow2", "\(dir.path)/top.qcow2"]).status == 0)
        let chain = try BackingChain.resolve(top: "\(dir.path)/top.qcow2", format: .qcow2, reader: LinuxHostInspector(), disk: "disk 'vda'")
        #expect(chain == [
            Disk.BackingImage(type: .file, format: .qcow2, path: "\(dir.path)/mid.qcow2"),
            Disk.BackingImage(type: .file, format: .raw, path: "\(dir.path)/base.raw"),
        ])
    }

    @Test("a missing image is a not-found error naming the path")
    func missing() {
        #expect { try LinuxHostInspector().header(of: "/nonexistent/x.qcow2", count: 10) } throws: { e in
            (e as? SVirtError)?.code == .notFound && (e as? SVirtError)?.message.contains("/nonexistent/x.qcow2") == true
        }
    }

    @Test("PCI devices are found in sysfs: the IOMMU group, the legacy files, and a clear error when absent")
    func pci() throws {
        let sys = try ScratchDirectory()
        let dev = "\(sys.path)/bus/pci/devices/0000:06:02.1"
        for f in ["config", "resource0", "resource10", "resource2", "resource0_wc", "rom", "vendor", "device", "reset", "uevent"] {
            _ = try sys.file("bus/pci/devices/0000:06:02.1/\(f)")
        }
        try FileManager.default.createDirectory(atPath: "\(sys.path)/kernel/iommu_groups/42", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(dev)/iommu_group", withDestinationPath: "../../../../kernel/iommu_groups/42")
        let host = LinuxHostInspector(sysRoot: sys.path)
        let a = HostDevice.PCIAddress(domain: 0, bus: 6, slot: 2, function: 1)
        #expect(try host.iommuGroup(of: a) == 42)
        #expect(try host.pciSysfsFiles(of: a) == ["config", "resource0", "resource2", "resource10", "rom", "vendor", "device", "reset"].map { "\(dev)/\($0)" })
        #expect { try host.iommuGroup(of: HostDevice.PCIAddress(domain: 0, bus: 7, slot: 0, function: 0)) } throws: { e in
            (e as? SVirtError)?.message.contains("hostdev pci 0000:07:00.0: the device does not exist on this host") == true
        }
        _ = try sys.file("class/tpm/tpm0/device/cancel")
        #expect(host.tpmCancelPath(forDevice: "/dev/tpm0") == "\(sys.path)/class/tpm/tpm0/device/cancel")
        #expect(host.tpmCancelPath(forDevice: "/dev/tpm7") == "/dev/null")
    }
}
