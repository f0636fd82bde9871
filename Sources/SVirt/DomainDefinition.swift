import SELinux

/// A libvirt domain definition, read from `<domain>` XML: what svirt needs to label and run a VM, plus the
/// document itself, so that unknown elements and attributes survive (`xmlText(seclabels:)`).
///
/// Build one with `DomainDefinition(xml:mode:)`. Errors are `SVirtError(.invalidDomain)` and name the element
/// and the problem.
public struct DomainDefinition: Sendable, Hashable {
    /// `<domain type=...>`.
    public enum VirtType: String, Sendable, Hashable, CaseIterable {
        /// Hardware virtualisation through /dev/kvm.
        case kvm
        /// QEMU's TCG emulator.
        case qemu
    }

    /// How the XML is read. libvirt reads a definition (inactive) and the XML of a running VM (live)
    /// differently: only live XML may carry generated labels.
    public enum ParseMode: Sendable, Hashable {
        /// A definition: dynamic labels are generated at start, so `<label>`/`<imagelabel>` are refused.
        case inactive
        /// The XML of a running VM: its `<label>` and `<imagelabel>` are used as written.
        case live
    }

    /// `<os>`: how the guest boots.
    public struct OperatingSystem: Sendable, Hashable {
        /// `<type>`: `hvm`.
        public var type: String
        public var arch: String?
        public var machine: String?
        public var kernel: String?
        public var initrd: String?
        public var cmdline: String?
        public var dtb: String?
        /// Firmware code (`<loader>`): read-only, shared by every guest, never relabelled.
        public var loader: String?
        public var loaderReadOnly: Bool
        public var loaderType: String?
        /// The guest's own UEFI variable store (`<nvram>`): labelled like a private disk.
        public var nvram: String?
        public var nvramTemplate: String?

        public init(type: String = "hvm", arch: String? = nil, machine: String? = nil, kernel: String? = nil,
                    initrd: String? = nil, cmdline: String? = nil, dtb: String? = nil, loader: String? = nil,
                    loaderReadOnly: Bool = false, loaderType: String? = nil, nvram: String? = nil,
                    nvramTemplate: String? = nil) {
            self.type = type
            self.arch = arch
            self.machine = machine
            self.kernel = kernel
            self.initrd = initrd
            self.cmdline = cmdline
            self.dtb = dtb
            self.loader = loader
            self.loaderReadOnly = loaderReadOnly
            self.loaderType = loaderType
            self.nvram = nvram
            self.nvramTemplate = nvramTemplate
        }
    }

    public var name: String
    /// Lower-case, dashed. Generated when the XML has none (and then written into `xml`).
    public var uuid: String
    public var virtType: VirtType
    /// `<memory>` in KiB.
    public var memoryKiB: UInt64
    public var vcpus: Int
    public var os: OperatingSystem
    /// `<devices><emulator>`.
    public var emulator: String?
    public var disks: [Disk]
    public var characterDevices: [CharacterDevice]
    public var hostDevices: [HostDevice]
    public var tpms: [TPMDevice]
    public var inputs: [InputDevice]
    public var filesystems: [SharedFilesystem]
    /// The domain-level `<seclabel>` elements, one per model.
    public var seclabels: [DomainSeclabel]
    /// How the XML was read.
    public var mode: ParseMode
    /// The document as read (with a generated `<uuid>` added when it had none, and what libvirt drops at
    /// define left out: a dynamic `<seclabel>`'s `<label>` and `<imagelabel>`).
    public var xml: XMLTree
    /// What the reader accepted where libvirt is lenient, and what it did about it (one sentence each).
    public var parseWarnings: [String] = []

    /// The seclabel for `model` (`selinux`, `dac`).
    public func seclabel(model: String) -> DomainSeclabel? { seclabels.first { $0.model == model } }

    /// The selinux seclabel. When the XML gives none, svirt uses an implicit one: type none when the XML has
    /// a `model='none'` seclabel (the VM asks for no confinement label), else dynamic with relabelling, as
    /// libvirt's default-confined setting does.
    public var selinuxSeclabel: DomainSeclabel {
        if let s = seclabel(model: "selinux") { return s }
        if seclabel(model: "none") != nil {
            return DomainSeclabel(model: "selinux", type: .none, relabel: false, implicit: true)
        }
        return DomainSeclabel(model: "selinux", type: .dynamic, relabel: true, implicit: true)
    }
}
