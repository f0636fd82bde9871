import SELinux
import SVirt

extension DomainLifecycle {
    /// The VMs `svirt check` looks at, with their labels and plans: running VMs with the labels of their live
    /// XML, defined ones with the labels a start would give them (a dynamic VM gets a level from
    /// `IsolationMatrix.plannedLevels`, chosen as a start chooses: among the pairs no reservation and no running VM
    /// blocks; a defined static VM's level blocks nothing until it runs, so it can dominate a planned level, and
    /// the check then says so). `names` empty means every VM;
    /// an unknown name is `.notFound`. Missing images are warnings, not errors.
    public func isolationSubjects(names: [String] = []) async throws -> (subjects: [IsolationMatrix.Subject], warnings: [String]) {
        let running = try local.runningDomains()
        let defined = try local.definedDomains()
        var all = running.map(\.name)
        var known = Set(all)
        for d in defined where known.insert(d.name).inserted { all.append(d.name) }
        for n in names where !known.contains(n) {
            throw SVirtError(.notFound, "failed to get domain '\(n)': no VM of that name is defined or running in "
                             + "\(env.state.path); see 'svirt list --all'")
        }
        let wanted = names.isEmpty ? Set(all) : Set(names)
        let driver = try driver()
        var warnings: [String] = []
        var subjects: [IsolationMatrix.Subject] = []
        var taken = try await levels.reservations().map(\.level)
        var pendingDynamic: [(String, DomainDefinition)] = []
        var pendingStatic: [(String, DomainDefinition)] = []
        for r in running where wanted.contains(r.name) {
            let domain: DomainDefinition
            let label: SecurityLabel
            if r.label != nil || r.imageLabel != nil {
                domain = try DomainDefinition(xml: r.liveXML, mode: .live, source: "the live XML of '\(r.name)'")
                label = try driver.generator.liveLabel(of: domain)
            } else {
                domain = try DomainDefinition(xml: r.liveXML, source: "the live XML of '\(r.name)'")
                label = try driver.generator.generateLabel(for: domain, level: driver.generator.pool.level(atRank: 0)).label
            }
            taken.append(label.range.low)
            let plan = try driver.planner.plan(for: domain, label: label,
                                               runtime: RuntimeResources(privatePaths: r.details.privatePaths), mode: .restore)
            warnings += plan.warnings.map { "\(r.name): \($0)" }
            subjects.append(IsolationMatrix.Subject(name: r.name, running: true, label: label, plan: plan))
        }
        let runningNames = Set(running.map(\.name))
        for d in defined where wanted.contains(d.name) && !runningNames.contains(d.name) {
            let domain = try DomainDefinition(xml: d.xml, source: "the definition of '\(d.name)'")
            if domain.selinuxSeclabel.type == .dynamic {
                pendingDynamic.append((d.name, domain))
            } else {
                pendingStatic.append((d.name, domain))
            }
        }
        let pool = driver.generator.pool
        for (name, domain) in pendingStatic {
            let label = try driver.generator.generateLabel(for: domain, level: pool.level(atRank: 0)).label
            let plan = try driver.planner.plan(for: domain, label: label, mode: .restore)
            warnings += plan.warnings.map { "\(name): \($0)" }
            subjects.append(IsolationMatrix.Subject(name: name, running: false, label: label, plan: plan))
        }
        let levels = IsolationMatrix.plannedLevels(for: pendingDynamic.map(\.0), pool: pool, taken: taken)
        for (name, domain) in pendingDynamic {
            guard let level = levels[name] else {
                warnings.append("\(name): no free level is left in the pool \(pool) for a planned label; it is left out")
                continue
            }
            let result = try driver.generator.generateLabel(for: domain, level: level)
            let plan = try driver.planner.plan(for: domain, label: result.label, mode: .restore)
            warnings += (result.warnings + plan.warnings).map { "\(name): \($0)" }
            subjects.append(IsolationMatrix.Subject(name: name, running: false, label: result.label, plan: plan,
                                                    plannedLevel: true))
        }
        // Rows in a stable order: running VMs as they are listed, then defined ones by name.
        let order = Dictionary(all.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        subjects.sort { a, b in
            let ra = runningNames.contains(a.name), rb = runningNames.contains(b.name)
            if ra != rb { return ra }
            return ra ? (order[a.name] ?? 0) < (order[b.name] ?? 0) : a.name < b.name
        }
        return (subjects, warnings)
    }

    /// The isolation matrix as `svirt check` computes it: the VMs named (all when empty), under `policy` (default:
    /// the host's policy, else svirt's built-in one), with svirt's effective booleans (`BooleanStore.effectiveBooleans`:
    /// the kernel's values where SELinux is on, svirt's store where it is off; those the policy defines) and then
    /// `overrides`. An override the policy does not define is an error naming it.
    public func isolationMatrix(names: [String] = [], policy: PolicyAccessChecker? = nil,
                                overrides: [String: Bool] = [:], detail: IsolationMatrix.Detail = .full) async throws -> IsolationMatrix {
        let checker = try policy ?? env.selinux().accessChecker()
        // svirt's effective booleans: the kernel's where SELinux is on, svirt's store where it is off, else defaults.
        let store = try BooleanStore(environment: env, registry: local, probe: probe, policy: checker.policy,
                                     policySource: checker.source)
        // Only values that differ from the policy's are set (and reported).
        var settings = try store.effectiveBooleans().filter { name, value in
            checker.policy.booleanValue(name).map { $0 != value } ?? false
        }
        settings.merge(overrides) { _, b in b }
        return try await isolationMatrix(names: names, checker: checker, booleans: settings, policySource: checker.source,
                                         detail: detail)
    }

    /// The isolation matrix of the VMs named (all when empty) under `checker`'s policy with `booleans` set.
    public func isolationMatrix(names: [String] = [], checker: any AccessChecker, booleans: [String: Bool] = [:],
                                policySource: String, detail: IsolationMatrix.Detail = .full) async throws -> IsolationMatrix {
        let (subjects, warnings) = try await isolationSubjects(names: names)
        return try IsolationMatrix(subjects: subjects, checker: checker, booleans: booleans, store: XattrFileLabelStore(),
                                   policySource: policySource, warnings: warnings, detail: detail)
    }
}
