import Foundation
import Glibc
import SVirt

/// The real host for the label planner: image headers from the files, host devices from sysfs.
public struct LinuxHostInspector: HostInspector {
    /// Where sysfs is mounted (tests point it at a fake tree).
    public var sysRoot: String

    public init(sysRoot: String = "/sys") { self.sysRoot = sysRoot }

    public func header(of path: String, count: Int) throws -> [UInt8] {
        // O_NONBLOCK: a FIFO in place of an image must not hang the planner.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw SVirtError(.notFound, "\(path) does not exist; check the path in the XML") }
            throw SVirtError(.labeling, "cannot open \(path) to read its image header: \(String(cString: strerror(e)))",
                             cause: SystemCallError(call: "open", path: path, errno: e))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SVirtError(.labeling, "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            throw SVirtError(.invalidDomain, "\(path) is not a regular file or block device, so it cannot be a qcow2 image")
        }
        var out = [UInt8](repeating: 0, count: max(0, count))
        var have = 0
        while have < out.count {
            let n = out.withUnsafeMutableBytes { buf in read(fd, buf.baseAddress.map { $0 + have }, buf.count - have) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SVirtError(.labeling, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            have += n
        }
        return Array(out.prefix(have))
    }

    public func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    func pciDirectory(_ address: HostDevice.PCIAddress) throws -> String {
        let dir = "\(sysRoot)/bus/pci/devices/\(address)"
        guard exists(dir) else {
            throw SVirtError(.notFound, "hostdev pci \(address): the device does not exist on this host (no \(dir)); "
                             + "check the address with 'lspci -D'")
        }
        return dir
    }

    public func iommuGroup(of address: HostDevice.PCIAddress) throws -> Int {
        let dir = try pciDirectory(address)
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("\(dir)/iommu_group", &buf, buf.count - 1)
        guard n > 0 else {
            throw SVirtError(.unsupported, "hostdev pci \(address): the device has no IOMMU group, so VFIO cannot pass it; "
                             + "enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)")
        }
        let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let group = target.split(separator: "/").last.flatMap({ Int($0) }) else {
            throw SVirtError(.unsupported, "hostdev pci \(address): \(dir)/iommu_group points to '\(target)', not a group")
        }
        return group
    }

    public func pciSysfsFiles(of address: HostDevice.PCIAddress) throws -> [String] {
        let dir = try pciDirectory(address)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var out: [String] = []
        for fixed in ["config"] where names.contains(fixed) { out.append("\(dir)/\(fixed)") }
        let resources = names.filter { n in
            n.hasPrefix("resource") && n.dropFirst("resource".count).allSatisfy(\.isNumber) && n != "resource"
        }.sorted { Int($0.dropFirst(8)) ?? 0 < Int($1.dropFirst(8)) ?? 0 }
        out += resources.map { "\(dir)/\($0)" }
        for fixed in ["rom", "vendor", "device", "reset"] where names.contains(fixed) { out.append("\(dir)/\(fixed)") }
        return out
    }

    public func tpmCancelPath(forDevice devicePath: String) -> String {
        let dev = devicePath.split(separator: "/").last.map(String.init) ?? devicePath
        for cls in ["misc", "tpm"] {
            let p = "\(sysRoot)/class/\(cls)/\(dev)/device/cancel"
            if exists(p) { return p }
        }
        return "/dev/null"
    }
}
