import SELinux

/// Who can touch what, decided by a policy: for every VM process label and every resource of every VM (and every
/// other VM's process), the permissions the policy gives, with the policy's reason for each one it refuses, and
/// the findings `svirt check` reports.
///
/// Nothing here is asserted: every cell is a question put to the `AccessChecker` (the policy engine, with its
/// type enforcement, booleans and MCS/MLS constraints), answered per permission (`checkEach`) so that each
/// refusal carries its own reason.
///
/// Findings:
/// - FAIL `crossAccess`: a VM's process may use another VM's private resource, or signal or trace its process;
/// - INFO `sharedResource`: a resource that is not private to one VM is reachable by several VMs;
/// - FAIL `ownAccess`: a VM lacks an access it needs on a resource of its own (it would not boot, or its shared
///   disk cannot be written);
/// - FAIL `levelDominance`: a VM's level dominates another VM's level (or equals it).
public struct IsolationMatrix: Sendable, Codable, Hashable {
    /// One VM to put in the matrix: its label and its label plan.
    public struct Subject: Sendable, Hashable {
        public var name: String
        public var running: Bool
        /// The label it runs with (running: from the live XML) or would get (defined).
        public var label: SecurityLabel
        /// The resources it uses, with the labels svirt sets on them.
        public var plan: LabelPlan
        /// True when the level was chosen for this check (a defined dynamic VM), not held by the VM.
        public var plannedLevel: Bool

        public init(name: String, running: Bool, label: SecurityLabel, plan: LabelPlan, plannedLevel: Bool = false) {
            self.name = name
            self.running = running
            self.label = label
            self.plan = plan
            self.plannedLevel = plannedLevel
        }
    }

    /// A VM as the matrix shows it.
    public struct Machine: Sendable, Codable, Hashable {
        public var name: String
        /// `running` or `defined`.
        public var state: String
        /// `dynamic`, `static` or `none`.
        public var labelType: String
        /// The process label; nil for a VM without one (type none), which has no row.
        public var process: String?
        public var imageLabel: String
        public var range: String
        /// The level was chosen for this check (see `plannedLevels`), not held by the VM.
        public var plannedLevel: Bool
    }

    /// How a resource is used by one VM.
    public struct Use: Sendable, Codable, Hashable {
        public var vm: String
        /// The resource's name in that VM (`disk 'vda'`).
        public var resource: String
        public var kind: LabelPlan.Kind
        public var access: LabelPlan.Access
    }

    /// One object: a path with the label it has while its VMs run.
    public struct Resource: Sendable, Codable, Hashable {
        /// `r1`, `r2`... in order of first use.
        public var id: String
        public var path: String
        public var context: String
        public var objectClass: String
        /// The VM it is private to: its label carries that VM's level. Nil for a shared object.
        public var owner: String?
        public var users: [Use]
        /// Why it is not checked, or anything else worth saying (a file that does not exist yet).
        public var note: String?

        public var isShared: Bool { owner == nil }
    }

    /// One permission and the policy's answer.
    public struct Permission: Sendable, Codable, Hashable {
        public var name: String
        public var allowed: Bool
        /// The policy's reason for a refusal (`constraint: ...`, `te: allow ...;`, `boolean: ...`).
        public var reason: String?
    }

    /// How the row VM relates to the column.
    public enum Relation: String, Sendable, Codable, Hashable {
        /// A resource private to the row VM.
        case own
        /// A shared resource the row VM uses.
        case shared
        /// Another VM's private resource, or another VM's process.
        case foreign
        /// A shared resource the row VM does not use.
        case unused
    }

    /// The colour of a cell.
    public enum CellState: String, Sendable, Codable, Hashable {
        /// Own resource, with every access it needs.
        case own
        /// A shared resource the VM uses, or may reach, with what it needs.
        case shared
        /// Nothing the VM should not have.
        case denied
        /// A finding of severity FAIL comes from this cell.
        case fail
    }

