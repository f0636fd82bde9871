import SELinux

/// The sVirt security driver: what the lifecycle code calls to label a VM before it starts and to give every
/// label back when it stops. It strings together the generator, the registry, the planner, the preflight and
/// the relabeler, in an order that survives a crash at any point:
///
/// `labelAll(for:)`: reserve the level (dynamic: allocate; static: reserve) → plan → preflight → label.
/// Any failure gives the labels back and releases the level.
///
/// `restoreAll(for:)`: find the VM's label (live XML, the static label, or the dynamic level the registry
/// holds for it) → plan → restore → release the level.
///
/// Both hold `lock` while they run. The relabelling itself is synchronous, on one thread.
public struct SecurityDriver: Sendable {
    public var contexts: ContextsConfiguration
    public var generator: LabelGenerator
    public var registry: any LevelRegistry
    public var planner: LabelPlanner
    public var store: any FileLabelStore
    public var defaults: any DefaultLabelSource
    public var checker: any AccessChecker
    public var bootTime: Int
    /// Takes the host-wide labelling lock; the lock is held until the returned value is released.
    public var lock: @Sendable () throws -> AnyObject?

    public init(contexts: ContextsConfiguration, manager: SecurityContext, pool: CategoryPool, registry: any LevelRegistry,
                host: any HostInspector, store: any FileLabelStore, defaults: any DefaultLabelSource,
                checker: any AccessChecker, bootTime: Int, lock: @escaping @Sendable () throws -> AnyObject? = { nil }) {
        self.contexts = contexts
        generator = LabelGenerator(contexts: contexts, manager: manager, pool: pool)
        self.registry = registry
        planner = LabelPlanner(contexts: contexts, host: host)
        self.store = store
        self.defaults = defaults
        self.checker = checker
        self.bootTime = bootTime
        self.lock = lock
    }

    /// What `labelAll(for:)` did.
    public struct Labelled: Sendable {
        public var label: SecurityLabel
        public var plan: LabelPlan
        public var report: LabelReport
        public var preflight: Preflight.Report
        /// Warnings from generation and planning (TCG without a TCG type, directory disks...).
        public var warnings: [String]
        /// Every file of the plan, opened once before anything changed, by the plan's path: the owner change,
        /// the Landlock rules and QEMU use these, never the path again.
        public var files: [String: any LabeledFile] = [:]
    }

    /// A start's labels decided and checked, before any file changes: the level is reserved, the plan made, the
    /// preflight passed, and every path guarded and held open. `commit` labels the files; dropping it without
    /// `commit` or `cancel` keeps the level reserved, so call one of them. The labelling lock is held until then.
    public final class PreparedLabels: @unchecked Sendable {
        public let label: SecurityLabel
        public let plan: LabelPlan
        public let preflight: Preflight.Report
        public let warnings: [String]
        let relabel: Relabeler.Prepared
        let relabeler: Relabeler
        /// The labelling lock, released with this object (or by `commit`/`cancel`).
        var lockHold: AnyObject?

        init(label: SecurityLabel, plan: LabelPlan, preflight: Preflight.Report, warnings: [String],
             relabel: Relabeler.Prepared, relabeler: Relabeler, lockHold: AnyObject?) {
            self.label = label
            self.plan = plan
            self.preflight = preflight
            self.warnings = warnings
            self.relabel = relabel
            self.relabeler = relabeler
            self.lockHold = lockHold
        }

        /// The held files, by the plan's path.
        public var files: [String: any LabeledFile] { relabel.files }
    }

    /// What `restoreAll(for:)` did.
    public struct Restored: Sendable {
        public var label: SecurityLabel?
        public var plan: LabelPlan
        public var report: LabelReport
        /// The levels released.
        public var released: [SecurityLevel]
        /// Levels the registry did not release, and why (the labels were restored all the same).
        public var unreleased: [(level: SecurityLevel, reason: String)]
        public var warnings: [String]
    }

