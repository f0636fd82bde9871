import Foundation
import SELinux
import Testing
@testable import SELinuxPolicy

/// A query: source, target, class, permissions.
struct PolicyQuery {
    var source: String
    var target: String
    var tclass: String
    var permissions: [String]
    var line: String { "\(source)\t\(target)\t\(tclass)\t\(permissions.joined(separator: " "))" }
}

/// Draws random valid queries from a policy: contexts from its users, roles and types with random levels, over
/// all classes and permissions. Eight in ten start from an allow rule, so allowed and constraint answers are
/// common too, not only TE denials (which are also the slow ones for audit2why).
struct QueryGenerator {
    let policy: PolicyDatabase
    var rng: SeededRandom
    let users: [PolicyUser]
    let rolesByName: [String: PolicyRole]
    let objectTypes: [String]
    let classes: [PolicyClass]
    let allowRules: [TERule]
    let sensitivityCats: [Int: CategorySet]
    var membersCache: [String: [String]] = [:]
    var rolesOfType: [String: [String]] = [:]
    let widest: SecurityRange?

    init(policy: PolicyDatabase, seed: UInt64) {
        self.policy = policy
        rng = SeededRandom(seed: seed)
        users = policy.users
        var rb: [String: PolicyRole] = [:]
        for r in policy.roles { rb[r.name] = r }
        rolesByName = rb
        objectTypes = policy.types.filter { !$0.isAttribute }.map(\.name)
        classes = policy.classes.filter { !$0.permissions.isEmpty }
        allowRules = policy.rules.filter { $0.kind == .allow }
        var sc: [Int: CategorySet] = [:]
        for s in policy.sensitivities {
            if let l = try? SecurityLevel(parsing: s.allowedCategories) { sc[l.sensitivity] = l.categories }
        }
        sensitivityCats = sc
        var rot: [String: [String]] = [:]
        for r in policy.roles where r.name != "object_r" { for t in r.types { rot[t, default: []].append(r.name) } }
        rolesOfType = rot
        widest = users.compactMap(\.range).max { a, b in
            (a.high.sensitivity, a.high.categories.count) < (b.high.sensitivity, b.high.categories.count)
        }
    }

    mutating func pick<T>(_ a: [T]) -> T? { a.isEmpty ? nil : a[Int.random(in: 0..<a.count, using: &rng)] }

    mutating func members(_ name: String) -> [String] {
        if let m = membersCache[name] { return m }
        let m = policy.members(of: name)
        membersCache[name] = m
        return m
    }