    public struct Cell: Sendable, Codable, Hashable {
        /// The row VM (its process label is the source).
        public var vm: String
        /// A resource id (`r1`), or `process:NAME` for another VM's process.
        public var target: String
        public var objectClass: String
        public var relation: Relation
        public var permissions: [Permission]
        /// The permissions the VM needs (own and shared resources it uses).
        public var needed: [String]
        public var state: CellState

        public var allowed: [String] { permissions.filter(\.allowed).map(\.name) }
        public var deniedPermissions: [Permission] { permissions.filter { !$0.allowed } }
    }

    public struct Finding: Sendable, Codable, Hashable {
        public enum Severity: String, Sendable, Codable, Hashable { case fail = "FAIL", info = "INFO" }
        public enum Kind: String, Sendable, Codable, Hashable {
            case crossAccess = "cross-access", sharedResource = "shared-resource", ownAccess = "own-access"
            case levelDominance = "level-dominance"
        }
        public var severity: Severity
        public var kind: Kind
        /// The VMs concerned, the acting one first.
        public var vms: [String]
        /// The resource id or `process:NAME`, when one is concerned.
        public var target: String?
        public var message: String
    }

    /// Where the policy came from.
    public var policy: String
    /// The boolean overrides applied for this check.
    public var booleans: [String: Bool]
    public var machines: [Machine]
    public var resources: [Resource]
    /// Row-major: for each machine with a process label, one cell per resource, then one per other VM process.
    public var cells: [Cell]
    public var findings: [Finding]
    /// Things the gathering said (missing images, a policy fallback).
    public var warnings: [String]

    /// True when a finding is a FAIL (kept in the JSON as `failed`).
    public private(set) var failed: Bool
    /// Which cells `cells` holds.
    public private(set) var detail: Detail
    /// Cells decided but not kept (`.findings`): every one refuses every access.
    public private(set) var omittedCells: Int
    /// Distinct questions put to the policy for the whole matrix.
    public private(set) var decisions: Int

    /// The permissions asked on files and devices.
    public static let filePermissions = ["read", "write", "append", "open", "getattr", "setattr", "ioctl", "lock", "map",
                                         "execute"]
    /// The permissions asked between VM processes.
    public static let processPermissions = ["signal", "sigkill", "sigstop", "signull", "ptrace"]
    /// The permissions that let a VM read, change or control another VM's object; a cell that allows one of them
    /// on another VM's private resource or process is a FAIL. The others asked are shown but do not cross alone:
    /// `open`, `ioctl` and `lock` act on a descriptor that `read` or `write` must first allow, `getattr` shows only
    /// metadata, and `signull` only whether the process exists (Debian's policies allow `signull` between
    /// `svirt_t` processes, and the mls policy `open`, `ioctl` and `lock` across levels).
    public static let accessPermissions: Set<String> = ["read", "write", "append", "setattr", "map", "execute",
                                                        "signal", "sigkill", "sigstop", "ptrace"]

