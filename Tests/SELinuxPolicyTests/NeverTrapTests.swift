import Foundation
import Testing
@testable import SELinuxPolicy

/// Reads damaged policies: each must throw or give a database that answers questions, never trap.
enum NeverTrap {
    static let fixtures = ["small.24", "small.27", "small.30", "small.33", "tiny.30", "tiny.33", "xen.24", "xen.30",
                           "../xen/policy/svirt-xen-mls.30"]
    /// More inputs for the mutations: svirt's Xen test policies at both versions, with and without MLS.
    static let mutationFixtures = fixtures + ["../xen/policy/svirt-xen.24", "../xen/policy/svirt-xen.30",
                                              "../xen/policy/svirt-xen-mls.24"]

    /// Exercises a policy that read: decisions, explanations, listings and labels over its own names.
    static func exercise(_ p: PolicyDatabase) {
        _ = p.statistics
        _ = p.objectContexts
        _ = p.constraints
        let classes = p.classes
        var contexts: [PolicyContext] = []
        for case .initialSID(_, _, let c) in p.objectContexts.prefix(4) {
            if let r = try? p.resolve(c) { contexts.append(r) }
        }
        for s in contexts {
            for t in contexts {
                for c in classes.prefix(4) {
                    _ = p.check(source: s, target: t, class: c.name, permissions: c.permissions)
                    _ = try? p.computeCreate(source: s, target: t, class: c.name, objectName: "x")
                }
            }
        }
    }

    static func attempt(_ bytes: [UInt8]) -> Bool {
        guard let p = try? PolicyDatabase(bytes: bytes) else { return false }
        exercise(p)
        return true
    }

    static func mutate(seed: UInt64, count: Int) throws -> Int {
        var rng = SeededRandom(seed: seed)
        let inputs = try mutationFixtures.map { try readBytes("\(fixtureDirectory)/\($0)") }
        var loaded = 0
        for i in 0..<count {
            var b = inputs[i % inputs.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: b[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: b[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                case 2: b[at] = [0, 0xff, 0x7f, 0x80, 1][Int.random(in: 0..<5, using: &rng)]
                default:
                    // Overwrite a 32-bit field with a boundary value.
                    let v: UInt32 = [0, 1, 0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0xffff, 64, 0x1_0000][Int.random(in: 0..<8, using: &rng)]
                    for k in 0..<4 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
                }
            }
            if attempt(b) { loaded += 1 }
        }
        return loaded
    }
}

@Suite("never trap on damaged policies")
struct NeverTrapTests {
    @Test("every prefix of every fixture throws or reads")
    func prefixes() throws {
        var thrown = 0
        for name in NeverTrap.fixtures {
            let bytes = try readBytes("\(fixtureDirectory)/\(name)")
            for n in 0..<bytes.count {
                if !NeverTrap.attempt(Array(bytes.prefix(n))) { thrown += 1 }
            }
            #expect(NeverTrap.attempt(bytes), "the whole \(name) reads")
        }
        #expect(thrown > 10_000)
    }

    @Test("a damaged Xen policy is an error naming the byte offset and the section, at every version and with MLS")
    func xenErrors() throws {
        for name in ["svirt-xen.24", "svirt-xen.30", "svirt-xen-mls.24", "svirt-xen-mls.30"] {
            let path = "\(fixtureDirectory)/../xen/policy/\(name)"
            let bytes = try readBytes(path)
            #expect(throws: Never.self) { try PolicyDatabase(bytes: bytes, source: path) }
            for cut in [9, 40, bytes.count / 3, bytes.count / 2, bytes.count - 5] {
                do {
                    _ = try PolicyDatabase(bytes: Array(bytes.prefix(cut)), source: name)
                    Issue.record("\(name) cut at \(cut) read")
                } catch let e as PolicyFormatError {
                    #expect(e.offset <= cut && e.description.contains("at byte \(e.offset)") && e.description.contains(name))
                }
            }
            // The version field: Xen policies are 24 or 30 only.
            var v = bytes
            v[16] = 33
            #expect { try PolicyDatabase(bytes: v) } throws: { e in
                let f = e as? PolicyFormatError
                return f?.code == .unsupportedVersion && f?.offset == 16 && "\(e)".contains("24 or 30")
            }
        }
    }

    @Test("100,000 random byte mutations throw or give a database that answers", arguments: [1, 2, 3, 4])
    func mutations(part: Int) throws {
        let loaded = try NeverTrap.mutate(seed: UInt64(0xBAD0_0000 + part), count: 25_000)
        // Some mutations hit bytes the reader does not judge (names, permission masks), so a share still loads.
        #expect(loaded > 0 && loaded < 25_000)
    }
}
