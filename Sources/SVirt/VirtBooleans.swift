import SELinux
import SELinuxPolicy

/// One access a VM needs to run as defined: its QEMU's process label on one of its resources (or on itself, for
/// TCG's `execmem`), or the manager's context starting that process label.
public struct VMAccessNeed: Sendable, Hashable, Codable {
    /// The VM's name.
    public var domain: String
    /// Why the VM needs it, for people: `TCG generates code at run time`, `disk 'vda' (read-write)`.
    public var purpose: String
    public var source: String
    public var target: String
    public var tclass: String
    public var permissions: [String]
    /// The path, when the target is a file.
    public var object: String?

    public init(domain: String, purpose: String, source: SecurityContext, target: SecurityContext, tclass: String,
                permissions: [String], object: String? = nil) {
        self.domain = domain
        self.purpose = purpose
        self.source = source.description
        self.target = target.description
        self.tclass = tclass
        self.permissions = permissions
        self.object = object
    }

    /// `svirt_t svirt_t:process { execmem }`, in the types only.
    public var access: String {
        let s = (try? SecurityContext(parsing: source))?.type ?? source
        let t = (try? SecurityContext(parsing: target))?.type ?? target
        return "\(s) \(t):\(tclass) { \(permissions.joined(separator: " ")) }"
    }
}

/// What one boolean changes for one access a VM needs: the policy's decision with the boolean on and off.
public struct BooleanEffect: Sendable, Hashable, Codable {
    public var boolean: String
    public var domain: String
    public var purpose: String
    public var access: String
    public var object: String?
    public var allowedWhenOn: Bool
    public var allowedWhenOff: Bool

    /// `on` or `off`: the value the VM needs.
    public var needs: Bool { allowedWhenOn }

    /// `vm1 (TCG generates code at run time: svirt_t svirt_t:process { execmem }) needs it on`.
    public var summary: String {
        "\(domain): \(purpose) (\(access)\(object.map { " on \($0)" } ?? "")) is allowed only while it is \(needs ? "on" : "off")"
    }
}

/// The booleans that matter to VMs, and what each changes for the defined VMs, decided by the policy engine.
public enum VirtBooleans {
    /// The booleans of `policy` that concern VMs: those whose names start with `virt_` or `svirt_` (refpolicy's
    /// and Fedora's virt modules name every boolean of theirs so: `virt_use_execmem`, `virt_use_nfs`,
    /// `virt_transition_userdomain`, ...). Booleans of other modules that also guard a rule for `svirt_t` (such as
    /// `nscd_use_shm`, a rule for every domain) are left out: they are not about VMs. Sorted by name.
    public static func names(in policy: PolicyDatabase) -> [String] {
        policy.booleans.map(\.name).filter { $0.hasPrefix("virt_") || $0.hasPrefix("svirt_") }.sorted()
    }

    /// For each access in `needs` whose decision under `policy` changes with the boolean `name` (every other
    /// boolean as `policy` has it), the decision with the boolean on and off. Accesses whose contexts `policy`
    /// cannot resolve are skipped. Empty when the policy has no such boolean.
    public static func effects(of name: String, in policy: PolicyDatabase, needs: [VMAccessNeed]) -> [BooleanEffect] {
        guard policy.booleanValue(name) != nil,
              let on = try? policy.settingBooleans([name: true]),
              let off = try? policy.settingBooleans([name: false]) else { return [] }
        var out: [BooleanEffect] = []
        for n in needs {
            guard let sc = try? SecurityContext(parsing: n.source), let tc = try? SecurityContext(parsing: n.target),
                  let s = try? policy.resolve(sc), let t = try? policy.resolve(tc),
                  policy.policyClass(named: n.tclass) != nil else { continue }
            let a = on.check(source: s, target: t, class: n.tclass, permissions: n.permissions).allowed
            let b = off.check(source: s, target: t, class: n.tclass, permissions: n.permissions).allowed
            if a != b {
                out.append(BooleanEffect(boolean: name, domain: n.domain, purpose: n.purpose, access: n.access, object: n.object,
                                         allowedWhenOn: a, allowedWhenOff: b))
            }
        }
        return out
    }
}
