import SELinux

/// Makes a VM's labels as libvirt's SELinux driver does (sections 4 and 5 of the reference):
///
/// - user and role come from the managing process's context (`manager`); objects keep the base's role;
/// - the process type comes from the KVM base, the TCG base for `type='qemu'` (with a warning naming
///   virt_use_execmem when the host has none), or the `<baselabel>`;
/// - dynamic labels get a fresh level from the registry, static labels keep theirs, none gets the bare
///   sensitivity;
/// - the image label is the image base with the same range as the process.
public struct LabelGenerator: Sendable {
    public var contexts: ContextsConfiguration
    /// The managing process's context (`HostEnvironment.managerContext()`).
    public var manager: SecurityContext
    /// Where dynamic levels come from (`HostEnvironment.pool()`).
    public var pool: CategoryPool

    public init(contexts: ContextsConfiguration, manager: SecurityContext, pool: CategoryPool) {
        self.contexts = contexts
        self.manager = manager
        self.pool = pool
    }

    /// A label and what the caller should tell the user about it.
    public struct Result: Sendable, Hashable {
        public var label: SecurityLabel
        public var warnings: [String]

        public init(label: SecurityLabel, warnings: [String] = []) {
            self.label = label
            self.warnings = warnings
        }
    }

    /// The security models svirt has. libvirt checks every model named in the XML before a start.
    public static let models: Set<String> = ["selinux", "dac", "none"]

    /// Refuses a domain that names a security model svirt does not have (libvirt's CheckAllLabel).
    public func checkModels(_ domain: DomainDefinition) throws {
        var named: [(String, String)] = domain.seclabels.compactMap { s in s.model.map { ($0, "seclabel") } }
        for (i, d) in domain.disks.enumerated() {
            named += d.seclabels.map { ($0.model, "\(d.displayName(index: i)) <source> seclabel") }
        }
        for c in domain.characterDevices { named += c.seclabels.map { ($0.model, "\(c.displayName) <source> seclabel") } }
        for (model, where_) in named where !Self.models.contains(model) {
            throw SVirtError(.invalidDomain, "\(where_): model='\(model)' is not available; svirt has the models "
                             + "selinux, dac and none")
        }
    }

    /// Generates the VM's label, reserving a fresh level in `registry` for a dynamic label (owner: the domain
    /// name, kind `.domain`). Static and none labels reserve nothing here; see `reserveLabel`.
    public func generateLabel(for domain: DomainDefinition, registry: any LevelRegistry) async throws -> Result {
        let s = try checkedSeclabel(domain)
        var level: SecurityLevel?
        if s.type == .dynamic {
            level = try await registry.allocateLevel(owner: domain.name, kind: .domain, process: nil, pool: pool)
        }
        do {
            var r = try makeLabel(domain, s, dynamicLevel: level)
            r.label.reservedLevel = level
            return r
        } catch {
            if let level { _ = try? await registry.releaseLevel(level) }
            throw error
        }
    }

    /// Generates the VM's label with a given level for a dynamic label, reserving nothing (`label plan
    /// --level`, the demo). The level must be one of the pool's pairs.
    public func generateLabel(for domain: DomainDefinition, level: SecurityLevel) throws -> Result {
        let s = try checkedSeclabel(domain)
        if s.type == .dynamic {
            guard pool.rank(of: level) != nil else {
                throw SVirtError(.invalidLevel, "'\(level)' is not a pair of categories from the pool \(pool); "
                                 + "give a level such as s\(pool.sensitivity):c\(pool.categories[0]),c\(pool.categories[1])")
            }
        }
        return try makeLabel(domain, s, dynamicLevel: level)
    }

    /// The label a running VM has, read from its live XML (`<label>` and `<imagelabel>` as written).
    public func liveLabel(of domain: DomainDefinition) throws -> SecurityLabel {
        try checkModels(domain)
        let s = domain.selinuxSeclabel
        switch s.type {
        case .none:
            let level = SecurityLevel(sensitivity: manager.range?.low.sensitivity ?? 0)
            return SecurityLabel(type: .none, relabel: false, process: nil,
                                 image: newContext(contexts.imageBase.context, SecurityRange(level), object: true),
                                 range: SecurityRange(level))
        case .dynamic, .static:
            guard let process = s.selinuxLabel else {
                throw SVirtError(.invalidDomain, "seclabel: the live XML of '\(domain.name)' has no <label>; "
                                 + "read the XML of a running VM with --live, or leave --live out for a definition")
            }
            guard let range = process.range else {
                throw SVirtError(.invalidDomain, "seclabel <label>: '\(process)' has no MLS range (user:role:type:level); "
                                 + "svirt needs the VM's level")
            }
            let image = s.selinuxImageLabel ?? newContext(contexts.imageBase.context, range, object: true)
            var label = SecurityLabel(type: s.type, relabel: s.relabel, process: process, image: image,
                                      baseLabel: s.baseLabel, range: range)
            label.reservedLevel = label.reservableLevel
            return label
        }
    }

