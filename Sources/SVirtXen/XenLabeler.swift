import SELinux
import SELinuxPolicy
import SVirt

/// Gives Xen domains unique MCS category pairs with svirt's allocator, and writes them into their xl.cfg labels.
///
/// Each domain keeps its label's user, role and type (`seclabel`, else libxl's default, the domU initial SID) and gets
/// one level `sN:cA,cB` from the `LevelRegistry`, which hands out pairs the way it does for VMs under SELinux: unique,
/// never dominating one another. A domain whose label already carries a pair keeps it when the registry lets it
/// reserve it. The same level goes on `init_seclabel` (so the relabel stays at one level) and on the stub device
/// model's label (it must reach its guest's memory).
public struct XenLabeler: Sendable {
    /// What one domain gets.
    public struct Assignment: Sendable {
        public var name: String
        public var file: String
        public var level: SecurityLevel
        /// True when the configuration already carried this level and it was kept.
        public var kept: Bool
        /// The new value of each label key, e.g. `seclabel` → `system_u:system_r:domU_t:s0:c4,c9`.
        public var labels: [(key: String, context: SecurityContext)]
        /// Why an earlier level was not kept, if it was not.
        public var note: String?
    }

    public var policy: XenPolicy
    public var pool: CategoryPool

    /// A labeler for `policy` with categories from `pool`. Without a pool, the pool is the categories the policy
    /// allows at the lowest sensitivity, as far as the default label's user may have them.
    public init(policy: XenPolicy, pool: CategoryPool? = nil) throws {
        guard policy.database.isMLS else {
            throw XenError(.policy, "the policy has no MLS: Xen refuses labels with levels (EINVAL); build the policy "
                           + "with CONFIG_MLS=y (checkpolicy -t xen -M) to give domains categories")
        }
        self.policy = policy
        if let pool {
            self.pool = pool
        } else {
            self.pool = try Self.defaultPool(policy)
        }
    }

    /// The categories the policy's domU user may have at the lowest sensitivity.
    static func defaultPool(_ policy: XenPolicy) throws -> CategoryPool {
        let db = policy.database
        guard let first = db.sensitivities.first, !db.categories.isEmpty else {
            throw XenError(.allocation, "the policy defines no categories; give --categories")
        }
        var cats = CategorySet()
        for c in db.categories { if let n = Int(c.name.dropFirst()), c.name.hasPrefix("c") { cats.insert(n) } }
        if let domU = try? policy.initialContext("domU"), let user = db.users.first(where: { $0.name == domU.user }),
           let high = user.range?.high {
            cats = cats.intersection(high.categories)
        }
        let sens = Int(first.name.dropFirst()) ?? 0
        do {
            return try CategoryPool(level: SecurityLevel(sensitivity: sens, categories: cats))
        } catch {
            throw XenError(.allocation, "the policy allows too few categories for a pool (\(cats.count)); give --categories",
                           cause: error)
        }
    }

    /// Hands out a level to every configuration, in order, through `registry` (owners `xen:NAME`).
    public func assign(_ configurations: [XenDomainConfiguration], registry: any LevelRegistry) async throws -> [Assignment] {
        var names = Set<String>()
        for c in configurations {
            guard names.insert(c.name).inserted else {
                throw XenError(.value, "two configurations name the domain '\(c.name)'; each domain needs its own name",
                               file: c.file, line: c.config.setting("name")?.line)
            }
        }
        let held = try await registry.reservations()
        var out: [Assignment] = []
        for c in configurations {
            let owner = "xen:\(c.name)"
            let base = try c.seclabel?.context ?? policy.initialContext("domU")
            var level: SecurityLevel?
            var kept = false
            var note: String?
            if let existing = c.seclabel?.context.range?.low, existing.categories.count == 2, pool.rank(of: existing) != nil {
                if held.contains(where: { $0.level == existing && $0.owner == owner }) {
                    level = existing
                    kept = true
                } else {
                    do {
                        try await registry.reserveLevel(existing, owner: owner, kind: .admin, process: nil)
                        level = existing
                        kept = true
                    } catch let e as SVirtError {
                        note = "its level \(existing) could not be kept: \(e.message)"
                    }
                }
            } else if let r = c.seclabel?.context.range {
                note = "its level \(r) is not one category pair of the pool \(pool); it gets a new one"
            }
            if level == nil {
                do {
                    level = try await registry.allocateLevel(owner: owner, kind: .admin, process: nil, pool: pool)
                } catch let e as SVirtError {
                    throw XenError(.allocation, "no level for '\(c.name)': \(e.message)", file: c.file, cause: e)
                }
            }
            guard let level else { continue }
            let range = SecurityRange(level)
            var labels: [(String, SecurityContext)] = [("seclabel", base.with(range: range))]
            if let i = c.initSeclabel { labels.append(("init_seclabel", i.context.with(range: range))) }
            if c.stubDomain {
                let dm = try c.deviceModelSeclabel?.context ?? policy.initialContext("domDM")
                labels.append(("device_model_stubdomain_seclabel", dm.with(range: range)))
                if let i = c.deviceModelInitSeclabel { labels.append(("device_model_stubdomain_init_seclabel", i.context.with(range: range))) }
            }
            for (key, ctx) in labels {
                let problems = policy.labelProblems(ctx)
                if !problems.isEmpty {
                    throw XenError(.label, "the label \(ctx) for '\(key)' of '\(c.name)' is not valid: "
                                   + problems.map { "\($0.component): \($0.problem)" }.joined(separator: "; "), file: c.file)
                }
            }
            out.append(Assignment(name: c.name, file: c.file, level: level, kept: kept, labels: labels, note: note))
        }
        return out
    }

    /// The configuration's text with the assignment's labels written in (values single-quoted), or appended when
    /// the file had no such key.
    public static func rewrite(_ configuration: XenDomainConfiguration, with assignment: Assignment) throws -> String {
        var config = configuration.config
        for (key, ctx) in assignment.labels {
            let text = try config.replacing(key, with: XLConfig.quoted(ctx.description))
            config = try XLConfig(parsing: text, source: config.source)
        }
        return config.text
    }
}
