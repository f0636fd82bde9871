import SELinux

/// A PCI device address as Xen's `pcidevicecon` numbers it: `(segment << 16) | (bus << 8) | (device << 3) | function`.
/// `pcidevicecon 0xc8` is 0000:00:19.0 (the Notebook and xsm-flask.txt write 0xc800 for that device, which is bus
/// 0xc8 instead).
public struct XenPCIAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    public var segment: Int
    public var bus: Int
    public var device: Int
    public var function: Int

    public init(segment: Int = 0, bus: Int, device: Int, function: Int) {
        self.segment = segment & 0xffff
        self.bus = bus & 0xff
        self.device = device & 0x1f
        self.function = function & 0x7
    }

    /// Decodes a `pcidevicecon` value (any value decodes; bits above the segment are ignored).
    public init(sbdf: UInt64) {
        self.init(segment: Int((sbdf >> 16) & 0xffff), bus: Int((sbdf >> 8) & 0xff), device: Int((sbdf >> 3) & 0x1f),
                  function: Int(sbdf & 0x7))
    }

    /// Parses `SSSS:BB:DD.F` or `BB:DD.F` (hex, as lspci and xl.cfg's `pci=` write them). Nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let dotted = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard dotted.count == 2 else { return nil }
        func hex(_ s: String, max: Int) -> Int? {
            guard !s.isEmpty, s.count <= 4, s.allSatisfy(\.isHexDigit), let v = Int(s, radix: 16), v <= max else { return nil }
            return v
        }
        let seg = parts.count == 3 ? hex(parts[0], max: 0xffff) : 0
        guard let seg, let bus = hex(parts[parts.count - 2], max: 0xff), let dev = hex(dotted[0], max: 0x1f),
              let fn = hex(dotted[1], max: 7) else { return nil }
        self.init(segment: seg, bus: bus, device: dev, function: fn)
    }

    /// The `pcidevicecon` value.
    public var sbdf: UInt64 { UInt64(segment) << 16 | UInt64(bus) << 8 | UInt64(device) << 3 | UInt64(function) }

    /// `0000:00:19.0`.
    public var description: String {
        func h(_ v: Int, _ w: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(h(segment, 4)):\(h(bus, 2)):\(h(device, 2)).\(h(function, 1))"
    }
}

extension ObjectContext {
    /// The statement in policy language, as it would be written in policy.conf: `pirqcon 33 CONTEXT`,
    /// `iomemcon 0xfebd0-0xfebd1 CONTEXT`, `pcidevicecon 0xc8 CONTEXT  # 0000:00:19.0`, `sid kernel CONTEXT`.
    public var statement: String {
        func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
        func range<T: BinaryInteger>(_ lo: T, _ hi: T, _ f: (T) -> String) -> String { lo == hi ? f(lo) : "\(f(lo))-\(f(hi))" }
        func quoted(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        switch self {
        case .initialSID(_, let name, let c): return "sid \(name) \(c)"
        case .fileSystem(let name, let c, let f): return "fscon \(name) \(c) \(f)"
        case .port(let proto, let lo, let hi, let c):
            let p: String
            switch proto {
            case 6: p = "tcp"
            case 17: p = "udp"
            case 33: p = "dccp"
            case 132: p = "sctp"
            default: p = "proto\(proto)"
            }
            return "portcon \(p) \(range(lo, hi, { String($0) })) \(c)"
        case .networkInterface(let name, let c, let m): return "netifcon \(name) \(c) \(m)"
        case .node(let address, let mask, let c): return "nodecon \(address) \(mask) \(c)"
        case .fsUse(_, let fs, let c): return "\(keyword) \(fs) \(c);"
        case .infinibandPartitionKey(let subnet, let lo, let hi, let c):
            return "ibpkeycon \(subnet) \(range(lo, hi, hex)) \(c)"
        case .infinibandEndPort(let dev, let port, let c): return "ibendportcon \(dev) \(port) \(c)"
        case .genfs(let fs, let path, let tclass, let c):
            let spec: String
            switch tclass {
            case "file": spec = " --"
            case "dir": spec = " -d"
            case "chr_file": spec = " -c"
            case "blk_file": spec = " -b"
            case "lnk_file": spec = " -l"
            case "sock_file": spec = " -s"
            case "fifo_file": spec = " -p"
            case nil: spec = ""
            case .some(let other): spec = " (\(other))"
            }
            return "genfscon \(fs) \(path)\(spec) \(c)"
        case .xenPIRQ(let irq, let c): return "pirqcon \(irq) \(c)"
        case .xenIOPort(let lo, let hi, let c): return "ioportcon \(range(lo, hi, hex)) \(c)"
        case .xenIOMemory(let lo, let hi, let c): return "iomemcon \(range(lo, hi, hex)) \(c)"
        case .xenPCIDevice(let dev, let c):
            return "pcidevicecon \(hex(dev)) \(c)  # \(XenPCIAddress(sbdf: UInt64(truncatingIfNeeded: dev)))"
        case .xenDeviceTree(let path, let c): return "devicetreecon \(quoted(path)) \(c)"
        }
    }

    /// The context the statement gives.
    public var context: SecurityContext {
        switch self {
        case .initialSID(_, _, let c), .fileSystem(_, let c, _), .port(_, _, _, let c), .networkInterface(_, let c, _),
             .node(_, _, let c), .fsUse(_, _, let c), .infinibandPartitionKey(_, _, _, let c), .infinibandEndPort(_, _, let c),
             .genfs(_, _, _, let c), .xenPIRQ(_, let c), .xenIOPort(_, _, let c), .xenIOMemory(_, _, let c),
             .xenPCIDevice(_, let c), .xenDeviceTree(_, let c):
            return c
        }
    }
}
