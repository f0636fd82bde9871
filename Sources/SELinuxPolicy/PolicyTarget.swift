/// The platform a binary policy was compiled for: the Linux kernel (`SE Linux`) or the Xen hypervisor
/// (`XenFlask`).
public enum PolicyTarget: String, Sendable, Hashable, Codable, CustomStringConvertible {
    case selinux
    case xen

    /// The versions svirt reads for this target.
    public var supportedVersions: [Int] {
        switch self {
        case .selinux: return Array(24...33)
        case .xen: return [24, 30]
        }
    }

    /// The string in the policy header.
    public var headerString: String { self == .selinux ? "SE Linux" : "XenFlask" }

    public var description: String { self == .selinux ? "selinux" : "xen" }
}

/// What the kernel does with classes and permissions the policy does not define (`handle_unknown`).
public enum HandleUnknown: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Deny them (the default).
    case deny
    /// Refuse to load the policy when the kernel defines classes the policy lacks.
    case reject
    /// Allow them.
    case allow

    public var description: String { rawValue }
}
