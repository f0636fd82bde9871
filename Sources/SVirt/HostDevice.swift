/// A `<hostdev>`: a host PCI or USB device given to the guest.
public struct HostDevice: Sendable, Hashable {
    /// A PCI address `domain:bus:slot.function`.
    public struct PCIAddress: Sendable, Hashable, CustomStringConvertible {
        public var domain: UInt16
        public var bus: UInt8
        public var slot: UInt8
        public var function: UInt8

        public init(domain: UInt16, bus: UInt8, slot: UInt8, function: UInt8) {
            self.domain = domain
            self.bus = bus
            self.slot = slot
            self.function = function
        }

        /// `0000:06:02.0`, as sysfs names devices.
        public var description: String {
            hex(Int(domain), 4) + ":" + hex(Int(bus), 2) + ":" + hex(Int(slot), 2) + "." + String(function, radix: 16)
        }

        private func hex(_ v: Int, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
    }

    /// How QEMU reaches a PCI device.
    public enum PCIBackend: String, Sendable, Hashable {
        /// Through the VFIO IOMMU group node `/dev/vfio/N` (the default).
        case vfio
        /// The legacy KVM assignment, through the device's sysfs files.
        case kvm
    }

    public enum Source: Sendable, Hashable {
        case pci(PCIAddress, backend: PCIBackend)
        /// A USB device by bus and device number (`/dev/bus/usb/BBB/DDD`).
        case usb(bus: Int, device: Int)
    }

    public var source: Source
    /// USB `missing='yes'`: the device is not plugged in, so nothing is labelled.
    public var missing: Bool
    public var index: Int

    public init(source: Source, missing: Bool = false, index: Int = 0) {
        self.source = source
        self.missing = missing
        self.index = index
    }

    public var displayName: String {
        switch source {
        case .pci(let a, _): return "hostdev pci \(a)"
        case .usb(let bus, let device): return "hostdev usb \(bus):\(device)"
        }
    }
}
