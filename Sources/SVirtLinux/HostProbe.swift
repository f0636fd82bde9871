import CSVirt
import Foundation
import Glibc
import SELinux
import SVirt

/// What the running kernel offers svirt: SELinux (from selinuxfs, never from `/etc/selinux/config`),
/// Landlock, KVM, and whether security labels can be written.
public struct HostProbe: Sendable {
    /// The kernel's SELinux state.
    public enum SELinuxState: String, Sendable, Codable {
        case disabled, permissive, enforcing
    }

    /// The confinement mechanism svirt would use for a VM.
    public enum Mechanism: String, Sendable, Codable {
        /// The kernel enforces SELinux labels (enforcing).
        case selinux
        /// SELinux is on but permissive: labels are set, denials are only logged.
        case selinuxPermissive = "selinux-permissive"
        /// SELinux is off; each VM runs in a Landlock ruleset derived from its labels.
        case landlock
        /// Nothing confines VMs; starts refuse unless `--unconfined`.
        case none
    }

    public var procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    /// The selinuxfs mount point, from the mount table.
    public func selinuxfsMount() -> String? {
        guard let text = try? String(contentsOfFile: "\(procRoot)/self/mounts", encoding: .utf8) else { return nil }
        for line in text.nonEmptyTextLines() {
            let f = line.split(separator: " ")
            if f.count >= 3, f[2] == "selinuxfs" { return String(f[1]) }
        }
        return nil
    }

    /// SELinux as the kernel runs it: disabled without selinuxfs, else `enforce` says 1 or 0.
    public func selinux() -> SELinuxState {
        guard let mount = selinuxfsMount(),
              let text = try? String(contentsOfFile: "\(mount)/enforce", encoding: .utf8) else { return .disabled }
        return text.trimmingCharacters(in: .whitespacesAndNewlines) == "1" ? .enforcing : .permissive
    }

    /// The Landlock ABI version, or nil with the reason.
    public func landlock() -> (abi: Int?, reason: String) {
        let v = svirt_landlock_abi_version()
        if v > 0 { return (Int(v), "available") }
        switch errno {
        case ENOSYS: return (nil, "the kernel was built without Landlock")
        case EOPNOTSUPP: return (nil, "Landlock is disabled at boot (add landlock to lsm=)")
        default: return (nil, "landlock_create_ruleset: \(String(cString: strerror(errno)))")
        }
    }

    /// Whether `/dev/kvm` can be opened read-write and answers KVM_GET_API_VERSION with 12.
    public func kvm(device: String = "/dev/kvm") -> (usable: Bool, reason: String) {
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return (false, "cannot open \(device): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let v = svirt_kvm_api_version(fd)
        guard v == 12 else { return (false, "\(device) answers API version \(v), expected 12") }
        return (true, "\(device) API version 12")
    }

    /// Whether svirt can write `security.selinux` and its `trusted.svirt.*` records on files in `directory`.
    ///
    /// The probe file is given the image label, as an image is at start. Where SELinux runs, the file is created
    /// with that label already (the thread's `fscreate`), so the probe asks the policy what a start asks of it
    /// (relabel an image type) and not whether svirt may relabel the state directory's own type, which a
    /// confined svirt (`virtd_t`) may not and never needs to.
    public func labelsWritable(in directory: String,
                               imageLabel: String = "system_u:object_r:svirt_image_t:s0") -> (writable: Bool, reason: String) {
        let path = "\(directory)/.svirt-probe-\(getpid())"
        let createdLabelled = selinux() != .disabled && FileCreationContext.set(imageLabel, procRoot: procRoot)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        let openErrno = errno
        if createdLabelled { _ = FileCreationContext.set(nil, procRoot: procRoot) }
        guard fd >= 0 else {
            let how = createdLabelled ? " labelled \(imageLabel)" : ""
            return (false, "cannot create a file\(how) in \(directory): \(String(cString: strerror(openErrno)))")
        }
        defer {
            close(fd)
            unlink(path)
        }
        let label = Array(imageLabel.utf8)
        do {
            try ExtendedAttributes.set(ExtendedAttributes.selinux, value: label, fd: fd, path: path)
            try ExtendedAttributes.set("trusted.svirt.probe", value: [0x31], fd: fd, path: path)
        } catch let e as SystemCallError {
            if e.errno == EPERM { return (false, "\(e) (security.* and trusted.* need root)") }
            if e.isUnsupported { return (false, "\(e) (the filesystem has no extended attributes)") }
            return (false, e.description)
        } catch {
            return (false, String(describing: error))
        }
        return (true, "security.selinux and trusted.* can be set in \(directory)")
    }

    /// The kernel's booleans whose names start with `prefix`, read from `selinuxfs/booleans` (the current value,
    /// the first number of each file).
    public func kernelBooleans(selinuxfs: String, prefix: String) -> [HostReport.BooleanEntry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "\(selinuxfs)/booleans") else { return [] }
        return names.filter { $0.hasPrefix(prefix) }.sorted().map { kernelBoolean(selinuxfs: selinuxfs, name: $0) }
    }

    /// One boolean's current value from `selinuxfs/booleans/NAME` (`cur pending`), or why it cannot be read.
    public func kernelBoolean(selinuxfs: String, name: String) -> HostReport.BooleanEntry {
        let path = "\(selinuxfs)/booleans/\(name)"
        guard !name.contains("/"), name != ".", name != ".." else {
            return HostReport.BooleanEntry(name: name, value: nil, detail: "\(name) is not a boolean's name")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return HostReport.BooleanEntry(name: name, value: nil, detail: "\(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, let current = String(decoding: buffer.prefix(n), as: UTF8.self).split(separator: " ").first else {
            return HostReport.BooleanEntry(name: name, value: nil, detail: "\(path): \(n < 0 ? String(cString: strerror(errno)) : "empty")")
        }
        return HostReport.BooleanEntry(name: name, value: current.trimmingCharacters(in: .whitespacesAndNewlines) == "1" ? "on" : "off",
                                       detail: nil)
    }

    /// The mechanism `start` would use.
    public func mechanism() -> Mechanism {
        switch selinux() {
        case .enforcing: return .selinux
        case .permissive: return .selinuxPermissive
        case .disabled: return landlock().abi != nil ? .landlock : .none
        }
    }
}
