import Foundation
@testable import SVirt

/// A host held in memory for planner tests.
struct FakeHost: HostInspector {
    var images = MemoryImages(files: [:])
    var existing: Set<String> = []
    var groups: [String: Int] = [:]
    var sysfs: [String: [String]] = [:]
    var cancel: [String: String] = [:]

    func header(of path: String, count: Int) throws -> [UInt8] { try images.header(of: path, count: count) }
    func exists(_ path: String) -> Bool { existing.contains(path) || images.files[path] != nil }

    func iommuGroup(of address: HostDevice.PCIAddress) throws -> Int {
        guard let g = groups[address.description] else {
            throw SVirtError(.notFound, "hostdev pci \(address): the device does not exist on this host")
        }
        return g
    }

    func pciSysfsFiles(of address: HostDevice.PCIAddress) throws -> [String] {
        guard let f = sysfs[address.description] else {
            throw SVirtError(.notFound, "hostdev pci \(address): the device does not exist on this host")
        }
        return f
    }

    func tpmCancelPath(forDevice devicePath: String) -> String { cancel[devicePath] ?? "/dev/null" }

    /// The host the Section8 golden domain expects.
    static let section8 = FakeHost(
        images: MemoryImages(files: ["/var/lib/libvirt/images/s8-auto.qcow2": MemoryImages.qcow2(backing: "s8-auto-base.raw", format: "raw")]),
        existing: ["/run/s8/bind-exists.sock", "/run/s8/pipe.in", "/run/s8/pipe.out"],
        groups: ["0000:06:02.1": 42],
        sysfs: ["0000:06:03.0": ["config", "resource0", "resource2", "rom", "vendor", "device", "reset"]
            .map { "/sys/bus/pci/devices/0000:06:03.0/\($0)" }],
        cancel: ["/dev/tpm0": "/sys/class/tpm/tpm0/device/cancel"])
}

/// Files under Tests/Golden.
enum Golden {
    static let directory: String = {
        // Tests/SVirtTests/FakeHost.swift -> Tests/Golden
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Golden").path
    }()

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
    }

    /// Compares `actual` with the golden file; with SVIRT_UPDATE_GOLDEN=1 it rewrites the file instead.
    static func check(_ actual: String, _ name: String) throws -> Bool {
        if ProcessInfo.processInfo.environment["SVIRT_UPDATE_GOLDEN"] == "1" {
            try actual.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
            return true
        }
        return try text(name) == actual
    }
}
