// libFuzzer target for svirt.conf. Built by scripts/fuzz-all; never part of `swift build`. Every input must give
// a thrown error or a value, never a trap.
import SELinux
import SVirt

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func configFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let c = try SVirtConfiguration.parse(text, path: "svirt.conf")
        check(c.coolDownSeconds >= 0 && c.coolDownSeconds.isFinite, "cooldown \(c.coolDownSeconds)")
        if let t = c.registryTimeoutSeconds { check(t >= 1 && t <= 3600, "registry timeout \(t)") }
        if let l = c.categories { _ = try? CategoryPool(level: l, excluding: c.reservedCategories) }
        check(c.emulators.allSatisfy { $0.hasPrefix("/") }, "an emulator path that is not absolute")
    } catch let e as SVirtError {
        check(e.message.hasPrefix("svirt.conf:"), "an error that does not name the file and line: \(e.message)")
    } catch {
        fatalError("invariant: SVirtConfiguration.parse threw something other than SVirtError: \(error)")
    }
    for piece in text.split(separator: "\n").prefix(4) { _ = try? SVirtConfiguration.parseCategories(String(piece)) }
    return 0
}
