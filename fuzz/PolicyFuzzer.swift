// libFuzzer target for the binary policy reader and the decision engine. Built by fuzz/run.sh with
// swiftc -sanitize=fuzzer,address; never part of `swift build`. Every input must give a thrown error or a
// database that answers decisions, explanations and labels without a trap.
import SELinux

@_cdecl("LLVMFuzzerTestOneInput")
public func policyFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let p = try? PolicyDatabase(bytes: bytes) else { return 0 }
    _ = p.statistics
    _ = p.constraints
    _ = p.rules.count
    var contexts: [PolicyContext] = []
    for case .initialSID(_, _, let c) in p.objectContexts.prefix(4) {
        if let r = try? p.resolve(c) { contexts.append(r) }
    }
    let cache = AccessVectorCache(policy: p, capacity: 256)
    for s in contexts {
        for t in contexts {
            for c in p.classes.prefix(3) {
                _ = p.check(source: s, target: t, class: c.name, permissions: c.permissions)
                _ = try? p.computeCreate(source: s, target: t, class: c.name, objectName: "x")
                _ = cache.accessVectors(source: cache.sid(for: s), target: cache.sid(for: t), classValue: c.value)
            }
        }
    }
    if let b = p.booleans.first { _ = try? p.settingBooleans([b.name: !b.defaultValue]) }
    return 0
}
