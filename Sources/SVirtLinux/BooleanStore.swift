import Foundation
import SELinux
import SELinuxPolicy
import SVirt

/// A boolean as svirt's decisions see it: its value, where the value comes from, and the policy that defines it.
public struct VirtBoolean: Sendable, Hashable, Codable {
    /// Where the value comes from.
    public enum Origin: String, Sendable, Hashable, Codable {
        /// SELinux is on: `/sys/fs/selinux/booleans/NAME` (the kernel's current value).
        case kernel
        /// SELinux is off: svirt's override store (table `boolean` of the registry).
        case override
        /// Neither: the policy's default.
        case policyDefault = "default"
    }

    public var name: String
    public var value: Bool
    /// The value the binary policy gives it.
    public var defaultValue: Bool
    public var origin: Origin
    /// The policy that defines it: the host's policy file, or svirt's built-in sVirt policy for a boolean the host's
    /// policy lacks (Debian has no `virt_transition_userdomain`; svirt's built-in policy decides that one).
    public var policy: String
    /// svirt's stored override, when there is one (it decides only where SELinux is off).
    public var override: Bool?
    /// What the boolean changes for the defined VMs (filled by `BooleanStore.list(effectsFor:)`).
    public var effects: [BooleanEffect]
}

/// svirt's view of SELinux booleans: the kernel's values where SELinux is on, svirt's own override store (the
/// registry's `boolean` table) where it is off, the policy's defaults otherwise.
///
/// The store never changes a kernel boolean: `set` writes svirt's override, and on an SELinux host says which
/// `setsebool -P` command would change the kernel's.
public struct BooleanStore {
    public let env: HostEnvironment
    public let registry: SQLiteRegistry
    public let probe: HostProbe
    /// The host's policy (or svirt's built-in one where the host has none) and how messages name it.
    public let policy: PolicyDatabase
    public let policySource: String
    /// svirt's built-in sVirt policy, for booleans the host's policy lacks.
    public let builtIn: PolicyDatabase

    public init(environment env: HostEnvironment, registry: SQLiteRegistry, probe: HostProbe = HostProbe()) throws {
        let selinux = try env.selinux()
        try self.init(environment: env, registry: registry, probe: probe, policy: try selinux.loadPolicy(),
                      policySource: selinux.policySource)
    }

    /// A store over a given policy (tests, `--policy`).
    public init(environment env: HostEnvironment, registry: SQLiteRegistry, probe: HostProbe = HostProbe(),
                policy: PolicyDatabase, policySource: String) throws {
        self.env = env
        self.registry = registry
        self.probe = probe
        self.policy = policy
        self.policySource = policySource
        builtIn = try BuiltInPolicy.load()
    }

    /// Whether the kernel runs SELinux (then its booleans decide, not svirt's store).
    public var selinuxEnabled: Bool { probe.selinux() != .disabled }

    /// The booleans only svirt's built-in policy defines (the host's policy lacks them).
    var builtInOnly: [PolicyBoolean] { builtIn.booleans.filter { policy.booleanValue($0.name) == nil } }

    /// The kernel's current value of a boolean, from selinuxfs (`cur pending`); nil where SELinux is off or the
    /// kernel has no such boolean.
    public func kernelValue(_ name: String) -> Bool? {
        guard selinuxEnabled, let mount = probe.selinuxfsMount(),
              let value = probe.kernelBoolean(selinuxfs: mount, name: name).value else { return nil }
        return value == "on"
    }

    /// The value svirt's decisions use for every boolean of the host's policy, plus the booleans only svirt's
    /// built-in policy has: the kernel's value where SELinux is on, else svirt's override, else the policy's
    /// default. This is what `svirt check --bool N=V` starts from. Names only the built-in policy defines are
    /// included, so filter with `policy.booleanValue(name) != nil` before `PolicyDatabase.settingBooleans`.
    public func effectiveBooleans() throws -> [String: Bool] {
        let overrides = selinuxEnabled ? [:] : try registry.booleanSettings()
        var out: [String: Bool] = [:]
        // The kernel's values, read once (each lookup by name would read the mount table again).
        var kernel: [String: Bool] = [:]
        if selinuxEnabled, let mount = probe.selinuxfsMount() {
            for e in probe.kernelBooleans(selinuxfs: mount, prefix: "") { if let v = e.value { kernel[e.name] = v == "on" } }
        }
        for b in policy.booleans + builtInOnly {
            out[b.name] = kernel[b.name] ?? overrides[b.name] ?? b.defaultValue
        }
        return out
    }

    /// The host's policy with the effective booleans set: what svirt decides with.
    public func effectivePolicy() throws -> PolicyDatabase {
        let values = try effectiveBooleans().filter { policy.booleanValue($0.key) != nil }
        return try policy.settingBooleans(values)
    }

