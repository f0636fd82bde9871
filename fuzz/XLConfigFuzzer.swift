// libFuzzer target for xl.cfg: the xl.cfg parser, the domain configuration read from it, the offline simulation of
// `xl create` under the Xen fixture policy, and the rewrite svirt makes when it writes a label in. Built by
// scripts/fuzz-all; never part of `swift build`. Every input must give a thrown error or a value, never a trap.
import Foundation
import SELinux
import SELinuxPolicy
import SVirtXen

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

let xenPolicy: XenPolicy = {
    let path = "Tests/Fixtures/xen/policy/svirt-xen-mls.30"
    guard let data = FileManager.default.contents(atPath: path) else { fatalError("run from the repository root: no \(path)") }
    return try! XenPolicy(PolicyDatabase(bytes: Array(data)))
}()
let label = "system_u:system_r:domU_t:s0:c1,c2"

@_cdecl("LLVMFuzzerTestOneInput")
public func xlConfigFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let config = try? XLConfig(parsing: text, source: "fuzz.cfg") else { return 0 }
    for s in config.statements {
        _ = try? config.string(s.name)
        _ = try? config.list(s.name)
        _ = try? config.integer(s.name)
        _ = config.repeatedLines(s.name)
        check(s.valueRange.lowerBound >= 0 && s.valueRange.upperBound <= text.utf8.count, "value range outside the text")
    }
    // Writing a label in, as `svirt xen label` does: the result reads back with the label as its value.
    for key in ["seclabel", "name"] {
        guard let rewritten = try? config.replacing(key, with: XLConfig.quoted(label)) else { continue }
        let back: XLConfig
        do { back = try XLConfig(parsing: rewritten, source: "fuzz.cfg") } catch {
            fatalError("invariant: '\(key)' written into a file that read does not read back: \(error)\n\(rewritten)")
        }
        check((try? back.string(key)) == label, "'\(key)' reads back as \(String(describing: try? back.string(key)))\n\(rewritten)")
    }
    // A string quoted by svirt reads back as itself.
    if let first = config.statements.first, case .string(let s) = first.value, !s.contains("\0") {
        let q = try? XLConfig(parsing: "k = \(XLConfig.quoted(s))\n")
        check((try? q?.string("k")) == s, "quoted(\(s.debugDescription)) does not read back")
    }
    guard let domain = try? XenDomainConfiguration(config) else { return 0 }
    _ = domain.createLabel
    _ = domain.execLabel
    _ = domain.deviceModelCreateLabel
    if let build = try? XenDomainBuild(domain, policy: xenPolicy) {
        _ = build.allowed
        _ = build.checks.count
    }
    return 0
}
