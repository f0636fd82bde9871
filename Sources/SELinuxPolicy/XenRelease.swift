import SELinux

/// The Xen releases whose initial SID lists differ. A binary policy stores initial SIDs by number only; the names
/// come from the hypervisor's `xen/xsm/flask/policy/initial_sids` of the release the policy was built for, and that
/// list changed twice. libsepol's table (used by `checkpolicy -F/-C`) is the 4.3–4.16 list, so it names every SID of a
/// 4.17 policy one place off; setools 4.4 has yet another order. svirt keeps one table per release.
public enum XenRelease: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Xen 4.2: ten SIDs, no domU or domDM.
    case xen4_2 = "4.2"
    /// Xen 4.3 to 4.16: domU (the default label of a guest) and domDM (of a stub device model) appended.
    case xen4_3 = "4.3-4.16"
    /// Xen 4.17 and later: xenboot (the idle domain while Xen boots) inserted first.
    case xen4_17 = "4.17+"

    /// The release svirt assumes when none is given.
    public static let current: XenRelease = .xen4_17

    /// Initial SID names by number: `initialSIDNames[0]` names SID 1.
    public var initialSIDNames: [String] {
        switch self {
        case .xen4_2:
            return ["xen", "dom0", "domio", "domxen", "unlabeled", "security", "ioport", "iomem", "irq", "device"]
        case .xen4_3:
            return ["xen", "dom0", "domio", "domxen", "unlabeled", "security", "ioport", "iomem", "irq", "device",
                    "domU", "domDM"]
        case .xen4_17:
            return ["xenboot", "xen", "dom0", "domio", "domxen", "unlabeled", "security", "ioport", "iomem", "irq",
                    "device", "domU", "domDM"]
        }
    }

    /// The name of initial SID `sid`, or `sidN` when the release has no SID by that number.
    public func initialSIDName(_ sid: Int) -> String {
        let names = initialSIDNames
        return sid >= 1 && sid <= names.count ? names[sid - 1] : "sid\(sid)"
    }

    /// The number of the initial SID called `name` in this release.
    public func initialSID(named name: String) -> Int? {
        initialSIDNames.firstIndex(of: name).map { $0 + 1 }
    }

    /// The release a Xen version string belongs to: `4.16`, `4.17.3`, `4.19-rc`, `4.2`. Nil for versions svirt has
    /// no table for (before 4.2, whose policies were not XenFlask binaries) and for text that is not a version.
    public init?(version text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let major = Int(parts[0]) else { return nil }
        let minorDigits = parts[1].prefix { $0.isNumber }
        guard !minorDigits.isEmpty, let minor = Int(minorDigits) else { return nil }
        switch (major, minor) {
        case (4, 2): self = .xen4_2
        case (4, 3...16): self = .xen4_3
        case (4, 17...), (5..., _): self = .xen4_17
        default: return nil
        }
    }

    public var description: String { "Xen \(rawValue)" }
}

extension PolicyDatabase {
    /// The initial SID numbers the policy gives a context, in order.
    public var initialSIDNumbers: [Int] {
        storage.objectContexts.filter { $0.kind == 0 }.map { Int($0.sid) }
    }

    /// The Xen release whose SID names fit this policy, when the policy tells: a SID numbered 13, or a first SID
    /// whose type names xenboot, exists only from 4.17. Nil when the policy fits more than one release.
    public var inferredXenRelease: XenRelease? {
        guard storage.target == .xen else { return nil }
        let numbers = initialSIDNumbers
        if numbers.contains(where: { $0 >= 13 }) { return .xen4_17 }
        for o in storage.objectContexts where o.kind == 0 && o.sid == 1 {
            if storage.typeName(o.contexts[0].type).contains("xenboot") { return .xen4_17 }
        }
        return nil
    }

    /// The object contexts with Xen initial SIDs named from `release`'s table (SELinux policies are unaffected).
    public func objectContexts(xenRelease release: XenRelease) -> [ObjectContext] {
        objectContexts.map { o in
            if storage.target == .xen, case .initialSID(let sid, _, let context) = o {
                return .initialSID(sid: sid, name: release.initialSIDName(sid), context: context)
            }
            return o
        }
    }

    /// The context of the Xen initial SID called `name` under `release`'s numbering, if the policy gives one.
    public func xenInitialContext(_ name: String, release: XenRelease) -> SecurityContext? {
        guard storage.target == .xen, let sid = release.initialSID(named: name) else { return nil }
        for case .initialSID(let n, _, let context) in objectContexts where n == sid { return context }
        return nil
    }
}