    func relabeler(_ reservations: [Reservation]) -> Relabeler {
        let owners = Dictionary(reservations.map { ($0.level, $0.owner) }, uniquingKeysWith: { a, _ in a })
        return Relabeler(store: store, defaults: defaults, bootTime: bootTime, ownerOfLevel: { owners[$0] })
    }

    /// The levels the registry holds for the domain.
    public func heldLevels(of domain: DomainDefinition) async throws -> [Reservation] {
        try await registry.reservations().filter { $0.owner == domain.name && $0.kind == .domain }
    }

    /// The label a domain would get, reserving nothing: `level` for a dynamic label (required).
    public func label(for domain: DomainDefinition, level: SecurityLevel) throws -> LabelGenerator.Result {
        domain.mode == .live ? LabelGenerator.Result(label: try generator.liveLabel(of: domain), warnings: [])
            : try generator.generateLabel(for: domain, level: level)
    }

    /// Labels everything the domain uses, after reserving its level and passing the preflight.
    ///
    /// - `level`: a dynamic label takes this level instead of a fresh one (it is reserved like any other).
    /// - `process`: the running process the reservation is tied to, if there is one yet.
    /// - `force`: relabel host system paths and device nodes the XML does not hand over, and reserve a static
    ///   (or live) level that dominates every pair of the pool (a warning says so).
    public func labelAll(for domain: DomainDefinition, level: SecurityLevel? = nil, runtime: RuntimeResources = RuntimeResources(),
                         process: ProcessIdentity? = nil, force: Bool = false, protectedDirectories: [String] = []) async throws -> Labelled {
        let prepared = try await prepareLabels(for: domain, level: level, runtime: runtime, process: process, force: force,
                                               protectedDirectories: protectedDirectories)
        return try await commit(prepared)
    }

    /// Labels the files of `prepared`; on failure the labels already set are given back, the level is released,
    /// and the error is thrown.
    public func commit(_ prepared: PreparedLabels) async throws -> Labelled {
        defer { prepared.lockHold = nil }
        do {
            let report = try prepared.relabeler.commit(prepared.relabel)
            var done = Labelled(label: prepared.label, plan: prepared.plan, report: report, preflight: prepared.preflight,
                                warnings: prepared.warnings)
            done.files = prepared.files
            return done
        } catch {
            try? await generator.releaseLabel(prepared.label, registry: registry)
            throw error
        }
    }

    /// Gives up a prepared start: nothing was labelled, so only the level is released.
    /// Returns what went wrong (the level could not be released), or nil.
    @discardableResult
    public func cancel(_ prepared: PreparedLabels) async -> String? {
        defer { prepared.lockHold = nil }
        do {
            try await generator.releaseLabel(prepared.label, registry: registry)
            return nil
        } catch {
            return "releasing the level \(prepared.label.reservedLevel?.description ?? "(none)"): \(error)"
        }
    }

