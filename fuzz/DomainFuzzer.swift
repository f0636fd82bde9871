// libFuzzer target for the domain XML reader and everything pure that `svirt define` and the label commands do
// with what it reads: the definition and its seclabels, the label generated at a fixed level, the label plan on a
// host with nothing on it, the policy's verdict on the labels, the XML written back, the seclabel edit and the
// clone plan. Built by scripts/fuzz-all; never part of `swift build`. Every input must give a thrown error or a
// value, never a trap.
import SELinux
import SELinuxPolicy
import SVirt

/// A host with nothing on it: no image, no device, no file.
struct EmptyHost: HostInspector {
    func header(of path: String, count: Int) throws -> [UInt8] { throw SVirtError(.notFound, "\(path): no such file") }
    func exists(_ path: String) -> Bool { false }
    func iommuGroup(of address: HostDevice.PCIAddress) throws -> Int { throw SVirtError(.notFound, "no device \(address)") }
    func pciSysfsFiles(of address: HostDevice.PCIAddress) throws -> [String] { throw SVirtError(.notFound, "no device \(address)") }
    func tpmCancelPath(forDevice devicePath: String) -> String { "/dev/null" }
}

let contexts = ContextsConfiguration.builtIn(reason: "fuzz")
let manager = try! SecurityContext(parsing: "system_u:system_r:virtd_t:s0-s0:c0.c1023")
let generator = LabelGenerator(contexts: contexts, manager: manager,
                               pool: try! CategoryPool(level: SecurityLevel(parsing: "s0:c0.c1023")))
let fixedLevel = try! SecurityLevel(parsing: "s0:c585,c813")
let planner = LabelPlanner(contexts: contexts, host: EmptyHost())
let policy = try! BuiltInPolicy.load()

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func domainFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // The first byte picks the parse mode; the rest is the XML (as `svirt define` reads it: UTF-8 or refused).
    let live = data[0] & 1 == 1
    guard let text = String(validating: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self) else { return 0 }
    guard let d = try? DomainDefinition(xml: text, mode: live ? .live : .inactive, source: "fuzz") else { return 0 }
    _ = d.selinuxSeclabel
    _ = d.seclabelProblems(in: policy)

    // What define stores, read back: it must read again, to the same domain.
    let stored = d.xmlText()
    let again: DomainDefinition
    do { again = try DomainDefinition(xml: stored, mode: d.mode, source: "fuzz") } catch {
        fatalError("invariant: the XML svirt writes for a domain it read does not read back: \(error)\n\(stored)")
    }
    check(again.name == d.name && again.uuid == d.uuid, "name/uuid changed on the way back")
    check(again.disks == d.disks, "disks changed on the way back")
    check(again.seclabels == d.seclabels, "seclabels changed on the way back: \(d.seclabels) -> \(again.seclabels)")
    check(again.xmlText() == stored, "the written XML is not a fixed point")

    // The label and the plan, at a fixed level.
    if let result = try? generator.generateLabel(for: d, level: fixedLevel) {
        _ = try? planner.plan(for: d, label: result.label)
        _ = d.liveSeclabels(with: result.label)
        _ = d.xmlText(seclabels: d.liveSeclabels(with: result.label))
    }
    _ = try? generator.liveLabel(of: d)

    // `svirt edit --set-seclabel dynamic` and `svirt clone`.
    if let s = try? DomainDefinition.seclabel(spec: "dynamic", relabel: nil) {
        _ = try? d.settingSelinuxSeclabel(s)
    }
    _ = try? DomainClonePlan.plan(d, newName: d.name == "fuzz-clone" ? "fuzz-clone2" : "fuzz-clone", force: true,
                                  exists: { _ in false })
    return 0
}
