import Foundation
import SELinux
import SELinuxPolicy

/// A device a domain can be given (passthrough), named the way Xen's object contexts name it.
public enum XenDevice: Sendable, Hashable, CustomStringConvertible {
    /// A physical IRQ (`pirqcon`, xl.cfg `irqs`).
    case pirq(Int)
    /// I/O ports `low...high` (`ioportcon`, xl.cfg `ioports`).
    case ioports(low: UInt64, high: UInt64)
    /// Machine frames (4 KiB pages) `low...high` (`iomemcon`, xl.cfg `iomem`).
    case iomem(low: UInt64, high: UInt64)
    /// A PCI function (`pcidevicecon`, xl.cfg `pci`).
    case pci(XenPCIAddress)
    /// A device tree node (`devicetreecon`, xl.cfg `dtdev`).
    case deviceTree(String)

    /// Parses the command-line form: `pci:0000:00:19.0`, `irq:33`, `ioport:0xecc0-0xecdf`, `iomem:0xfebd0`,
    /// `dt:/soc/ethernet@ff0e0000`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw XenError(.device, "'\(text)' is not a device: write pci:0000:00:19.0, irq:33, ioport:0xecc0-0xecdf, "
                           + "iomem:0xfebd0-0xfebdf (frames) or dt:/path")
        }
        func number(_ s: String) throws -> UInt64 {
            let t = s.lowercased()
            let v = t.hasPrefix("0x") ? UInt64(t.dropFirst(2), radix: 16) : UInt64(t)
            guard let v else { throw XenError(.device, "'\(s)' in '\(text)' is not a number (decimal or 0x hex)") }
            return v
        }
        func range(_ s: String) throws -> (UInt64, UInt64) {
            let ends = s.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard ends.count == 1 || ends.count == 2 else { throw XenError(.device, "'\(s)' is not a range: write LOW-HIGH") }
            let lo = try number(ends[0]), hi = ends.count == 2 ? try number(ends[1]) : lo
            guard lo <= hi else { throw XenError(.device, "the range '\(s)' ends before it starts") }
            return (lo, hi)
        }
        switch parts[0].lowercased() {
        case "pci":
            guard let a = XenPCIAddress(parsing: parts[1]) else {
                throw XenError(.device, "'\(parts[1])' is not a PCI address: write SSSS:BB:DD.F or BB:DD.F in hex")
            }
            self = .pci(a)
        case "irq", "pirq":
            let v = try number(parts[1])
            guard v <= UInt64(Int32.max) else { throw XenError(.device, "IRQ \(v) is out of range") }
            self = .pirq(Int(v))
        case "ioport", "ioports":
            let (lo, hi) = try range(parts[1])
            guard hi <= 0xffff else { throw XenError(.device, "I/O ports end at 0xffff; '\(parts[1])' does not fit") }
            self = .ioports(low: lo, high: hi)
        case "iomem":
            let (lo, hi) = try range(parts[1])
            self = .iomem(low: lo, high: hi)
        case "dt", "dtdev", "devicetree":
            guard parts[1].hasPrefix("/") else { throw XenError(.device, "a device tree path starts with '/': '\(parts[1])'") }
            self = .deviceTree(parts[1])
        default:
            throw XenError(.device, "'\(parts[0])' is not a device kind: use pci, irq, ioport, iomem or dt")
        }
    }

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .pirq(let n): return "irq:\(n)"
        case .ioports(let lo, let hi): return "ioport:" + (lo == hi ? hex(lo) : "\(hex(lo))-\(hex(hi))")
        case .iomem(let lo, let hi): return "iomem:" + (lo == hi ? hex(lo) : "\(hex(lo))-\(hex(hi))")
        case .pci(let a): return "pci:\(a)"
        case .deviceTree(let p): return "dt:\(p)"
        }
    }
}

/// What an xl.cfg file says about a domain's security: its name, its labels, whether it has a stub device model, and
/// the devices it is given. Read from an `XLConfig` the way xl's `parse_config_data` reads these keys.
public struct XenDomainConfiguration: Sendable {
    /// A label setting: the key, its text, the parsed context and the line.
    public struct Label: Sendable, Hashable {
        public var key: String
        public var text: String
        public var context: SecurityContext
        public var line: Int
    }

    /// A passthrough device and the line that asks for it.
    public struct Passthrough: Sendable, Hashable {
        /// `pci`, `irqs`, `iomem`, `ioports` or `dtdev`.
        public var key: String
        /// The entry as written.
        public var entry: String
        public var device: XenDevice
        public var line: Int
    }

