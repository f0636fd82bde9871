extension DomainDefinition {
    /// Reads a `<domain>` document. `mode` says whether it is a definition or the XML of a running VM.
    public init(xml text: String, mode: ParseMode = .inactive, limits: XMLLimits = .domain,
                source: String = "domain XML") throws {
        let tree = try XMLTree(parsing: text, limits: limits, what: source)
        try self.init(tree: tree, mode: mode)
    }

    /// Reads a parsed `<domain>` document.
    public init(tree: XMLTree, mode: ParseMode = .inactive) throws {
        var reader = DomainXMLReader(mode: mode)
        self = try reader.read(tree)
    }
}

/// Turns a `<domain>` tree into a `DomainDefinition`, with errors that name the element and the problem.
struct DomainXMLReader {
    let mode: DomainDefinition.ParseMode
    /// Leniencies taken, as `DomainDefinition.parseWarnings`.
    var warnings: [String] = []

    init(mode: DomainDefinition.ParseMode) { self.mode = mode }

    func fail(_ element: String, _ problem: String) -> SVirtError {
        SVirtError(.invalidDomain, "\(element): \(problem)")
    }

    mutating func read(_ tree: XMLTree) throws -> DomainDefinition {
        var tree = tree
        let root = tree.root
        guard root.name == "domain" else {
            throw fail("<\(root.name)>", "a domain definition is a <domain> element, not <\(root.name)>")
        }
        guard let typeText = root[attribute: "type"] else {
            throw fail("domain", "the type attribute is missing; write <domain type='kvm'> (or type='qemu' for TCG)")
        }
        guard let virtType = DomainDefinition.VirtType(rawValue: typeText) else {
            throw fail("domain", "type='\(typeText)' is not supported; svirt runs type='kvm' and type='qemu' (TCG) guests")
        }

        let nameElements = root.elements(named: "name")
        guard let nameElement = nameElements.first else {
            throw fail("domain", "<name> is missing; every domain needs a name")
        }
        guard nameElements.count == 1 else { throw fail("domain", "<name> is given \(nameElements.count) times") }
        let name = nameElement.trimmedText
        try Self.checkName(name)

        var uuid: String
        let uuids = root.elements(named: "uuid")
        if uuids.count > 1 { throw fail("domain", "<uuid> is given \(uuids.count) times") }
        if let u = uuids.first {
            uuid = try Self.normalizeUUID(u.trimmedText)
        } else {
            uuid = Self.randomUUID()
            Self.insertUUID(uuid, into: &tree.root)
        }

        let memoryKiB = try readMemory(root)
        let vcpus = try readVCPUs(root)
        let os = try readOS(root)

        var disks: [Disk] = []
        var chardevs: [CharacterDevice] = []
        var hostdevs: [HostDevice] = []
        var tpms: [TPMDevice] = []
        var inputs: [InputDevice] = []
        var filesystems: [SharedFilesystem] = []
        var emulator: String?
        let devicesElements = root.elements(named: "devices")
        if devicesElements.count > 1 { throw fail("domain", "<devices> is given \(devicesElements.count) times; put every device in one") }
        var chardevCounts: [CharacterDevice.Kind: Int] = [:]
        for d in devicesElements.first?.elements ?? [] {
            switch d.name {
            case "emulator":
                let path = d.trimmedText
                try Self.checkPath(path, "<emulator>")
                emulator = path
            case "disk":
                disks.append(try readDisk(d, index: disks.count))
            case "serial", "console", "channel", "parallel":
                guard let kind = CharacterDevice.Kind(rawValue: d.name) else { continue }
                let index = chardevCounts[kind, default: 0]
                chardevCounts[kind] = index + 1
                chardevs.append(try readCharacterDevice(d, kind: kind, index: index))
            case "hostdev":
                hostdevs.append(try readHostDevice(d, index: hostdevs.count))
            case "tpm":
                tpms.append(try readTPM(d))
            case "input":
                inputs.append(try readInput(d))
            case "filesystem":
                filesystems.append(try readFilesystem(d))
            default:
                continue  // kept in `xml`, not needed for labelling
            }
        }

        if mode == .inactive { dropDynamicLabels(&tree.root) }
        let seclabels = try readDomainSeclabels(tree.root.elements(named: "seclabel"))

        var d = DomainDefinition(
            name: name, uuid: uuid, virtType: virtType, memoryKiB: memoryKiB, vcpus: vcpus, os: os,
            emulator: emulator, disks: disks, characterDevices: chardevs, hostDevices: hostdevs, tpms: tpms,
            inputs: inputs, filesystems: filesystems, seclabels: seclabels, mode: mode, xml: tree)
        d.parseWarnings = warnings
        return d
    }