    /// A random level inside `range`.
    mutating func level(in range: SecurityRange, near: SecurityLevel? = nil) -> SecurityLevel {
        let sens = Int.random(in: range.low.sensitivity...max(range.low.sensitivity, range.high.sensitivity), using: &rng)
        let allowed = (sensitivityCats[sens] ?? CategorySet()).intersection(range.high.categories)
        var cats = range.low.categories
        if let near, Int.random(in: 0..<10, using: &rng) < 6 {
            // Near another level: equal, a subset, or one category more.
            var c = near.categories.intersection(allowed)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: break
            case 1: if let drop = c.min { c.remove(drop) }
            default: if let add = Array(allowed).randomElement(using: &rng) { c.insert(add) }
            }
            cats = cats.union(c)
            return SecurityLevel(sensitivity: min(max(near.sensitivity, range.low.sensitivity), range.high.sensitivity),
                                 categories: cats)
        }
        let all = Array(allowed)
        if !all.isEmpty {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: cats = cats.union(allowed)
            case 1, 2: break
            default:
                for _ in 0..<Int.random(in: 1...3, using: &rng) { if let c = pick(all) { cats.insert(c) } }
            }
        }
        return SecurityLevel(sensitivity: sens, categories: cats)
    }

    mutating func range(in r: SecurityRange, near: SecurityLevel? = nil) -> SecurityRange {
        let lo = level(in: r, near: near)
        if Int.random(in: 0..<3, using: &rng) == 0, let hiRange = try? SecurityRange(low: lo, high: r.high) {
            let hi = level(in: hiRange)
            if let full = try? SecurityRange(low: lo, high: hi) { return full }
        }
        return SecurityRange(lo)
    }

    /// A process context with this type (any user and role allowed to have it), or a random one.
    mutating func subject(type wanted: String? = nil, near: SecurityLevel? = nil) -> SecurityContext? {
        for _ in 0..<20 {
            let type: String
            let role: String
            if let wanted {
                guard let r = pick(rolesOfType[wanted] ?? []) else { return nil }
                type = wanted
                role = r
            } else {
                guard let u = pick(users), let r = pick(u.roles.filter { $0 != "object_r" }),
                      let t = pick(rolesByName[r]?.types ?? []) else { continue }
                type = t
                role = r
            }
            guard let u = pick(users.filter { $0.roles.contains(role) }) else { continue }
            let ctx = SecurityContext(user: u.name, role: role, type: type, range: u.range.map { range(in: $0, near: near) })
            if policy.validity(of: ctx) == nil { return ctx }
        }
        return nil
    }

    /// An object context (role object_r) with this type.
    mutating func object(type: String, near: SecurityLevel?) -> SecurityContext? {
        guard let u = pick(users) else { return nil }
        let ctx = SecurityContext(user: u.name, role: "object_r", type: type, range: widest.map { range(in: $0, near: near) })
        return policy.validity(of: ctx) == nil ? ctx : nil
    }

    mutating func permissions(of c: PolicyClass, from: [String]? = nil) -> [String] {
        let pool = (from?.isEmpty ?? true) ? c.permissions : from ?? []
        var out = Set<String>()
        for _ in 0..<Int.random(in: 1...3, using: &rng) { if let p = pick(pool) { out.insert(p) } }
        if from != nil, Int.random(in: 0..<5, using: &rng) == 0, let p = pick(c.permissions) { out.insert(p) }
        return out.sorted { (c.bit(of: $0) ?? 0) < (c.bit(of: $1) ?? 0) }
    }

    mutating func next() -> PolicyQuery? {
        let mode = Int.random(in: 0..<10, using: &rng)
        if mode < 8, let rule = pick(allowRules), let c = policy.policyClass(named: rule.tclass) {
            // From an allow rule: a source type of its source, a target type of its target.
            guard let st = pick(members(rule.source).filter { rolesOfType[$0] != nil }),
                  let s = subject(type: st) else { return nil }
            guard let tt = pick(members(rule.target)) else { return nil }
            let targetIsProcess = rolesOfType[tt] != nil && Int.random(in: 0..<3, using: &rng) == 0
            guard let t = targetIsProcess ? subject(type: tt, near: s.level) : object(type: tt, near: s.level) else {
                return nil
            }
            return PolicyQuery(source: s.description, target: t.description, tclass: c.name,
                               permissions: permissions(of: c, from: rule.permissions))
        }
        guard let s = subject(), let c = pick(classes) else { return nil }
        let t: SecurityContext?
        if mode < 9 {
            t = subject(near: s.level)
        } else {
            guard let tt = pick(objectTypes) else { return nil }
            t = object(type: tt, near: s.level)
        }
        guard let t else { return nil }
        return PolicyQuery(source: s.description, target: t.description, tclass: c.name, permissions: permissions(of: c))
    }
}

/// The svirt cases the issue names, which every run includes.
let svirtQueries: [PolicyQuery] = [
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:object_r:svirt_image_t:s0:c1,c2",
                tclass: "file", permissions: ["read", "write"]),
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:object_r:svirt_image_t:s0:c3,c4",
                tclass: "file", permissions: ["read", "write"]),
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:object_r:virt_image_t:s0",
                tclass: "file", permissions: ["read", "write"]),
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:system_r:svirt_t:s0:c1,c2",
                tclass: "process", permissions: ["execmem"]),
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:object_r:svirt_image_t:s0",
                tclass: "file", permissions: ["read"]),
    PolicyQuery(source: "system_u:system_r:svirt_t:s0:c1,c2", target: "system_u:object_r:svirt_image_t:s0",
                tclass: "file", permissions: ["write"]),
]

