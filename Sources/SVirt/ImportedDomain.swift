/// The "import an existing disk image" flow of the Virtual Machine Manager (`virt-install --import`): a domain
/// made around disk images that already hold an installed guest.
///
/// `definition()` writes the domain XML and reads it back through `DomainDefinition(xml:mode:)`, so an imported
/// domain is checked exactly as one given as XML.
public struct ImportedDomain: Sendable, Hashable {
    /// One `--disk PATH[,shareable][,readonly][,format=raw|qcow2][,device=disk|cdrom][,bus=BUS]`.
    public struct ImportedDisk: Sendable, Hashable {
        public var path: String
        /// A file or a block device (`<disk type='block'>`).
        public var type: Disk.SourceType
        /// Nil: not given; `DomainLifecycle.importDomain` reads it from the image (qcow2's magic, else raw).
        public var format: Disk.Format?
        public var device: Disk.Device
        public var bus: String?
        public var shareable: Bool
        public var readOnly: Bool

        public init(path: String, type: Disk.SourceType = .file, format: Disk.Format? = nil, device: Disk.Device = .disk,
                    bus: String? = nil, shareable: Bool = false, readOnly: Bool = false) {
            self.path = path
            self.type = type
            self.format = format
            self.device = device
            self.bus = bus
            self.shareable = shareable
            self.readOnly = readOnly
        }

        /// Reads the `--disk` option text. A format not given stays nil.
        public static func parse(_ text: String) throws -> ImportedDisk {
            var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let path = parts.first ?? ""
            parts = Array(parts.dropFirst())
            guard !path.isEmpty else {
                throw SVirtError(.invalidDomain, "--disk '\(text)': the path is empty; write --disk /path/to/image[,shareable][,readonly]")
            }
            var disk = ImportedDisk(path: path)
            for p in parts {
                let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
                switch (kv.first ?? "", kv.count == 2 ? kv[1] : nil) {
                case ("shareable", nil): disk.shareable = true
                case ("readonly", nil): disk.readOnly = true
                case ("format", let v?):
                    guard let f = Disk.Format(rawValue: v) else {
                        throw SVirtError(.invalidDomain, "--disk '\(text)': format=\(v) is not supported; use raw or qcow2")
                    }
                    disk.format = f
                case ("device", let v?):
                    guard let d = Disk.Device(rawValue: v), d == .disk || d == .cdrom else {
                        throw SVirtError(.invalidDomain, "--disk '\(text)': device=\(v) is not supported; use disk or cdrom")
                    }
                    disk.device = d
                case ("bus", let v?):
                    guard !v.isEmpty, v.allSatisfy({ $0.isLetter || $0.isNumber }) else {
                        throw SVirtError(.invalidDomain, "--disk '\(text)': bus=\(v) is not a bus name (virtio, ide, sata, scsi)")
                    }
                    disk.bus = v
                default:
                    throw SVirtError(.invalidDomain, "--disk '\(text)': '\(p)' is not a disk option; use shareable, readonly, "
                                     + "format=raw|qcow2, device=disk|cdrom or bus=BUS")
                }
            }
            if disk.device == .cdrom { disk.readOnly = true }
            return disk
        }
    }

    public var name: String
    /// Nil: a fresh random UUID.
    public var uuid: String?
    public var memoryMiB: UInt64
    public var vcpus: Int
    public var type: DomainDefinition.VirtType
    public var arch: String
    public var machine: String
    public var disks: [ImportedDisk]

    public init(name: String, uuid: String? = nil, memoryMiB: UInt64 = 512, vcpus: Int = 1,
                type: DomainDefinition.VirtType = .kvm, arch: String = "x86_64", machine: String = "pc",
                disks: [ImportedDisk]) {
        self.name = name
        self.uuid = uuid
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.type = type
        self.arch = arch
        self.machine = machine
        self.disks = disks
    }

    /// The largest memory size accepted, in MiB (16 TiB).
    public static let maxMemoryMiB: UInt64 = 16 << 20
    /// The most vcpus accepted.
    public static let maxVCPUs = 4096

