import Foundation
import SELinux
import Testing
@testable import SELinuxPolicy

/// Compares `computeCreate` with libsepol's `sepol_transition_sid` (linked statically from libsepol-dev).
func createDifferential(policyPath: String, count: Int, seed: UInt64) throws -> (checked: Int, mismatches: [String]) {
    let policy = try loadPolicy(policyPath)
    var g = QueryGenerator(policy: policy, seed: seed)
    let transitions = policy.rules.filter { $0.kind == .typeTransition }
    var queries: [(String, String, String)] = []
    var attempts = 0
    while queries.count < count, attempts < count * 20 {
        attempts += 1
        if Int.random(in: 0..<2, using: &g.rng) == 0, let r = g.pick(transitions) {
            guard let st = g.pick(g.members(r.source).filter { g.rolesOfType[$0] != nil }), let s = g.subject(type: st),
                  let tt = g.pick(g.members(r.target)) else { continue }
            let isProcess = g.rolesOfType[tt] != nil && Int.random(in: 0..<2, using: &g.rng) == 0
            guard let t = isProcess ? g.subject(type: tt, near: s.level) : g.object(type: tt, near: s.level) else { continue }
            queries.append((s.description, t.description, r.tclass))
        } else if let q = g.next() {
            queries.append((q.source, q.target, q.tclass))
        }
    }
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let qfile = dir + "/create.tsv", out = dir + "/create.out", bin = dir + "/sepol_oracle"
    try (queries.map { "\($0.0)\t\($0.1)\t\($0.2)" }.joined(separator: "\n") + "\n").write(toFile: qfile, atomically: true, encoding: .utf8)
    let (cc, ccErr) = try run("/usr/bin/cc", ["-O2", "-o", bin, repositoryRoot + "/oracle/sepol_oracle.c",
                                              "/usr/lib/x86_64-linux-gnu/libsepol.a"])
    guard cc == 0 else { return (0, ["cc failed: \(ccErr)"]) }
    let (status, _) = try run(bin, ["create", policyPath, qfile, out])
    guard status == 0 else { return (0, ["sepol_oracle create exited \(status)"]) }
    let theirs = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
    var mismatches: [String] = []
    for (i, q) in queries.enumerated() {
        let ours: String
        do {
            ours = try policy.computeCreate(source: policy.resolve(q.0), target: policy.resolve(q.1), class: q.2).description
        } catch {
            ours = "ERR"
        }
        let their = i < theirs.count ? theirs[i] : "missing"
        if ours != their { mismatches.append("\(q.0) \(q.1) \(q.2): svirt \(ours) libsepol \(their)") }
    }
    return (queries.count, mismatches)
}

@Suite("computeCreate against libsepol")
struct CreateOracleTests {
    static let enabled = FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libsepol.a")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")

    @Test("new object labels on the fixture policy match sepol_transition_sid",
          .enabled(if: enabled, "needs libsepol-dev and cc"))
    func fixture() throws {
        let (n, mismatches) = try createDifferential(policyPath: fixtureDirectory + "/small.33", count: 2000, seed: 11)
        #expect(n >= 1000)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(10).joined(separator: "\n"))")
    }

    @Test("new object labels on the Debian policies match sepol_transition_sid",
          .enabled(if: enabled && haveDebianPolicies, "needs the Debian policies, libsepol-dev and cc"))
    func debian() throws {
        for (path, seed) in [(debianDefaultPolicy, UInt64(21)), (debianMLSPolicy, UInt64(22))] {
            let (n, mismatches) = try createDifferential(policyPath: path, count: 3000, seed: seed)
            #expect(n >= 2000)
            #expect(mismatches.isEmpty, "\(path): \(mismatches.count) mismatches: \(mismatches.prefix(10).joined(separator: "\n"))")
        }
    }
}
