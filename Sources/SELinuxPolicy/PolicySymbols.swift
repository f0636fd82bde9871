import SELinux

/// A security class and its permissions (the class's own and its common's), by bit.
public struct PolicyClass: Sendable, Hashable {
    public var name: String
    /// The class's value in the policy (1-based).
    public var value: Int
    /// The common the class inherits, if any.
    public var common: String?
    let permissionSlots: [String?]

    /// Every permission name, in bit order.
    public var permissions: [String] { permissionSlots.compactMap { $0 } }
    /// (bit, name) pairs in bit order.
    public var permissionsByBit: [(Int, String)] {
        permissionSlots.enumerated().compactMap { i, n in n.map { (i, $0) } }
    }
    /// The bit of a permission name, or nil.
    public func bit(of permission: String) -> Int? { permissionSlots.firstIndex(of: permission) }
    /// The vector with every permission of the class.
    public var allPermissions: AccessVector {
        var m: UInt32 = 0
        for (i, n) in permissionSlots.enumerated() where n != nil { m |= 1 << UInt32(i) }
        return AccessVector(rawValue: m)
    }
}

/// A type or an attribute.
public struct PolicyType: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var isAttribute: Bool
    public var aliases: [String]
    /// The bounding type of `typebounds`, if any.
    public var bounds: String?
}

/// A role, with its types.
public struct PolicyRole: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var types: [String]
    public var dominates: [String]
}

/// A user, with its roles and MLS range and default level.
public struct PolicyUser: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var roles: [String]
    public var range: SecurityRange?
    public var defaultLevel: SecurityLevel?
}

/// A boolean and its default value in the policy file.
public struct PolicyBoolean: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var defaultValue: Bool
}

/// A sensitivity, its aliases and the categories allowed with it.
public struct PolicySensitivity: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var aliases: [String]
    public var allowedCategories: String
}

/// A category and its aliases.
public struct PolicyCategory: Sendable, Hashable {
    public var name: String
    public var value: Int
    public var aliases: [String]
}

/// A `constrain`/`mlsconstrain` or `validatetrans`/`mlsvalidatetrans` statement, as policy text.
public struct PolicyConstraint: Sendable, Hashable {
    public var tclass: String
    public var isValidatetrans: Bool
    public var isMLS: Bool
    public var permissions: [String]
    public var text: String
}

/// One object context statement of a SELinux or Xen policy.
public enum ObjectContext: Sendable, Hashable {
    /// `sid NAME CONTEXT` (the name comes from the target's initial SID table).
    case initialSID(sid: Int, name: String, context: SecurityContext)
    case fileSystem(name: String, context: SecurityContext, fileContext: SecurityContext)
    case port(protocol: Int, low: Int, high: Int, context: SecurityContext)
    case networkInterface(name: String, context: SecurityContext, messageContext: SecurityContext)
    /// IPv4 or IPv6 `nodecon`, address and mask as text.
    case node(address: String, mask: String, context: SecurityContext)
    /// `fs_use_xattr` (1), `fs_use_trans` (2), `fs_use_task` (3).
    case fsUse(behavior: Int, fileSystem: String, context: SecurityContext)
    case infinibandPartitionKey(subnetPrefix: String, low: Int, high: Int, context: SecurityContext)
    case infinibandEndPort(device: String, port: Int, context: SecurityContext)
    case genfs(fileSystem: String, path: String, tclass: String?, context: SecurityContext)
    // Xen.
    case xenPIRQ(irq: Int, context: SecurityContext)
    case xenIOPort(low: Int, high: Int, context: SecurityContext)
    /// Machine frame numbers (4 KiB pages), not byte addresses.
    case xenIOMemory(low: UInt64, high: UInt64, context: SecurityContext)
    /// `(seg << 16) | (bus << 8) | (dev << 3) | fn`.
    case xenPCIDevice(device: Int, context: SecurityContext)
    case xenDeviceTree(path: String, context: SecurityContext)

    /// The statement keyword, as policy.conf writes it.
    public var keyword: String {
        switch self {
        case .initialSID: return "sid"
        case .fileSystem: return "fscon"
        case .port: return "portcon"
        case .networkInterface: return "netifcon"
        case .node: return "nodecon"
        case .fsUse(let b, _, _): return b == 1 ? "fs_use_xattr" : b == 2 ? "fs_use_trans" : "fs_use_task"
        case .infinibandPartitionKey: return "ibpkeycon"
        case .infinibandEndPort: return "ibendportcon"
        case .genfs: return "genfscon"
        case .xenPIRQ: return "pirqcon"
        case .xenIOPort: return "ioportcon"
        case .xenIOMemory: return "iomemcon"
        case .xenPCIDevice: return "pcidevicecon"
        case .xenDeviceTree: return "devicetreecon"
        }
    }
}

/// Initial SID names, which the binary policy does not store.
enum InitialSIDNames {
    /// libsepol's table for the SELinux target.
    static let selinux = ["", "kernel", "security", "unlabeled", "fs", "file", "file_labels", "init", "any_socket",
                          "port", "netif", "netmsg", "node", "igmp_packet", "icmp_socket", "tcp_socket",
                          "sysctl_modprobe", "sysctl", "sysctl_fs", "sysctl_kernel", "sysctl_net", "sysctl_net_unix",
                          "sysctl_vm", "sysctl_dev", "kmod", "policy", "scmp_packet", "devnull"]
    /// Xen's `xen/xsm/flask/policy/initial_sids` since Xen 4.17 (xenboot first).
    static let xen = ["", "xenboot", "xen", "dom0", "domio", "domxen", "unlabeled", "security", "ioport", "iomem", "irq",
                      "device", "domU", "domDM"]

    static func name(_ sid: UInt32, target: PolicyTarget) -> String {
        let table = target == .selinux ? selinux : xen
        return sid >= 1 && Int(sid) < table.count ? table[Int(sid)] : "sid\(sid)"
    }
}
