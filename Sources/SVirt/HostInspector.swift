/// What the label planner asks the host: image headers (for backing chains), whether paths exist (pipes,
/// sockets), and where host devices live. `SVirtLinux.LinuxHostInspector` reads `/sys` and `/dev`; tests use
/// an in-memory host.
public protocol HostInspector: ImageHeaderSource {
    /// Whether something exists at `path` (without following a final symlink).
    func exists(_ path: String) -> Bool

    /// The VFIO IOMMU group of a PCI device. Throws `SVirtError(.notFound)` naming the device when the host
    /// does not have it.
    func iommuGroup(of address: HostDevice.PCIAddress) throws -> Int

    /// The sysfs files legacy KVM assignment opens for a PCI device (`config`, `resource*`, `rom`, `vendor`,
    /// `device`, `reset`, those that exist). Throws `SVirtError(.notFound)` when the device does not exist.
    func pciSysfsFiles(of address: HostDevice.PCIAddress) throws -> [String]

    /// The file QEMU writes to cancel a TPM command for the TPM device at `devicePath`
    /// (`/sys/class/{misc,tpm}/<dev>/device/cancel`, or `/dev/null` when neither exists).
    func tpmCancelPath(forDevice devicePath: String) -> String
}