    // MARK: Scalars

    static func checkName(_ name: String) throws {
        guard !name.isEmpty else { throw SVirtError(.invalidDomain, "name: the domain name is empty") }
        guard name.utf8.count <= 200 else {
            throw SVirtError(.invalidDomain, "name: the domain name is \(name.utf8.count) bytes; keep it under 200")
        }
        if let bad = name.unicodeScalars.first(where: { $0 == "/" || $0.value < 0x20 || $0.value == 0x7F }) {
            let shown = bad == "/" ? "'/'" : "control character 0x\(String(bad.value, radix: 16))"
            throw SVirtError(.invalidDomain, "name: '\(name)' contains \(shown); a domain name may not contain '/' or control characters")
        }
        // The name becomes a path component (`/run/svirt/NAME`, the runtime directory, the monitor socket):
        // "." and ".." would name the directory itself or its parent.
        if name == "." || name == ".." {
            throw SVirtError(.invalidDomain, "name: '\(name)' is not a domain name: it would name the runtime "
                             + "directory itself or its parent; choose a name with at least one other character, such as 'vm1'")
        }
    }

    static func checkPath(_ path: String, _ element: String) throws {
        guard !path.isEmpty else { throw SVirtError(.invalidDomain, "\(element): the path is empty") }
        guard path.hasPrefix("/") else {
            throw SVirtError(.invalidDomain, "\(element): the path '\(path)' is relative; write the absolute path")
        }
        guard path.utf8.count <= 4096 else {
            throw SVirtError(.invalidDomain, "\(element): the path is longer than 4096 bytes (PATH_MAX)")
        }
    }

    /// A UUID in any of libvirt's accepted spellings (32 hex digits, dashes and spaces anywhere) as
    /// lower-case `8-4-4-4-12`.
    static func normalizeUUID(_ text: String) throws -> String {
        let digits = text.lowercased().filter { $0 != "-" && $0 != " " }
        guard digits.count == 32, digits.allSatisfy({ $0.isHexDigit }) else {
            throw SVirtError(.invalidDomain, "uuid: '\(text)' is not a UUID; write 32 hexadecimal digits such as "
                             + "c7a5fdbd-edaf-9455-926a-d65c16db1809, or leave <uuid> out and svirt makes one")
        }
        let d = Array(digits)
        return String(d[0..<8]) + "-" + String(d[8..<12]) + "-" + String(d[12..<16]) + "-" + String(d[16..<20]) + "-"
            + String(d[20..<32])
    }

    static func randomUUID() -> String {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
        // A random UUID always normalises.
        return (try? normalizeUUID(hex)) ?? hex
    }