    /// Reserves a label's level for the VM (a static level, or the level of a live dynamic label found again).
    /// Refused, naming the holder, when another reservation equals, dominates or is dominated by it. A level
    /// the VM already holds is accepted as it is.
    public func reserveLabel(_ label: SecurityLabel, for domain: DomainDefinition, registry: any LevelRegistry,
                             process: ProcessIdentity? = nil) async throws -> SecurityLabel {
        guard let level = label.reservableLevel else { return label }
        var out = label
        if let held = try await registry.reservation(for: level), held.owner == domain.name, held.kind == .domain {
            out.reservedLevel = level
            return out
        }
        do {
            try await registry.reserveLevel(level, owner: domain.name, kind: .domain, process: process)
        } catch let e as SVirtError where e.code == .levelConflict {
            throw SVirtError(.levelConflict, "the label of '\(domain.name)' (\(label.process.map(\.description) ?? "\(level)")) "
                             + "cannot be reserved: \(e.message)", cause: e)
        }
        out.reservedLevel = level
        return out
    }

    /// Releases the level the VM holds, if any.
    public func releaseLabel(_ label: SecurityLabel, registry: any LevelRegistry) async throws {
        guard let level = label.reservedLevel else { return }
        if try await registry.reservation(for: level) != nil {
            try await registry.releaseLevel(level)
        }
    }

    // MARK: Internals

    /// The selinux seclabel after libvirt's preconditions.
    func checkedSeclabel(_ domain: DomainDefinition) throws -> DomainSeclabel {
        try checkModels(domain)
        let s = domain.selinuxSeclabel
        if let m = s.model, m != "selinux" {
            throw SVirtError(.invalidDomain, "seclabel: model='\(m)' cannot be generated by the selinux driver")
        }
        if s.type == .dynamic, s.label != nil {
            throw SVirtError(.invalidDomain, "seclabel: '\(domain.name)' already has a dynamic <label> (live XML); "
                             + "a running VM keeps its label: read it with liveLabel(of:) instead of generating a new one")
        }
        if s.imageLabel != nil {
            throw SVirtError(.invalidDomain, "seclabel: '\(domain.name)' already has an <imagelabel> (live XML); "
                             + "svirt derives the image label from the process label, so generate from the definition")
        }
        return s
    }

    func makeLabel(_ domain: DomainDefinition, _ s: DomainSeclabel, dynamicLevel: SecurityLevel?) throws -> Result {
        var warnings: [String] = []
        let range: SecurityRange
        var process: SecurityContext?
        switch s.type {
        case .static:
            guard let text = s.label else {
                throw SVirtError(.invalidDomain, "seclabel: type='static' needs a <label>")
            }
            let label: SecurityContext
            do {
                label = try SecurityContext(parsing: text)
            } catch let e as SELinuxError {
                throw SVirtError(.invalidDomain, "seclabel <label>: '\(text)' is not a valid security context: \(e.message)")
            }
            guard let r = label.range else {
                throw SVirtError(.invalidDomain, "seclabel <label>: '\(text)' has no MLS range (user:role:type:level); "
                                 + "svirt gives the VM's images the process's level, so write one, e.g. \(text):s0:c1,c2")
            }
            range = r
            process = label
        case .dynamic:
            guard let level = dynamicLevel else {
                throw SVirtError(.invalidLevel, "a dynamic label needs a level from the registry")
            }
            range = SecurityRange(level)
            let base: SecurityContext
            if let b = s.baseLabel {
                do {
                    base = try SecurityContext(parsing: b)
                } catch let e as SELinuxError {
                    throw SVirtError(.invalidDomain, "seclabel <baselabel>: '\(b)' is not a valid security context: \(e.message)")
                }
            } else if domain.virtType == .qemu {
                if let tcg = contexts.tcgProcessBase {
                    base = tcg.context
                } else {
                    base = contexts.processBase.context
                    warnings.append(Self.tcgWarning(domain: domain.name, type: base.type, source: contexts.processBase.source))
                }
            } else {
                base = contexts.processBase.context
            }
            process = newContext(base, range, object: false)
        case .none:
            range = SecurityRange(SecurityLevel(sensitivity: manager.range?.low.sensitivity ?? 0))
        }
        let image = newContext(contexts.imageBase.context, range, object: true)
        let label = SecurityLabel(type: s.type, relabel: s.relabel, process: process, image: image,
                                  baseLabel: s.type == .dynamic ? s.baseLabel : nil, range: range)
        return Result(label: label, warnings: warnings)
    }

    /// libvirt's NewContext: the base's type, the manager's user (and role, for a process), and `range`.
    public func newContext(_ base: SecurityContext, _ range: SecurityRange, object: Bool) -> SecurityContext {
        var c = base.with(user: manager.user).with(range: range)
        if !object { c = c.with(role: manager.role) }
        return c
    }

    static func tcgWarning(domain: String, type: String, source: ConfigurationSource) -> String {
        "'\(domain)' is a TCG guest (type='qemu'), but the policy defines no TCG domain type (\(source) has one line), "
            + "so it runs as \(type); TCG needs the execmem permission, which \(type) has only while the boolean "
            + "virt_use_execmem is on (setsebool -P virt_use_execmem on)"
    }
}