/// Runs libsepol over `queries` (audit2why through python3-selinux, and the C program for full vectors) and
/// compares every answer with svirt's. Returns the mismatches.
func differential(policyPath: String, queries: [PolicyQuery]) throws -> (mismatches: [String], results: [String: Int]) {
    let policy = try loadPolicy(policyPath)
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let queryFile = dir + "/queries.tsv"
    try (queries.map(\.line).joined(separator: "\n") + "\n").write(toFile: queryFile, atomically: true, encoding: .utf8)

    let binary = dir + "/sepol_oracle"
    let (ccStatus, ccErr) = try run("/usr/bin/cc", ["-O2", "-o", binary, repositoryRoot + "/oracle/sepol_oracle.c",
                                                          "/usr/lib/x86_64-linux-gnu/libsepol.a"])
    guard ccStatus == 0 else { return (["cc failed: \(ccErr)"], [:]) }

    // Both oracles run while svirt answers the same queries.
    let vectorsOut = dir + "/vectors.txt", whyOut = dir + "/why.txt"
    let cProcess = Process()
    cProcess.executableURL = URL(fileURLWithPath: binary)
    cProcess.arguments = ["av", policyPath, queryFile, vectorsOut]
    cProcess.standardError = FileHandle.nullDevice
    let pyProcess = Process()
    pyProcess.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    pyProcess.arguments = [repositoryRoot + "/oracle/audit2why_oracle.py", policyPath, queryFile, whyOut]
    try cProcess.run()
    try pyProcess.run()

    let started = Date()
    var ours: [(vectors: String, result: String, booleans: String)] = []
    ours.reserveCapacity(queries.count)
    for q in queries {
        guard let s = try? policy.resolve(q.source), let t = try? policy.resolve(q.target) else {
            ours.append(("ERR context", "ERR", ""))
            continue
        }
        let d = policy.decide(source: s, target: t, class: q.tclass)
        let vec = String(format: "%08x %08x %08x", d.allowed.rawValue, d.auditAllow.rawValue, d.auditDeny.rawValue)
        let c = policy.check(source: s, target: t, class: q.tclass, permissions: q.permissions)
        let bools = c.booleans.map { "\($0.name)=\($0.value ? 1 : 0)" }.sorted().joined(separator: ",")
        ours.append((vec, c.result.rawValue, bools))
    }
    let oursSeconds = Date().timeIntervalSince(started)
    cProcess.waitUntilExit()
    let cSeconds = Date().timeIntervalSince(started)
    pyProcess.waitUntilExit()
    print("\(policyPath): svirt \(Int(oursSeconds)) s, libsepol vectors \(Int(cSeconds)) s, audit2why \(Int(Date().timeIntervalSince(started))) s")
    guard cProcess.terminationStatus == 0, pyProcess.terminationStatus == 0 else {
        return (["oracle failed: c=\(cProcess.terminationStatus) python=\(pyProcess.terminationStatus)"], [:])
    }
    let vectors = try String(contentsOfFile: vectorsOut, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    let why = try String(contentsOfFile: whyOut, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    var mismatches: [String] = []
    var results: [String: Int] = [:]
    for (i, q) in queries.enumerated() {
        let v = i < vectors.count ? String(vectors[i]) : "missing"
        let w = i < why.count ? why[i].split(separator: "\t", omittingEmptySubsequences: false).map(String.init) : ["missing"]
        let theirResult = w[0], theirBools = w.count > 1 ? w[1] : ""
        results[theirResult, default: 0] += 1
        let o = ours[i]
        if o.result == "ERR" {
            if !v.hasPrefix("ERR") || !theirResult.hasPrefix("ERR") {
                mismatches.append("\(q.line): svirt refuses the context, libsepol answers \(v) / \(theirResult)")
            }
            continue
        }
        if v != o.vectors { mismatches.append("\(q.line): vectors svirt \(o.vectors) libsepol \(v)") }
        if theirResult != o.result || theirBools != o.booleans {
            mismatches.append("\(q.line): reason svirt \(o.result) \(o.booleans) audit2why \(theirResult) \(theirBools)")
        }
    }
    return (mismatches, results)
}

func generateQueries(_ policy: PolicyDatabase, count: Int, seed: UInt64) -> [PolicyQuery] {
    var g = QueryGenerator(policy: policy, seed: seed)
    var out = svirtQueries
    var attempts = 0
    while out.count < count, attempts < count * 20 {
        attempts += 1
        if let q = g.next() { out.append(q) }
    }
    return out
}

@Suite("libsepol differential")
struct OracleDifferentialTests {
    static let enabled = haveDebianPolicies && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")

    @Test("20,000 random queries on the Debian default policy match libsepol's vectors and audit2why's reasons",
          .enabled(if: enabled, "needs selinux-policy-default, python3-selinux and libsepol-dev"))
    func defaultPolicy() throws {
        let policy = try loadPolicy(debianDefaultPolicy)
        let queries = generateQueries(policy, count: 20_000, seed: 0x5EED_0001)
        #expect(queries.count >= 20_000)
        let (mismatches, results) = try differential(policyPath: debianDefaultPolicy, queries: queries)
        print("default policy: \(queries.count) queries, audit2why results \(results.sorted { $0.key < $1.key })")
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10).joined(separator: "\n"))")
        #expect((results["ALLOW"] ?? 0) > 1000 && (results["TERULE"] ?? 0) > 1000 && (results["CONSTRAINT"] ?? 0) > 100,
                "the queries should cover allowed, TE and constraint answers")
    }

    @Test("20,000 random queries on the Debian MLS policy match libsepol's vectors and audit2why's reasons",
          .enabled(if: enabled, "needs selinux-policy-mls, python3-selinux and libsepol-dev"))
    func mlsPolicy() throws {
        let policy = try loadPolicy(debianMLSPolicy)
        let queries = generateQueries(policy, count: 20_000, seed: 0x5EED_0002)
        #expect(queries.count >= 20_000)
        let (mismatches, results) = try differential(policyPath: debianMLSPolicy, queries: queries)
        print("mls policy: \(queries.count) queries, audit2why results \(results.sorted { $0.key < $1.key })")
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10).joined(separator: "\n"))")
        #expect((results["ALLOW"] ?? 0) > 1000 && (results["TERULE"] ?? 0) > 1000 && (results["CONSTRAINT"] ?? 0) > 100,
                "the queries should cover allowed, TE and constraint answers")
    }
}

