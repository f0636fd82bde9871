import Foundation
@_exported import SVirtTestSupport
import SELinux
import SELinuxPolicy
@testable import SVirtXen


let xenFixtures = repositoryRoot + "/Tests/Fixtures/xen"
let xenPolicyDirectory = xenFixtures + "/policy"
let xenConfigDirectory = xenFixtures + "/cfg"

/// The compiled fixture policies: name, and whether it is MLS.
let xenPolicyFixtures: [(name: String, mls: Bool)] = [
    ("svirt-xen.24", false), ("svirt-xen.30", false), ("svirt-xen-mls.24", true), ("svirt-xen-mls.30", true),
]

/// The four label cases.
let labelCases = ["seclabel-only", "init-seclabel", "no-label", "stubdom"]


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

func temporaryDirectory() throws -> String { try temporaryDirectory(prefix: "svirt-xen-tests") }

