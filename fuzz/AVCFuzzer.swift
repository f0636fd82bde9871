// libFuzzer target for AVC lines from the audit log, the kernel log and `ausearch` output: the input is read as a
// log (every line, as `svirt explain` and `svirt explain --vm` read one) and each denial is explained by the
// built-in policy. Built by scripts/fuzz-all; never part of `swift build`. Every input must give a thrown error or
// a value, never a trap.
import SELinux
import SELinuxPolicy

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

let policy = try! BuiltInPolicy.load()

@_cdecl("LLVMFuzzerTestOneInput")
public func avcFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for line in text.textLines() {
        let record: AVCRecord?
        do { record = try AVCRecord.parse(String(line)) } catch let e as SELinuxError {
            _ = e.message
            continue
        } catch {
            fatalError("invariant: AVCRecord.parse threw something other than SELinuxError: \(error)")
        }
        guard let r = record else { continue }
        check(line.contains("avc:"), "a record from a line without 'avc:'")
        check(!r.tclass.isEmpty || line.contains("tclass="), "a record without tclass")
        _ = r.objectName
        let e = policy.explain(denial: r)
        _ = e.reason
    }
    return 0
}
