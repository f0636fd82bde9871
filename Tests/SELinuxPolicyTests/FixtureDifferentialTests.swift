import Foundation
import Testing
@testable import SELinuxPolicy

@Suite("libsepol differential on fixtures")
struct FixtureDifferentialTests {
    static let enabled = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")

    @Test("random queries on every compiled fixture match libsepol, including bounds and RBAC answers",
          .enabled(if: enabled, "needs python3-selinux, libsepol-dev and cc"))
    func fixtures() throws {
        var all: [String: Int] = [:]
        // Fixed seeds (String.hashValue differs per run), printed so a mismatch can be replayed.
        for (i, name) in ["small.24", "small.27", "small.29", "small.30", "small.33", "tiny.30", "tiny.33"].enumerated() {
            let path = fixtureDirectory + "/" + name
            let policy = try loadPolicy(path)
            let seed = 0xF1 + UInt64(i)
            print("fixture differential \(name): seed \(seed)")
            var g = QueryGenerator(policy: policy, seed: seed)
            var queries: [PolicyQuery] = []
            var attempts = 0
            while queries.count < 1500, attempts < 30_000 {
                attempts += 1
                if let q = g.next() { queries.append(q) }
            }
            let (mismatches, results) = try differential(policyPath: path, queries: queries)
            for (k, v) in results { all[k, default: 0] += v }
            #expect(mismatches.isEmpty, "\(name): \(mismatches.count) mismatches: \(mismatches.prefix(10).joined(separator: "\n"))")
        }
        print("fixture results: \(all.sorted { $0.key < $1.key })")
        for r in ["ALLOW", "TERULE", "CONSTRAINT", "BOOLEAN", "DONTAUDIT", "RBAC", "BOUNDS"] {
            #expect((all[r] ?? 0) > 0, "the fixture queries should produce \(r) answers")
        }
    }
}
