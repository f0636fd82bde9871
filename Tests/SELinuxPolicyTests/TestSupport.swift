import Foundation
import SELinux
@testable import SELinuxPolicy

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()   // SELinuxPolicyTests
    url.deleteLastPathComponent()   // Tests
    url.deleteLastPathComponent()
    return url.path
}()

let fixtureDirectory = repositoryRoot + "/Tests/Fixtures/policy"

func readBytes(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else {
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
    }
    return [UInt8](d)
}

func loadPolicy(_ path: String) throws -> PolicyDatabase {
    try PolicyDatabase(bytes: try readBytes(path), source: path)
}

let debianDefaultPolicy = "/etc/selinux/default/policy/policy.33"
let debianMLSPolicy = "/etc/selinux/mls/policy/policy.33"
let haveDebianPolicies = FileManager.default.fileExists(atPath: debianDefaultPolicy)
    && FileManager.default.fileExists(atPath: debianMLSPolicy)

/// A small seeded generator (SplitMix64), so every run draws the same queries.
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

/// Runs a program and waits; returns its exit status and stderr.
@discardableResult
func run(_ path: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let data = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "svirt-policy-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