    /// Adds `<uuid>` after `<name>`, with the indentation `<name>` has.
    static func insertUUID(_ uuid: String, into root: inout XMLTree.Element) {
        let element = XMLTree.Node.element(XMLTree.Element(name: "uuid", children: [.text(uuid)]))
        guard let at = root.children.firstIndex(where: { if case .element(let e) = $0 { return e.name == "name" } else { return false } }) else {
            root.children.insert(element, at: 0)
            return
        }
        var indent = XMLTree.Node.text("\n  ")
        if at > 0, case .text(let t) = root.children[at - 1], t.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) {
            indent = .text(t)
        }
        root.children.insert(contentsOf: [indent, element], at: at + 1)
    }

    /// An unsigned number in C's base-0 notation (`0x1f`, `017`, `31`), as libvirt reads addresses.
    static func number(_ text: String) -> UInt64? {
        let t = text.trimmingCharacters(in: " \t\n")
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
        if t.count > 1, t.hasPrefix("0") { return UInt64(t.dropFirst(), radix: 8) }
        return UInt64(t, radix: 10)
    }

    func readMemory(_ root: XMLTree.Element) throws -> UInt64 {
        guard let m = root.element(named: "memory") else {
            throw fail("domain", "<memory> is missing; give the guest's memory, e.g. <memory unit='MiB'>512</memory>")
        }
        guard let value = UInt64(m.trimmedText) else {
            throw fail("memory", "'\(m.trimmedText)' is not a whole number")
        }
        let unit = m[attribute: "unit"] ?? "KiB"
        let bytesPerUnit: UInt64
        switch unit {
        case "b", "bytes": bytesPerUnit = 1
        case "KB": bytesPerUnit = 1000
        case "k", "KiB": bytesPerUnit = 1 << 10
        case "MB": bytesPerUnit = 1_000_000
        case "M", "MiB": bytesPerUnit = 1 << 20
        case "GB": bytesPerUnit = 1_000_000_000
        case "G", "GiB": bytesPerUnit = 1 << 30
        case "TB": bytesPerUnit = 1_000_000_000_000
        case "T", "TiB": bytesPerUnit = 1 << 40
        default:
            throw fail("memory", "unit='\(unit)' is not a unit; use b, KiB, MiB, GiB or TiB (or KB, MB, GB, TB)")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: bytesPerUnit)
        guard !overflow else { throw fail("memory", "\(value) \(unit) is too large") }
        let kib = bytes / 1024 + (bytes % 1024 == 0 ? 0 : 1)
        guard kib > 0 else { throw fail("memory", "the guest needs more than 0 bytes of memory") }
        return kib
    }

    func readVCPUs(_ root: XMLTree.Element) throws -> Int {
        guard let v = root.element(named: "vcpu") else { return 1 }
        guard let n = Int(v.trimmedText), n >= 1, n <= 16384 else {
            throw fail("vcpu", "'\(v.trimmedText)' is not a CPU count between 1 and 16384")
        }
        return n
    }

    func readOS(_ root: XMLTree.Element) throws -> DomainDefinition.OperatingSystem {
        guard let os = root.element(named: "os") else { return DomainDefinition.OperatingSystem() }
        var out = DomainDefinition.OperatingSystem()
        if let t = os.element(named: "type") {
            let type = t.trimmedText
            guard type == "hvm" else {
                throw fail("os <type>", "'\(type)' is not supported; QEMU guests use <type>hvm</type>")
            }
            out.type = type
            out.arch = t[attribute: "arch"]
            out.machine = t[attribute: "machine"]
        }
        func path(_ name: String) throws -> String? {
            guard let e = os.element(named: name) else { return nil }
            let p = e.trimmedText
            try Self.checkPath(p, "os <\(name)>")
            return p
        }
        out.kernel = try path("kernel")
        out.initrd = try path("initrd")
        out.dtb = try path("dtb")
        out.cmdline = os.element(named: "cmdline")?.text
        if let l = os.element(named: "loader") {
            let p = l.trimmedText
            if !p.isEmpty {
                try Self.checkPath(p, "os <loader>")
                out.loader = p
            }
            out.loaderReadOnly = l[attribute: "readonly"] == "yes"
            out.loaderType = l[attribute: "type"]
        }
        if let n = os.element(named: "nvram") {
            out.nvramTemplate = n[attribute: "template"]
            if let type = n[attribute: "type"], type != "file" {
                throw fail("os <nvram>", "type='\(type)' is not supported; give the variable store as a file")
            }
            let p = n.element(named: "source")?[attribute: "file"] ?? n.trimmedText
            if !p.isEmpty {
                try Self.checkPath(p, "os <nvram>")
                out.nvram = p
            }
        }
        return out
    }

    // MARK: Disks

    func readDisk(_ d: XMLTree.Element, index: Int) throws -> Disk {
        let target = d.element(named: "target")?[attribute: "dev"]
        let display = target.map { "disk '\($0)'" } ?? "disk #\(index + 1)"
        let typeText = d[attribute: "type"] ?? "file"
        guard let type = Disk.SourceType(rawValue: typeText) else {
            if typeText == "volume" {
                throw fail(display, "type='volume' (a storage pool volume) is not supported; give the volume's path with type='file' or type='block'")
            }
            throw fail(display, "type='\(typeText)' is not a disk type; use file, block, dir or network")
        }
        let deviceText = d[attribute: "device"] ?? "disk"
        guard let device = Disk.Device(rawValue: deviceText) else {
            throw fail(display, "device='\(deviceText)' is not a disk device; use disk, cdrom, floppy or lun")
        }
        var format = Disk.Format.raw
        if let driver = d.element(named: "driver"), let f = driver[attribute: "type"] {
            guard let parsed = Disk.Format(rawValue: f) else {
                throw fail("\(display) <driver>", "type='\(f)' is not supported; svirt reads raw and qcow2 images "
                           + "(convert with 'qemu-img convert -O qcow2')")
            }
            format = parsed
        }
        var disk = Disk(type: type, device: device, format: format, target: target,
                        bus: d.element(named: "target")?[attribute: "bus"],
                        readOnly: d.element(named: "readonly") != nil,
                        shareable: d.element(named: "shareable") != nil)
        if let source = d.element(named: "source") {
            (disk.path, disk.network) = try readSource(source, type: type, display: display)
            disk.seclabels = try readDeviceSeclabels(source.elements(named: "seclabel"), display: "\(display) <source>")
        } else if device == .disk || device == .lun, type != .network {
            throw fail(display, "<source> is missing; a \(device.rawValue) needs an image (only a cdrom or floppy may be empty)")
        }
        if let b = d.element(named: "backingStore") {
            disk.backingStore = try readBackingStore(b, display: display, depth: 1)
        }
        return disk
    }

    func readSource(_ source: XMLTree.Element, type: Disk.SourceType, display: String) throws -> (String?, Disk.NetworkSource?) {
        switch type {
        case .file, .block, .dir:
            let attr = type == .file ? "file" : type == .block ? "dev" : "dir"
            guard let p = source[attribute: attr] else {
                if type == .file, source.attributes.isEmpty || source[attribute: "startupPolicy"] != nil { return (nil, nil) }
                throw fail("\(display) <source>", "a type='\(type.rawValue)' disk gives its path in the '\(attr)' attribute")
            }
            try Self.checkPath(p, "\(display) <source \(attr)>")
            return (p, nil)
        case .network:
            guard let proto = source[attribute: "protocol"] else {
                throw fail("\(display) <source>", "a network disk needs protocol='nbd' (or iscsi, rbd, http, ...)")
            }
            let hosts = source.elements(named: "host").map { h -> String in
                let name = h[attribute: "name"] ?? h[attribute: "socket"] ?? ""
                return h[attribute: "port"].map { "\(name):\($0)" } ?? name
            }
            return (nil, Disk.NetworkSource(protocolName: proto, name: source[attribute: "name"], hosts: hosts))
        }
    }

    func readBackingStore(_ b: XMLTree.Element, display: String, depth: Int) throws -> Disk.BackingStore {
        if b.attributes.isEmpty, b.elements.isEmpty { return .none }
        guard depth <= BackingChain.maxDepth else {
            throw fail("\(display) <backingStore>", "the chain is more than \(BackingChain.maxDepth) images deep")
        }
        let typeText = b[attribute: "type"] ?? "file"
        guard let type = Disk.SourceType(rawValue: typeText), type != .dir else {
            throw fail("\(display) <backingStore>", "type='\(typeText)' is not a backing store type; use file, block or network")
        }
        guard let f = b.element(named: "format")?[attribute: "type"] else {
            throw fail("\(display) <backingStore>", "<format type='raw|qcow2'/> is missing; svirt does not guess image formats")
        }
        guard let format = Disk.Format(rawValue: f) else {
            throw fail("\(display) <backingStore> <format>", "type='\(f)' is not supported; use raw or qcow2")
        }
        guard let source = b.element(named: "source") else {
            throw fail("\(display) <backingStore>", "<source> is missing")
        }
        let (path, network) = try readSource(source, type: type, display: "\(display) <backingStore>")
        var chain = [Disk.BackingImage(type: type, format: format, path: path, network: network)]
        if let next = b.element(named: "backingStore") {
            if case .chain(let rest) = try readBackingStore(next, display: display, depth: depth + 1) {
                chain += rest
            }
        }
        return .chain(chain)
    }

    // MARK: Character devices

    func readCharacterDevice(_ d: XMLTree.Element, kind: CharacterDevice.Kind, index: Int) throws -> CharacterDevice {
        let display = "\(kind.rawValue) #\(index)"
        let type = CharacterDevice.SourceType(d[attribute: "type"] ?? "pty")
        var dev = CharacterDevice(kind: kind, sourceType: type, targetType: d.element(named: "target")?[attribute: "type"],
                                  index: index)
        let sources = d.elements(named: "source")
        let source = sources.first { $0[attribute: "path"] != nil } ?? sources.first
        if let source {
            dev.path = source[attribute: "path"]
            dev.mode = source[attribute: "mode"]
            dev.seclabels = try readDeviceSeclabels(source.elements(named: "seclabel"), display: "\(display) <source>")
        }
        switch type {
        case .file, .pipe, .unix, .dev:
            guard let p = dev.path else {
                throw fail(display, "a type='\(type.name)' device needs <source path='...'/>")
            }
            try Self.checkPath(p, "\(display) <source path>")
        default:
            break
        }
        if type == .unix, let m = dev.mode, m != "bind", m != "connect" {
            throw fail("\(display) <source>", "mode='\(m)' is not a socket mode; use bind or connect")
        }
        return dev
    }

    // MARK: Host devices

    func readHostDevice(_ d: XMLTree.Element, index: Int) throws -> HostDevice {
        let display = "hostdev #\(index + 1)"
        let mode = d[attribute: "mode"] ?? "subsystem"
        guard mode == "subsystem" else {
            throw fail(display, "mode='\(mode)' is not supported; svirt passes PCI and USB devices with mode='subsystem'")
        }
        let type = d[attribute: "type"] ?? ""
        guard let source = d.element(named: "source") else { throw fail(display, "<source> is missing") }
        switch type {
        case "pci":
            guard let a = source.element(named: "address") else {
                throw fail("\(display) <source>", "a PCI device is given by <address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/>")
            }
            func field(_ name: String, max: UInt64, required: Bool = true) throws -> UInt64 {
                guard let text = a[attribute: name] else {
                    if required { throw fail("\(display) <address>", "the \(name) attribute is missing") }
                    return 0
                }
                guard let v = Self.number(text), v <= max else {
                    throw fail("\(display) <address>", "\(name)='\(text)' is not a number from 0 to 0x\(String(max, radix: 16))")
                }
                return v
            }
            let address = HostDevice.PCIAddress(
                domain: UInt16(try field("domain", max: 0xFFFF, required: false)), bus: UInt8(try field("bus", max: 0xFF)),
                slot: UInt8(try field("slot", max: 0x1F)), function: UInt8(try field("function", max: 7)))
            let driver = d.element(named: "driver")?[attribute: "name"] ?? "vfio"
            guard let backend = HostDevice.PCIBackend(rawValue: driver) else {
                throw fail("\(display) <driver>", "name='\(driver)' is not a PCI backend; use vfio (or kvm)")
            }
            return HostDevice(source: .pci(address, backend: backend), index: index)
        case "usb":
            let missing = source[attribute: "missing"] == "yes"
            guard let a = source.element(named: "address"), let busText = a[attribute: "bus"], let devText = a[attribute: "device"] else {
                if missing { return HostDevice(source: .usb(bus: 0, device: 0), missing: true, index: index) }
                throw fail("\(display) <source>", "a USB device is given by <address bus='1' device='3'/> (vendor and product alone are not supported)")
            }
            guard let bus = Self.number(busText), bus >= 1, bus <= 999, let dev = Self.number(devText), dev >= 1, dev <= 999 else {
                throw fail("\(display) <address>", "bus='\(busText)' device='\(devText)' are not USB bus and device numbers (1 to 999)")
            }
            return HostDevice(source: .usb(bus: Int(bus), device: Int(dev)), missing: missing, index: index)
        default:
            throw fail(display, "type='\(type)' is not supported; svirt passes type='pci' and type='usb' devices")
        }
    }

    func readTPM(_ d: XMLTree.Element) throws -> TPMDevice {
        guard let backend = d.element(named: "backend") else {
            throw fail("tpm", "<backend type='passthrough'> or <backend type='emulator'> is missing")
        }
        switch backend[attribute: "type"] ?? "" {
        case "passthrough":
            let path = backend.element(named: "device")?[attribute: "path"] ?? "/dev/tpm0"
            try Self.checkPath(path, "tpm <device path>")
            return TPMDevice(model: d[attribute: "model"], backend: .passthrough(path: path))
        case "emulator":
            return TPMDevice(model: d[attribute: "model"], backend: .emulator(version: backend[attribute: "version"]))
        case let other:
            throw fail("tpm <backend>", "type='\(other)' is not supported; use passthrough or emulator")
        }
    }

    func readInput(_ d: XMLTree.Element) throws -> InputDevice {
        let type = d[attribute: "type"] ?? ""
        var evdev: String?
        if type == "evdev" { evdev = d.element(named: "source")?[attribute: "dev"] }
        if type == "passthrough" { evdev = d.element(named: "source")?[attribute: "evdev"] }
        if type == "evdev" || type == "passthrough" {
            guard let p = evdev else { throw fail("input type='\(type)'", "<source> must name the host event device") }
            try Self.checkPath(p, "input <source>")
        }
        return InputDevice(type: type, evdev: evdev)
    }

    func readFilesystem(_ d: XMLTree.Element) throws -> SharedFilesystem {
        let dir = d.element(named: "source")?[attribute: "dir"]
        if let dir { try Self.checkPath(dir, "filesystem <source dir>") }
        return SharedFilesystem(driver: d.element(named: "driver")?[attribute: "type"], sourceDirectory: dir,
                                target: d.element(named: "target")?[attribute: "dir"],
                                readOnly: d.element(named: "readonly") != nil)
    }
}