    /// Builds the matrix.
    ///
    /// - `checker`: the policy (`PolicyAccessChecker`, `HostPolicyAccessChecker`...). With `booleans`, it must be
    ///   a `PolicyInspector`; a name the policy does not define is an error that names it.
    /// - `store`: reads the kind of each path (its object class) and, for a path svirt leaves alone or a running
    ///   VM's path whose label is not the planned one, its label (with a warning). A path that does not exist is
    ///   checked as a regular file with its planned label.
    ///
    /// - `detail`: which cells to keep (`Detail`); the findings do not depend on it.
    public init(subjects: [Subject], checker: any AccessChecker, booleans: [String: Bool] = [:],
                store: any FileLabelStore, policySource: String, warnings: [String] = [],
                detail: Detail = .full) throws {
        var checker = checker
        if !booleans.isEmpty {
            guard let inspector = checker as? any PolicyInspector else {
                throw SVirtError(.policy, "boolean overrides (\(booleans.keys.sorted().joined(separator: ", "))) need svirt's "
                                 + "policy engine; this checker cannot set booleans")
            }
            for name in booleans.keys.sorted() where !(try inspector.definesBoolean(name)) {
                throw SVirtError(.policy, "boolean '\(name)': \(policySource) defines no such boolean; list the "
                                 + "policy's booleans with 'svirt policy info --booleans' or leave it out")
            }
            checker = try inspector.settingBooleans(booleans)
        }
        var seen = Set<String>()
        for s in subjects where !seen.insert(s.name).inserted {
            throw SVirtError(.invalidDomain, "two VMs are called '\(s.name)'; give each name once")
        }
        policy = policySource
        self.booleans = booleans
        self.warnings = warnings
        machines = subjects.map { s in
            Machine(name: s.name, state: s.running ? "running" : "defined", labelType: s.label.type.rawValue,
                    process: s.label.process?.description, imageLabel: s.label.image.description,
                    range: s.label.range.description, plannedLevel: s.plannedLevel)
        }
        resources = Self.collect(subjects, store: store, warnings: &self.warnings)
        var cells: [Cell] = []
        var findings: [Finding] = []
        let rows = subjects.compactMap { s in s.label.process.map { (s, $0) } }
        let keep: Detail = detail == .automatic ? (rows.count <= Detail.automaticLimit ? .full : .findings) : detail
        self.detail = keep
        // Every cell is decided, through the memo; with `.findings` a refused cell outside the VM's own and shared
        // resources is counted, not kept.
        let memo = DecisionMemo(checker: checker)
        let rowHandles = rows.map { memo.handle($0.1) }
        let targets: [(Resource, DecisionMemo.Handle, Set<String>)] = try resources.map { r in
            guard let target = try? SecurityContext(parsing: r.context) else {
                throw SVirtError(.policy, "\(r.path): its label '\(r.context)' is not a valid context")
            }
            return (r, memo.handle(target), Set(r.users.map(\.vm)))
        }
        var omitted = 0
        if keep == .findings {
            (cells, omitted) = try Self.keptCells(rows: rows.map(\.0.name), rowHandles: rowHandles, targets: targets, memo: memo)
        }
        for (i, (s, _)) in rows.enumerated() where keep == .full {
            let sh = rowHandles[i]
            for (r, th, users) in targets {
                let a = try memo.answer(sh, th, r.objectClass, Self.filePermissions)
                if keep == .full || users.contains(s.name) || memo.crosses[a] {
                    cells.append(Self.cell(s.name, r, memo.answers[a]))
                } else {
                    omitted += 1
                }
            }
            for (j, (o, _)) in rows.enumerated() where j != i {
                let a = try memo.answer(sh, rowHandles[j], "process", Self.processPermissions)
                let crossing = memo.crosses[a]
                if keep == .full || crossing {
                    cells.append(Cell(vm: s.name, target: "process:\(o.name)", objectClass: "process", relation: .foreign,
                                      permissions: memo.answers[a], needed: [], state: crossing ? .fail : .denied))
                } else {
                    omitted += 1
                }
            }
        }
        omittedCells = omitted
        decisions = memo.distinct
        // Findings, in a stable order: crossings, own access, sharing, levels.
        let resourceByID = Dictionary(resources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for c in cells where c.relation == .foreign && c.state == .fail {
            if c.target.hasPrefix("process:") {
                let other = String(c.target.dropFirst("process:".count))
                findings.append(Finding(severity: .fail, kind: .crossAccess, vms: [c.vm, other], target: c.target,
                                        message: "'\(c.vm)' may \(Self.crossing(c).joined(separator: ", ")) the process of '\(other)'"))
            } else if let r = resourceByID[c.target], let owner = r.owner {
                findings.append(Finding(severity: .fail, kind: .crossAccess, vms: [c.vm, owner], target: r.id,
                                        message: "'\(c.vm)' may \(Self.crossing(c).joined(separator: " ")) \(r.path) "
                                        + "(\(r.context)), a private resource of '\(owner)'"))
            }
        }
        for c in cells where c.relation == .own || c.relation == .shared {
            let missing = c.needed.filter { n in !c.permissions.contains { $0.name == n && $0.allowed } }
            guard !missing.isEmpty, let r = resourceByID[c.target] else { continue }
            let reasons = c.permissions.filter { missing.contains($0.name) }.compactMap { p in p.reason.map { "\(p.name): \($0)" } }
            findings.append(Finding(severity: .fail, kind: .ownAccess, vms: [c.vm], target: r.id,
                                    message: "'\(c.vm)' needs \(missing.joined(separator: " ")) on its \(r.path) "
                                    + "(\(r.context)) but the policy refuses it"
                                    + (reasons.isEmpty ? "" : " — " + reasons.joined(separator: "; "))))
        }
        var reachingByID: [String: [String]] = [:]
        for c in cells where !Self.crossing(c).isEmpty { reachingByID[c.target, default: []].append(c.vm) }
        for r in resources where r.isShared {
            let reaching = reachingByID[r.id] ?? []
            guard reaching.count > 1 else { continue }
            findings.append(Finding(severity: .info, kind: .sharedResource, vms: reaching, target: r.id,
                                    message: "\(r.path) (\(r.context)) is shared: \(reaching.map { "'\($0)'" }.joined(separator: ", ")) "
                                    + "can reach it"))
        }
        // A VM without a process label (seclabel type='none') is not confined by the policy: whatever private
        // resource of another VM it is given, it can use.
        var resourcesByPath: [String: [Resource]] = [:]
        for r in resources { resourcesByPath[r.path, default: []].append(r) }
        for s in subjects where s.label.process == nil {
            var reported = Set<String>()
            for e in s.plan.entries where e.path.hasPrefix("/") && Preflight.checked(e.kind) {
                for r in resourcesByPath[e.path] ?? [] {
                    guard let owner = r.owner, owner != s.name, reported.insert(r.id).inserted else { continue }
                    findings.append(Finding(severity: .fail, kind: .crossAccess, vms: [s.name, owner], target: r.id,
                                            message: "'\(s.name)' has no process label (seclabel type='none'), so the policy does not "
                                            + "keep it from \(r.path) (\(r.context)), a private resource of '\(owner)' that it uses"))
                }
            }
        }
        // The pairs of rows whose high levels are comparable, in row order: found through the levels' comparable
        // lists, not by comparing every pair.
        var byHigh: [Int: [Int]] = [:]
        for (i, h) in rowHandles.enumerated() where h.high >= 0 { byHigh[h.high, default: []].append(i) }
        let comparable = memo.comparableLevels()
        var pairs: [(Int, Int)] = []
        for (i, h) in rowHandles.enumerated() where h.high >= 0 {
            for y in comparable[h.high] { for j in byHigh[y] ?? [] where j != i { pairs.append((i, j)) } }
        }
        pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var previous: (Int, Int)?
        for (i, j) in pairs {
            if let p = previous, p == (i, j) { continue }
            previous = (i, j)
            let a = rows[i].0, b = rows[j].0
            do {
                // The MCS constraints compare high levels (h1 dom h2), and a VM's files carry its range.
                let la = a.label.range, lb = b.label.range
                guard la.high.dominates(lb.high) else { continue }
                if la.high == lb.high && j < i { continue }  // an equal pair, said once
                let how = la.high == lb.high ? "has the same level as" : "dominates"
                var message = "'\(a.name)' (\(la)) \(how) '\(b.name)' (\(lb)): MCS cannot keep '\(a.name)' away from the "
                    + "files of '\(b.name)'"
                if b.plannedLevel {
                    message += " ('\(b.name)' is not running: while '\(a.name)' does not run either, its level is not "
                        + "reserved and a start can give '\(b.name)' this level; keep static levels outside the category pool)"
                }
                findings.append(Finding(severity: .fail, kind: .levelDominance, vms: [a.name, b.name], target: nil,
                                        message: message))
            }
        }
        self.cells = cells
        self.findings = findings
        failed = findings.contains { $0.severity == .fail }
    }

    /// The cell for a VM and a target (a resource id or `process:NAME`).
    public func cell(_ vm: String, _ target: String) -> Cell? { cells.first { $0.vm == vm && $0.target == target } }

    /// The resource at a path (the first one when the path has several labels).
    public func resource(path: String) -> Resource? { resources.first { $0.path == path } }

    /// The allowed permissions of a cell that give access (`accessPermissions`).
    public static func crossing(_ c: Cell) -> [String] { c.allowed.filter { accessPermissions.contains($0) } }

    // MARK: Building

    /// Levels for defined dynamic VMs, as a fresh start could give them, chosen deterministically: in name order,
    /// each gets the lowest-ranked pair of the pool that is not comparable with a `taken` level (the levels a start
    /// would avoid: reservations and running VMs' levels) or with a level given before it. A start picks a random free pair, so
    /// the level differs, but it is, like these, free and incomparable with every other VM's level.
    public static func plannedLevels(for names: [String], pool: CategoryPool, taken: [SecurityLevel]) -> [String: SecurityLevel] {
        var out: [String: SecurityLevel] = [:]
        // The pool's levels are pairs at one sensitivity, and a pair is comparable with another pair at the same
        // sensitivity only when equal: those taken levels are a set. Every other taken level (one or three
        // categories, another sensitivity, a range's bound) is compared with each candidate.
        let sensitivity = pool.pairCount > 0 ? pool.level(atRank: 0).sensitivity : 0
        var usedPairs = Set<SecurityLevel>()
        var usedOthers: [SecurityLevel] = []
        for l in taken {
            if l.categories.count == 2 && l.sensitivity == sensitivity { usedPairs.insert(l) } else { usedOthers.append(l) }
        }
        var rank = 0
        for name in names.sorted() {
            while rank < pool.pairCount {
                let level = pool.level(atRank: rank)
                rank += 1
                if !usedPairs.contains(level) && usedOthers.allSatisfy({ $0.isIncomparable(with: level) }) {
                    out[name] = level
                    usedPairs.insert(level)
                    break
                }
            }
        }
        return out
    }

    static func collect(_ subjects: [Subject], store: any FileLabelStore, warnings: inout [String]) -> [Resource] {
        var resources: [Resource] = []
        var index: [String: Int] = [:]
        for s in subjects {
            for e in s.plan.entries where e.path.hasPrefix("/") && Preflight.checked(e.kind) {
                var kind = FileKind.regular
                var context = e.context
                var note: String?
                do {
                    let f = try store.open(try store.resolve(e.path))
                    kind = f.kind
                    if context == nil, let text = try f.selinuxContext() {
                        context = try? SecurityContext(parsing: text)
                        if context == nil { note = "its label '\(text)' is not a valid context" }
                    } else if s.running, let planned = context, let text = try f.selinuxContext(),
                              let onDisk = try? SecurityContext(parsing: text), onDisk != planned {
                        // A running VM meets the label the file has, whatever svirt set.
                        context = onDisk
                        note = "labelled \(text) on disk, not \(planned) as svirt sets it"
                        warnings.append("\(s.name): \(e.resource) \(e.path) is labelled \(text), not \(planned) as svirt "
                                        + "labels it for the running VM; it is checked with the label it has")
                    }
                } catch let err as SVirtError where err.code == .notFound {
                    note = "does not exist yet: checked as a regular file"
                } catch {
                    note = "cannot be read (\(error)): checked as a regular file"
                }
                guard let target = context else {
                    warnings.append("\(s.name): \(e.resource) \(e.path) has no label svirt can read; it is left out of the matrix")
                    continue
                }
                let (cls, _) = Preflight.access(kind, e.access)
                let key = "\(e.path)\u{0}\(target)"
                let use = Use(vm: s.name, resource: e.resource, kind: e.kind, access: e.access)
                if let i = index[key] {
                    if !resources[i].users.contains(use) { resources[i].users.append(use) }
                    continue
                }
                // Private: the label carries the VM's own level, with categories.
                let level = s.label.range
                let owner = s.label.process != nil && target.range == level && !level.high.categories.isEmpty ? s.name : nil
                index[key] = resources.count
                resources.append(Resource(id: "r\(resources.count + 1)", path: e.path, context: target.description,
                                          objectClass: cls, owner: owner, users: [use], note: note))
            }
        }
        // A path several confined VMs use is not private to any of them. A VM without a process label does not
        // make another VM's resource shared: it reaches it unconfined, which is a finding of its own.
        let unlabelled = Set(subjects.filter { $0.label.process == nil }.map(\.name))
        for i in resources.indices
            where resources[i].owner != nil && Set(resources[i].users.map(\.vm).filter { !unlabelled.contains($0) }).count > 1 {
            resources[i].owner = nil
        }
        return resources
    }

    /// The cell of `vm` and resource `r`, from the policy's answer `perms` (`filePermissions`, in order).
    static func cell(_ vm: String, _ r: Resource, _ perms: [Permission]) -> Cell {
        let uses = r.users.filter { $0.vm == vm }
        var needed: [String] = []
        for u in uses {
            let kind: FileKind
            switch r.objectClass {
            case "blk_file": kind = .blockDevice
            case "chr_file": kind = .characterDevice
            case "dir": kind = .directory
            case "sock_file": kind = .socket
            case "fifo_file": kind = .fifo
            default: kind = .regular
            }
            for p in Preflight.access(kind, u.access).1 where !needed.contains(p) { needed.append(p) }
        }
        let relation: Relation
        if uses.isEmpty {
            relation = r.owner == nil ? .unused : .foreign
        } else {
            relation = r.owner == vm ? .own : .shared
        }
        var c = Cell(vm: vm, target: r.id, objectClass: r.objectClass, relation: relation, permissions: perms,
                     needed: needed, state: .denied)
        let reaches = !crossing(c).isEmpty
        switch relation {
        case .own, .shared:
            let ok = needed.allSatisfy { n in perms.contains { $0.name == n && $0.allowed } }
            c.state = !ok ? .fail : relation == .own ? .own : .shared
        case .foreign:
            c.state = reaches ? .fail : .denied
        case .unused:
            c.state = reaches ? .shared : .denied
        }
        return c
    }

    /// Asks the checker for a decision per permission, so each refusal has its own reason.
    static func ask(_ checker: any AccessChecker, _ source: SecurityContext, _ target: SecurityContext, _ cls: String,
                    _ permissions: [String]) throws -> [Permission] {
        let decisions: [AccessDecision]
        do {
            decisions = try checker.checkEach(source: source, target: target, objectClass: cls, permissions: permissions)
        } catch {
            throw SVirtError(.policy, "cannot decide whether \(source) may use \(target) (\(cls)): \(error)")
        }
        guard decisions.count == permissions.count else {
            throw SVirtError(.policy, "the policy checker gave \(decisions.count) decisions for \(permissions.count) permissions")
        }
        return zip(permissions, decisions).map { p, d in
            switch d {
            case .allowed: return Permission(name: p, allowed: true, reason: nil)
            case .denied(let denial): return Permission(name: p, allowed: false, reason: reason(denial))
            case .unknown(let why): return Permission(name: p, allowed: false, reason: "not checked: \(why)")
            }
        }
    }

    /// A refusal in one line: its kind, then the policy's words.
    static func reason(_ d: Denial) -> String {
        let detail = d.detail.split(separator: "\n").map { String($0).trimmingCharacters(in: " ") }.joined(separator: " ")
        switch d.kind {
        case .boolean: return "boolean: allowed while \(d.booleans.joined(separator: " or ")) is on"
        case .constraint: return "constraint: \(detail)"
        case .typeEnforcement: return "te: no rule \(detail)"
        default: return "\(d.kind.rawValue): \(detail)"
        }
    }
}
