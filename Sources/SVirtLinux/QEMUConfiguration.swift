/// What svirt asks of one QEMU guest: a small value, independent of the domain XML, that the lifecycle code
/// fills from a `DomainDefinition`. `QEMUCommandLine` turns it into arguments.
public struct QEMUConfiguration: Sendable, Hashable {
    public enum Accelerator: String, Sendable, Hashable, Codable {
        case kvm, tcg
    }

    public enum DiskFormat: String, Sendable, Hashable, Codable {
        case raw, qcow2
    }

    public enum DiskDevice: String, Sendable, Hashable, Codable {
        case disk, cdrom
    }

    public struct Disk: Sendable, Hashable {
        public var path: String
        public var format: DiskFormat
        public var device: DiskDevice
        public var readOnly: Bool
        /// `<shareable/>`: several guests write it; the device gets `share-rw=on`.
        public var shareable: Bool
        /// The guest's name for it (`vda`), used in node names.
        public var target: String?
        /// Descriptors QEMU inherits for this disk (numbers in QEMU): when set, QEMU opens the disk from a
        /// descriptor set (`-add-fd`, `/dev/fdset/N`) and never resolves `path` itself.
        public var descriptors: [Int32] = []

        public init(path: String, format: DiskFormat = .raw, device: DiskDevice = .disk, readOnly: Bool = false,
                    shareable: Bool = false, target: String? = nil) {
            self.path = path
            self.format = format
            self.device = device
            self.readOnly = readOnly || device == .cdrom
            self.shareable = shareable
            self.target = target
        }
    }

    public enum Serial: Sendable, Hashable {
        /// Output appended to a file.
        case file(String)
        /// A pseudo-terminal QEMU allocates.
        case pty
        /// A listening unix socket, created by svirt in the child under the socket-create context.
        case unixSocket(String)
    }

    public var name: String
    public var machine: String
    public var accelerator: Accelerator
    public var memoryMiB: UInt64
    public var vcpus: UInt32
    /// `-cpu`; QEMU's default when nil.
    public var cpu: String?
    public var disks: [Disk]
    public var kernel: String?
    public var initrd: String?
    public var kernelCommandLine: String?
    public var serial: Serial?
    /// The QMP monitor socket, in the VM's private runtime directory.
    public var qmpSocket: String
    /// `-S`: stop the CPUs at start (no guest code runs until `cont`).
    public var startPaused: Bool
    /// `-sandbox on` when the emulator supports it.
    public var sandbox: Bool
    /// Appended verbatim.
    public var extraArguments: [String]

    public init(name: String, machine: String = "q35", accelerator: Accelerator = .kvm, memoryMiB: UInt64 = 128,
                vcpus: UInt32 = 1, qmpSocket: String) {
        self.name = name
        self.machine = machine
        self.accelerator = accelerator
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        disks = []
        self.qmpSocket = qmpSocket
        startPaused = false
        sandbox = true
        extraArguments = []
    }

    /// Files the guest writes: disks that are not read-only, and a serial log file.
    public var writableFiles: [String] {
        var out = disks.filter { !$0.readOnly }.map(\.path)
        if case .file(let p) = serial { out.append(p) }
        return out
    }

    /// Files the guest only reads: read-only disks and cdroms, kernel, initrd.
    public var readOnlyFiles: [String] {
        disks.filter(\.readOnly).map(\.path) + [kernel, initrd].compactMap { $0 }
    }
}
