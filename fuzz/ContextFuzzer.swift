// libFuzzer target for context text (SecurityContext, SecurityLevel, SecurityRange) and the `<seclabel>` reader
// (a `<seclabel>` element in a minimal domain, and `--set-seclabel` text). Built by scripts/fuzz-all; never part
// of `swift build`. Every input must give a thrown error or a value, never a trap; a value re-serialises and
// re-parses to itself.
import SELinux
import SVirt

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

let domainHead = "<domain type='kvm'><name>f</name><uuid>0b6c1d2e-8a43-4f6c-9a0e-1b2c3d4e5f05</uuid>"
    + "<memory unit='MiB'>16</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>"
    + "<source file='/var/lib/libvirt/images/f.img'>"
let domainMiddle = "</source><target dev='vda' bus='virtio'/></disk></devices>"
let domainTail = "</domain>"

@_cdecl("LLVMFuzzerTestOneInput")
public func contextFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let limits = [ParseLimits.default, ParseLimits(sensitivities: 1, categories: 1024),
                  ParseLimits(sensitivities: 16, categories: CategorySet.absoluteLimit)]
    for l in limits {
        if let c = try? SecurityContext(parsing: text, limits: l) {
            let back = try? SecurityContext(parsing: c.description, limits: l)
            check(back == c, "context '\(c)' read from '\(text)' reads back as \(back.map(\.description) ?? "an error")")
            if let r = c.range { check(r.high.dominates(r.low), "range \(r) high does not dominate low") }
        }
        if let v = try? SecurityLevel(parsing: text, limits: l) {
            let back = try? SecurityLevel(parsing: v.description, limits: l)
            check(back == v, "level '\(v)' read from '\(text)' reads back as \(back.map(\.description) ?? "an error")")
            check(v.dominates(v) && v.relation(to: v) == v.relation(to: v), "level \(v) does not dominate itself")
        }
        if let r = try? SecurityRange(parsing: text, limits: l) {
            let back = try? SecurityRange(parsing: r.description, limits: l)
            check(back == r, "range '\(r)' read from '\(text)' reads back as \(back.map(\.description) ?? "an error")")
            check(r.contains(r.low) && r.contains(r.high) && r.contains(r), "range \(r) does not contain its ends")
        }
    }
    for relabel in [nil, true, false] as [Bool?] {
        if let s = try? DomainDefinition.seclabel(spec: text, relabel: relabel) {
            _ = s.selinuxLabel
            _ = s.selinuxBaseLabel
        }
    }
    // The input as the domain's <seclabel> element(s) (in both modes), then as a disk source's.
    let split = text.firstIndex(of: "\u{1}")
    let domainPart = split.map { String(text[..<$0]) } ?? text
    let devicePart = split.map { String(text[text.index(after: $0)...]) } ?? ""
    let xml = domainHead + devicePart + domainMiddle + domainPart + domainTail
    for mode in [DomainDefinition.ParseMode.inactive, .live] {
        guard let d = try? DomainDefinition(xml: xml, mode: mode, source: "fuzz") else { continue }
        _ = d.selinuxSeclabel.selinuxLabel
        _ = d.selinuxSeclabel.selinuxImageLabel
        for disk in d.disks { _ = disk.seclabels.forModel("selinux")?.selinuxLabel }
        let back = try? DomainDefinition(xml: d.xmlText(), mode: mode, source: "fuzz")
        check(back?.seclabels == d.seclabels, "seclabels \(d.seclabels) do not read back: \(back?.seclabels as Any)")
    }
    return 0
}