    /// svirt's built-in policy with the effective booleans it defines set.
    public func effectiveBuiltInPolicy() throws -> PolicyDatabase {
        let values = try effectiveBooleans().filter { builtIn.booleanValue($0.key) != nil }
        return try builtIn.settingBooleans(values)
    }

    /// The virt booleans (`VirtBooleans.names`) of the host's policy and of svirt's built-in policy (those the
    /// host's lacks), with their values and, for each, what it changes for the accesses in `needs` (see
    /// `DomainAccessNeeds`), decided by the policy that defines it with every other boolean at its effective value.
    public func list(effectsFor needs: [VMAccessNeed] = []) throws -> [VirtBoolean] {
        let overrides = try registry.booleanSettings()
        let hostPolicy = try effectivePolicy()
        let builtInPolicy = try effectiveBuiltInPolicy()
        let hostNames = Set(VirtBooleans.names(in: policy))
        let builtInNames = VirtBooleans.names(in: builtIn).filter { !hostNames.contains($0) }
        var out: [VirtBoolean] = []
        for name in (hostNames.sorted() + builtInNames).sorted() {
            let inHost = hostNames.contains(name)
            let p = inHost ? hostPolicy : builtInPolicy
            let def = (inHost ? policy : builtIn).booleans.first { $0.name == name }?.defaultValue ?? false
            let value: Bool, origin: VirtBoolean.Origin
            if let k = kernelValue(name) {
                (value, origin) = (k, .kernel)
            } else if !selinuxEnabled, let o = overrides[name] {
                (value, origin) = (o, .override)
            } else {
                (value, origin) = (def, .policyDefault)
            }
            out.append(VirtBoolean(name: name, value: value, defaultValue: def, origin: origin,
                                   policy: inHost ? policySource : PolicyAccessChecker.builtInSource,
                                   override: overrides[name], effects: VirtBooleans.effects(of: name, in: p, needs: needs)))
        }
        return out
    }

    /// `list(effectsFor:)` over the needs of every defined (and running) VM: what `svirt booleans` and the console
    /// show. The warnings name VMs whose needs could not be computed.
    public func listForDomains() throws -> (booleans: [VirtBoolean], domains: [String], warnings: [String]) {
        let needs = try DomainAccessNeeds(environment: env, registry: registry, policy: policy).all()
        let names = needs.needs.keys.sorted()
        return (try list(effectsFor: names.flatMap { needs.needs[$0] ?? [] }), names, needs.warnings)
    }

    /// What `set` did.
    public struct SetOutcome: Sendable, Hashable, Codable {
        public var name: String
        /// The stored override (nil: cleared, the policy's default applies).
        public var value: Bool?
        /// The value svirt's decisions use now.
        public var effective: Bool
        /// What the user should know: the kernel is not changed, and the `setsebool -P` command that would.
        public var notes: [String]
    }

    /// Writes svirt's override of boolean `name` (nil clears it). Names neither the host's policy nor svirt's
    /// built-in policy define are refused, naming the virt booleans. Where SELinux is on the kernel's boolean is
    /// not changed, and the outcome says so with the `setsebool -P` command.
    @discardableResult
    public func set(_ name: String, _ value: Bool?) throws -> SetOutcome {
        let inHost = policy.booleanValue(name) != nil
        guard inHost || builtIn.booleanValue(name) != nil else {
            let known = (VirtBooleans.names(in: policy) + VirtBooleans.names(in: builtIn).filter { policy.booleanValue($0) == nil })
            throw SVirtError(.configuration, "'\(name)' is not a boolean of \(policySource) or of svirt's built-in sVirt policy; "
                             + "the virt booleans are \(Set(known).sorted().joined(separator: ", ")) "
                             + "(every boolean: svirt policy info --booleans)")
        }
        if let value { try registry.setBoolean(name, value) } else { try registry.clearBoolean(name) }
        var notes: [String] = []
        if !inHost {
            notes.append("\(policySource) has no boolean \(name): svirt's built-in sVirt policy decides what it allows")
        }
        if selinuxEnabled {
            let k = kernelValue(name)
            notes.append("SELinux is on, so the kernel's booleans decide and svirt does not change them"
                         + (k.map { " (the kernel has \(name) \($0 ? "on" : "off"))" } ?? "")
                         + "; svirt stored the setting for when SELinux is off"
                         + (value.map { " — to change the kernel's: setsebool -P \(name) \($0 ? "on" : "off")" } ?? ""))
        }
        let effective = try effectiveBooleans()[name] ?? value ?? false
        return SetOutcome(name: name, value: value, effective: effective, notes: notes)
    }
}