    /// The first half of `labelAll`: reserves the level, plans, runs the preflight, and checks and opens every
    /// path (the guard), changing no file.
    public func prepareLabels(for domain: DomainDefinition, level: SecurityLevel? = nil, runtime: RuntimeResources = RuntimeResources(),
                              process: ProcessIdentity? = nil, force: Bool = false,
                              protectedDirectories: [String] = []) async throws -> PreparedLabels {
        let held = try lock()
        if let r = try await heldLevels(of: domain).first, domain.mode == .inactive {
            throw SVirtError(.state, "'\(domain.name)' already holds the level \(r.level): its labels are applied (or it runs); "
                             + "give them back first with 'svirt label restore' (or stop the VM)")
        }
        var result: LabelGenerator.Result
        // A level given by the XML or the caller (not drawn from the pool) must leave the pool usable.
        func checkGiven(_ label: SecurityLabel) throws -> [String] {
            guard let l = label.reservableLevel else { return [] }
            let what = "the \(label.type == .dynamic ? "level" : "\(label.type) label") of '\(domain.name)' "
                + "(\(label.process.map(\.description) ?? "\(l)"))"
            return try MCSAllocator.checkLeavesPoolUsable(l, pool: generator.pool, what: what, force: force).map { [$0] } ?? []
        }
        if domain.mode == .live {
            result = LabelGenerator.Result(label: try generator.liveLabel(of: domain), warnings: [])
            result.warnings += try checkGiven(result.label)
            result.label = try await generator.reserveLabel(result.label, for: domain, registry: registry, process: process)
        } else if let level, domain.selinuxSeclabel.type == .dynamic {
            result = try generator.generateLabel(for: domain, level: level)
            result.label.reservedLevel = nil
            result.warnings += try checkGiven(result.label)
            result.label = try await generator.reserveLabel(result.label, for: domain, registry: registry, process: process)
        } else {
            result = try await generator.generateLabel(for: domain, registry: registry)
            if result.label.type == .static {
                result.warnings += try checkGiven(result.label)
                result.label = try await generator.reserveLabel(result.label, for: domain, registry: registry, process: process)
            }
        }
        do {
            let plan = try planner.plan(for: domain, label: result.label, runtime: runtime)
            let preflight = try Preflight(checker: checker, store: store, contexts: contexts).run(plan)
            let reservations = try await registry.reservations()
            let relabeler = relabeler(reservations)
            let relabel = try relabeler.prepare(plan, options: .init(force: force, protectedDirectories: protectedDirectories))
            return PreparedLabels(label: result.label, plan: plan, preflight: preflight, warnings: result.warnings + plan.warnings,
                                  relabel: relabel, relabeler: relabeler, lockHold: held)
        } catch {
            try? await generator.releaseLabel(result.label, registry: registry)
            throw error
        }
    }

    /// Gives back every label the domain's resources carry for it, and releases its level.
    ///
    /// `label` is the label the VM ran with when the caller knows it (the lifecycle keeps it); otherwise it is
    /// taken from live XML, from the static label, or from the level the registry holds for the domain.
    public func restoreAll(for domain: DomainDefinition, label known: SecurityLabel? = nil,
                           runtime: RuntimeResources = RuntimeResources()) async throws -> Restored {
        let held = try lock()
        defer { withExtendedLifetime(held) {} }
        var warnings: [String] = []
        let reservations = try await heldLevels(of: domain)
        var label = known
        if label == nil {
            if domain.mode == .live {
                label = try generator.liveLabel(of: domain)
            } else {
                switch domain.selinuxSeclabel.type {
                case .static, .none:
                    label = try generator.generateLabel(for: domain, level: SecurityLevel()).label
                case .dynamic:
                    if reservations.count > 1 {
                        warnings.append("'\(domain.name)' holds \(reservations.count) levels; restoring with \(reservations[0].level)")
                    }
                    if let r = reservations.first {
                        label = try generator.generateLabel(for: domain, level: r.level).label
                        label?.reservedLevel = r.level
                    }
                }
            }
        }
        let labelKnown = label != nil
        // Without a known level the plan still lists every path; the records decide what comes back.
        let planLabel = try label ?? generator.generateLabel(for: domain, level: generator.pool.level(atRank: 0)).label
        let plan = try planner.plan(for: domain, label: planLabel, runtime: runtime, mode: .restore)
        if !labelKnown {
            warnings.append("'\(domain.name)' holds no level in the registry, so paths without svirt's records are left as they are")
        }
        let all = try await registry.reservations()
        let report = relabeler(all).restoreAll(plan, labelKnown: labelKnown)
        var released: [SecurityLevel] = []
        var unreleased: [(level: SecurityLevel, reason: String)] = []
        // The labels are back whatever the registry says: a release the registry refuses (a shared registry out
        // of reach) is reported, not thrown, so the caller still finishes the stop on this host.
        for r in reservations {
            do {
                try await registry.releaseLevel(r.level)
                released.append(r.level)
            } catch {
                unreleased.append((r.level, String(describing: error)))
                warnings.append("the level \(r.level) of '\(domain.name)' could not be released: \(error); it stays reserved "
                                + "until 'svirt mcs release \(r.level)' succeeds")
            }
        }
        return Restored(label: label, plan: plan, report: report, released: released, unreleased: unreleased,
                        warnings: warnings + plan.warnings)
    }
}