    public var file: String
    public var name: String
    /// `pv`, `pvh` or `hvm` (`type =`, or the older `builder = "hvm"`; xl's default is pv).
    public var type: String
    /// `seclabel`: the label the domain runs under.
    public var seclabel: Label?
    /// `init_seclabel`: the label it is built under, before it is relabelled to `seclabel`.
    public var initSeclabel: Label?
    /// `device_model_stubdomain_override = 1`: the device model runs in its own stub domain.
    public var stubDomain: Bool
    /// `device_model_stubdomain_seclabel`: the stub domain's label.
    public var deviceModelSeclabel: Label?
    /// `device_model_stubdomain_init_seclabel`: the label the stub domain is built under.
    public var deviceModelInitSeclabel: Label?
    public var passthrough: [Passthrough]
    /// Things worth knowing that are not errors (a key set twice, a label xl would ignore).
    public var notes: [String]
    /// The parsed file.
    public var config: XLConfig

    /// The label the domain is created with: `init_seclabel` when given, else `seclabel`; nil means libxl's default
    /// (the domU initial SID).
    public var createLabel: Label? { initSeclabel ?? seclabel }
    /// The label the domain is relabelled to after the build, when `init_seclabel` and `seclabel` are both given.
    public var execLabel: Label? { initSeclabel != nil ? seclabel : nil }
    /// The label the stub device model is created with; nil means libxl's default (the domDM initial SID).
    public var deviceModelCreateLabel: Label? { deviceModelInitSeclabel ?? deviceModelSeclabel }
    /// The label the stub device model is relabelled to.
    public var deviceModelExecLabel: Label? { deviceModelInitSeclabel != nil ? deviceModelSeclabel : nil }

    /// Parses xl.cfg text and reads the keys. Throws `XenError` naming `source` and the line.
    public init(parsing text: String, source: String) throws {
        try self.init(try XLConfig(parsing: text, source: source))
    }

    public init(_ config: XLConfig) throws {
        self.config = config
        file = config.source
        notes = []
        guard let name = try config.string("name") else {
            throw XenError(.value, "no 'name': every domain needs one, e.g. name = \"guest1\"", file: config.source)
        }
        guard !name.isEmpty else {
            throw XenError(.value, "'name' is empty", file: config.source, line: config.setting("name")?.line)
        }
        self.name = name
        if let t = try config.string("type") {
            guard ["pv", "pvh", "hvm"].contains(t) else {
                throw XenError(.value, "type '\(t)' is not pv, pvh or hvm", file: config.source, line: config.setting("type")?.line)
            }
            type = t
        } else if let b = try config.string("builder") {
            type = b == "hvm" ? "hvm" : "pv"
        } else {
            type = "pv"
        }
        func label(_ key: String) throws -> Label? {
            guard let text = try config.string(key), let s = config.setting(key) else { return nil }
            guard case .string = s.value else {
                throw XenError(.label, "'\(key)' must be a quoted string, e.g. \(key) = 'system_u:system_r:domU_t'",
                               file: config.source, line: s.line)
            }
            let context: SecurityContext
            do { context = try SecurityContext(parsing: text) } catch {
                throw XenError(.label, "'\(key)' = '\(text)' is not a security context: \(error); write user:role:type[:level]",
                               file: config.source, line: s.line)
            }
            return Label(key: key, text: text, context: context, line: s.line)
        }
        seclabel = try label("seclabel")
        initSeclabel = try label("init_seclabel")
        deviceModelSeclabel = try label("device_model_stubdomain_seclabel")
        deviceModelInitSeclabel = try label("device_model_stubdomain_init_seclabel")
        stubDomain = (try config.integer("device_model_stubdomain_override")).map { $0 != 0 } ?? false
        passthrough = []
        for key in ["name", "seclabel", "init_seclabel", "device_model_stubdomain_seclabel",
                    "device_model_stubdomain_init_seclabel"] {
            let lines = config.repeatedLines(key)
            if !lines.isEmpty {
                notes.append("'\(key)' is set on lines \(lines.map(String.init).joined(separator: ", ")); "
                             + "xl uses the last one (line \(lines[lines.count - 1]))")
            }
        }
        if !stubDomain, let l = deviceModelSeclabel ?? deviceModelInitSeclabel {
            notes.append("line \(l.line): '\(l.key)' has no effect without device_model_stubdomain_override = 1")
        }
        if stubDomain, type != "hvm" {
            notes.append("device_model_stubdomain_override applies to HVM guests; this is a \(type) guest, so no stub "
                         + "device model is built")
            stubDomain = false
        }
        try readPassthrough()
    }