    /// The domain XML, indented as libvirt writes it.
    public func xmlText() throws -> String {
        guard !disks.isEmpty else {
            throw SVirtError(.invalidDomain, "importing '\(name)' needs at least one --disk PATH")
        }
        guard memoryMiB > 0, memoryMiB <= Self.maxMemoryMiB else {
            throw SVirtError(.invalidDomain, "--memory \(memoryMiB): give the guest's memory in MiB, 1 to \(Self.maxMemoryMiB)")
        }
        guard vcpus > 0, vcpus <= Self.maxVCPUs else {
            throw SVirtError(.invalidDomain, "--vcpus \(vcpus): give 1 to \(Self.maxVCPUs) virtual CPUs")
        }
        try DomainXMLReader.checkName(name)
        let uuid = try uuid.map(DomainXMLReader.normalizeUUID) ?? DomainXMLReader.randomUUID()
        typealias E = XMLTree.Element
        typealias A = XMLTree.Attribute
        func text(_ name: String, _ value: String, _ attributes: [A] = []) -> E {
            E(name: name, attributes: attributes, children: [.text(value)])
        }
        var diskElements: [E] = []
        var used: [String: Int] = [:]
        for d in disks {
            try DomainXMLReader.checkPath(d.path, "--disk \(d.path)")
            guard let format = d.format else {
                throw SVirtError(.invalidDomain, "--disk \(d.path): the image format is not known; give format=raw|qcow2, "
                                 + "or import through DomainLifecycle.importDomain, which reads it from the image")
            }
            let bus = d.bus ?? (d.device == .cdrom ? "sata" : "virtio")
            let prefix = bus == "virtio" ? "vd" : bus == "ide" ? "hd" : "sd"
            let n = used[prefix, default: 0]
            used[prefix] = n + 1
            var children: [E] = [
                E(name: "driver", attributes: [A(name: "name", value: "qemu"), A(name: "type", value: format.rawValue)]),
                E(name: "source", attributes: [A(name: d.type == .block ? "dev" : "file", value: d.path)]),
                E(name: "target", attributes: [A(name: "dev", value: prefix + Self.diskLetters(n)), A(name: "bus", value: bus)]),
            ]
            if d.readOnly { children.append(E(name: "readonly")) }
            if d.shareable { children.append(E(name: "shareable")) }
            diskElements.append(E(name: "disk", attributes: [A(name: "type", value: d.type.rawValue),
                                                             A(name: "device", value: d.device.rawValue)],
                                  children: Self.indented(children.map { .element($0) }, depth: 3)))
        }
        let osChildren: [XMLTree.Node] = [
            .element(text("type", "hvm", [A(name: "arch", value: arch), A(name: "machine", value: machine)])),
            .element(E(name: "boot", attributes: [A(name: "dev", value: disks.first?.device == .cdrom ? "cdrom" : "hd")])),
        ]
        let root = E(name: "domain", attributes: [A(name: "type", value: type.rawValue)], children: Self.indented([
            .element(text("name", name)),
            .element(text("uuid", uuid)),
            .element(text("memory", String(memoryMiB), [A(name: "unit", value: "MiB")])),
            .element(text("vcpu", String(vcpus))),
            .element(E(name: "os", children: Self.indented(osChildren, depth: 2))),
            .element(E(name: "devices", children: Self.indented(diskElements.map { .element($0) }, depth: 2))),
        ], depth: 1))
        return XMLTree(root: root).xmlText + "\n"
    }

    /// The domain, read back from its XML.
    public func definition() throws -> DomainDefinition {
        try DomainDefinition(xml: try xmlText(), source: "the imported domain '\(name)'")
    }

    /// `a`…`z`, `aa`…: the letters of the n-th disk on a bus, as libvirt names targets.
    static func diskLetters(_ n: Int) -> String {
        var n = n
        var s = ""
        repeat {
            s = String(UnicodeScalar(UInt8(97 + n % 26))) + s
            n = n / 26 - 1
        } while n >= 0
        return s
    }

    /// Children with the newline and indentation before each and before the closing tag.
    static func indented(_ nodes: [XMLTree.Node], depth: Int) -> [XMLTree.Node] {
        var out: [XMLTree.Node] = []
        let pad = String(repeating: "  ", count: depth)
        for n in nodes {
            out.append(.text("\n" + pad))
            out.append(n)
        }
        out.append(.text("\n" + String(repeating: "  ", count: depth - 1)))
        return out
    }
}
