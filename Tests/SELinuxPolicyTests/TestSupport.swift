import Foundation
@_exported import SVirtTestSupport
import SELinux
@testable import SELinuxPolicy


let fixtureDirectory = repositoryRoot + "/Tests/Fixtures/policy"


func loadPolicy(_ path: String) throws -> PolicyDatabase {
    try PolicyDatabase(bytes: try readBytes(path), source: path)
}

let debianDefaultPolicy = "/etc/selinux/default/policy/policy.33"
let debianMLSPolicy = "/etc/selinux/mls/policy/policy.33"
let haveDebianPolicies = FileManager.default.fileExists(atPath: debianDefaultPolicy)
    && FileManager.default.fileExists(atPath: debianMLSPolicy)


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

func temporaryDirectory() throws -> String { try temporaryDirectory(prefix: "svirt-policy-tests") }