    private mutating func readPassthrough() throws {
        let file = config.source
        func entries(_ key: String) throws -> [(String, Int)] {
            guard let s = config.setting(key) else { return [] }
            guard let list = try config.list(key) else { return [] }
            return try list.map { v in
                guard let a = v.atom else {
                    throw XenError(.value, "'\(key)' holds a nested list; each entry is a string", file: file, line: s.line)
                }
                return (a, s.line)
            }
        }
        func hex(_ s: String, _ key: String, _ line: Int) throws -> UInt64 {
            var t = s.trimmingCharacters(in: .whitespaces).lowercased()
            if t.hasPrefix("0x") { t.removeFirst(2) }
            guard !t.isEmpty, let v = UInt64(t, radix: 16) else {
                throw XenError(.value, "'\(s)' in '\(key)' is not a hex number", file: file, line: line)
            }
            return v
        }
        for (entry, line) in try entries("pci") {
            // [DDDD:]BB:DD.F[@VSLOT][,OPTION...], or the key=value form with bdf=...
            let fields = entry.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var bdf = fields.first ?? ""
            if bdf.contains("=") { bdf = fields.first { $0.hasPrefix("bdf=") }.map { String($0.dropFirst(4)) } ?? "" }
            if let at = bdf.firstIndex(of: "@") { bdf = String(bdf[..<at]) }
            var addresses: [XenPCIAddress] = []
            if bdf.hasSuffix(".*") {
                for fn in 0..<8 {
                    if let a = XenPCIAddress(parsing: String(bdf.dropLast()) + "\(fn)") { addresses.append(a) }
                }
            } else if let a = XenPCIAddress(parsing: bdf) {
                addresses = [a]
            }
            guard !addresses.isEmpty else {
                throw XenError(.value, "'\(entry)' in 'pci' is not a PCI device: write [DDDD:]BB:DD.F, e.g. '0000:00:19.0'",
                               file: file, line: line)
            }
            for a in addresses { passthrough.append(Passthrough(key: "pci", entry: entry, device: .pci(a), line: line)) }
        }
        for (entry, line) in try entries("irqs") {
            guard let v = XLConfig.integer(entry), v >= 0, v <= Int(Int32.max) else {
                throw XenError(.value, "'\(entry)' in 'irqs' is not an IRQ number", file: file, line: line)
            }
            passthrough.append(Passthrough(key: "irqs", entry: entry, device: .pirq(v), line: line))
        }
        for (entry, line) in try entries("iomem") {
            // IOMEM_START,NUM_PAGES[@GFN], in hex.
            var spec = entry
            if let at = spec.firstIndex(of: "@") { spec = String(spec[..<at]) }
            let parts = spec.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else {
                throw XenError(.value, "'\(entry)' in 'iomem' is not START,NUM_PAGES (hex frames)", file: file, line: line)
            }
            let start = try hex(parts[0], "iomem", line), pages = try hex(parts[1], "iomem", line)
            guard pages >= 1, start <= UInt64.max - (pages - 1) else {
                throw XenError(.value, "'\(entry)' in 'iomem' asks for no pages or runs past the last frame", file: file, line: line)
            }
            passthrough.append(Passthrough(key: "iomem", entry: entry, device: .iomem(low: start, high: start + pages - 1),
                                           line: line))
        }
        for (entry, line) in try entries("ioports") {
            let parts = entry.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 1 || parts.count == 2 else {
                throw XenError(.value, "'\(entry)' in 'ioports' is not FROM[-TO] (hex)", file: file, line: line)
            }
            let lo = try hex(parts[0], "ioports", line), hi = parts.count == 2 ? try hex(parts[1], "ioports", line) : lo
            guard lo <= hi, hi <= 0xffff else {
                throw XenError(.value, "'\(entry)' in 'ioports' is not a port range within 0-0xffff", file: file, line: line)
            }
            passthrough.append(Passthrough(key: "ioports", entry: entry, device: .ioports(low: lo, high: hi), line: line))
        }
        for (entry, line) in try entries("dtdev") {
            guard entry.hasPrefix("/") else {
                throw XenError(.value, "'\(entry)' in 'dtdev' is not a device tree path", file: file, line: line)
            }
            passthrough.append(Passthrough(key: "dtdev", entry: entry, device: .deviceTree(entry), line: line))
        }
    }
}
