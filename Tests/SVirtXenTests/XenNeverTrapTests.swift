import Foundation
import Testing
import SELinux
import SELinuxPolicy
import SVirt
@testable import SVirtXen

@Suite("never trap on damaged Xen policies")
struct XenNeverTrapTests {
    /// Everything svirt xen does with a policy: SID names, builds of the four label cases, the matrix, device labels,
    /// the overlay and the label pool. Errors are fine; a trap ends the test run.
    static func exercise(_ db: PolicyDatabase, _ configs: [XenDomainConfiguration]) -> Bool {
        guard let policy = try? XenPolicy(db) else { return false }
        _ = db.objectContexts(xenRelease: .xen4_2).map(\.statement)
        _ = db.inferredXenRelease
        var builds: [XenDomainBuild] = []
        for c in configs {
            if let b = try? XenDomainBuild(c, policy: policy, iommu: .off) {
                _ = b.stepLines
                _ = b.text(policy: "m", release: policy.release, assumed: true)
                builds.append(b)
            }
        }
        if let m = try? XenIsolationMatrix(builds: builds, policy: policy) {
            _ = m.html(policy: "m")
        }
        for d: XenDevice in [.pirq(33), .iomem(low: 0, high: UInt64.max), .ioports(low: 0, high: 0xffff), .deviceTree("/")] {
            _ = try? policy.deviceLabels(d)
        }
        _ = try? XenMCSOverlay(policy: policy, exempt: [])
        _ = try? XenLabeler(policy: policy)
        return true
    }

    @Test("4,000 random byte mutations of the Xen fixture policies throw or give a policy every command can use")
    func mutations() throws {
        var rng = SeededRandom(seed: 0x5EED_0F_0E)
        let inputs = try xenPolicyFixtures.map { try readBytes(xenPolicyDirectory + "/" + $0.name) }
        let configs = try labelCases.map(loadConfiguration)
        var used = 0, refused = 0
        for i in 0..<4_000 {
            var b = inputs[i % inputs.count]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: b[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                default:
                    let v: UInt32 = [0, 1, 0xffff_ffff, 0x8000_0000, 13, 14, 30, 24][Int.random(in: 0..<8, using: &rng)]
                    for k in 0..<4 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
                }
            }
            do {
                let db = try PolicyDatabase(bytes: b, source: "mutant")
                if Self.exercise(db, configs) { used += 1 }
            } catch let e as PolicyFormatError {
                #expect(e.description.contains("at byte \(e.offset)") || e.code == .unknownName)
                refused += 1
            }
        }
        #expect(used > 0 && refused > 0)
    }
}
