import Foundation
import SELinux
import SELinuxPolicy
@testable import SVirtXen

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()   // SVirtXenTests
    url.deleteLastPathComponent()   // Tests
    url.deleteLastPathComponent()
    return url.path
}()

let xenFixtures = repositoryRoot + "/Tests/Fixtures/xen"
let xenPolicyDirectory = xenFixtures + "/policy"
let xenConfigDirectory = xenFixtures + "/cfg"

/// The compiled fixture policies: name, and whether it is MLS.
let xenPolicyFixtures: [(name: String, mls: Bool)] = [
    ("svirt-xen.24", false), ("svirt-xen.30", false), ("svirt-xen-mls.24", true), ("svirt-xen-mls.30", true),
]

/// The four label cases.
let labelCases = ["seclabel-only", "init-seclabel", "no-label", "stubdom"]

func readBytes(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else {
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
    }
    return [UInt8](d)
}

func readText(_ path: String) throws -> String { String(decoding: try readBytes(path), as: UTF8.self) }

func loadXenPolicy(_ name: String) throws -> XenPolicy {
    let path = xenPolicyDirectory + "/" + name
    return try XenPolicy(try PolicyDatabase(bytes: try readBytes(path), source: path))
}

func loadConfiguration(_ name: String) throws -> XenDomainConfiguration {
    let path = xenConfigDirectory + "/\(name).cfg"
    return try XenDomainConfiguration(parsing: try readText(path), source: "\(name).cfg")
}

/// A configuration parsed from text, for tests that write their own.
func configuration(_ text: String, source: String = "test.cfg") throws -> XenDomainConfiguration {
    try XenDomainConfiguration(parsing: text, source: source)
}

/// Adds a level to a configuration's label lines (for the MLS policies): `'user:role:type'` → `'user:role:type:LEVEL'`.
func withLevel(_ text: String, _ level: String) -> String {
    var out: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var l = String(line)
        if l.contains("seclabel"), let q = l.lastIndex(where: { $0 == "'" || $0 == "\"" }) {
            l.insert(contentsOf: ":" + level, at: q)
        }
        out.append(l)
    }
    return out.joined(separator: "\n")
}

let haveCheckpolicy = FileManager.default.isExecutableFile(atPath: "/usr/bin/checkpolicy")

func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "svirt-xen-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A small seeded generator (SplitMix64), so every run draws the same values.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