@Suite("svirt cases on the Debian policies")
struct SVirtCaseTests {
    func result(_ p: PolicyDatabase, _ q: PolicyQuery) throws -> AccessCheck {
        try p.check(source: p.resolve(q.source), target: p.resolve(q.target), class: q.tclass, permissions: q.permissions)
    }

    @Test("a VM may use its own image, not another VM's, not virt_image_t, and execmem needs virt_use_execmem",
          .enabled(if: haveDebianPolicies, "needs selinux-policy-default and selinux-policy-mls"))
    func cases() throws {
        for path in [debianDefaultPolicy, debianMLSPolicy] {
            let p = try loadPolicy(path)
            #expect(try result(p, svirtQueries[0]).result == .allow, "\(path): own image")
            let other = try result(p, svirtQueries[1])
            #expect(other.result == .constraint && other.constraints.allSatisfy(\.isMLS), "\(path): another VM's image")
            #expect(try result(p, svirtQueries[2]).result == .teRule, "\(path): virt_image_t")
            let execmem = try result(p, svirtQueries[3])
            #expect(execmem.result == .boolean && execmem.booleans == [BooleanSetting(name: "virt_use_execmem", value: true)])
            #expect(try result(p, svirtQueries[4]).result == .allow, "\(path): reading the shared image")
        }
        // Writing the shared svirt_image_t:s0 is allowed by MCS (default) and denied by MLS (no write down).
        #expect(try result(loadPolicy(debianDefaultPolicy), svirtQueries[5]).result == .allow)
        let mlsWrite = try result(loadPolicy(debianMLSPolicy), svirtQueries[5])
        #expect(mlsWrite.result == .constraint)
        #expect(mlsWrite.constraints.contains { $0.text.hasPrefix("mlsconstrain file { write") })
    }
}
