import SELinux
import SELinuxPolicy

/// The label of a device, or of one span of a range, and where it came from.
public struct XenDeviceLabel: Sendable, Hashable {
    /// The device, or the part of a range this label covers.
    public var device: XenDevice
    public var label: SecurityContext
    /// The statement that gives it (`pcidevicecon 0xc8 ...`), or the initial SID used when none does.
    public var source: String
}

/// The questions `svirt xen query` and `svirt xen matrix` ask: may one domain reach another through grants, event
/// channels, memory or Argo, and may a domain be given a device.
public enum XenAccessKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Map the other domain's grant references (grant map_read, map_write).
    case grant
    /// Set up an interdomain event channel with the other domain.
    case event
    /// Map the other domain's memory as a foreign page (mmu map_read, map_write).
    case memory
    /// Send Argo messages to the other domain (only when Xen runs Argo: built with CONFIG_ARGO, booted with argo=1).
    case argo

    public var title: String {
        switch self {
        case .grant: return "grant map"
        case .event: return "event channel"
        case .memory: return "foreign memory"
        case .argo: return "argo send"
        }
    }
}

extension XenPolicy {
    // MARK: Domain to domain

    /// May `mapper` map the grants `granter` offers (`flask_grant_mapref`)? Read-only maps need map_read only.
    public func grantMap(_ mapper: XenDomain, _ granter: XenDomain, readOnly: Bool = false) -> [XenCheck] {
        [domainCheck(step: "grant map", hook: "GNTTABOP_map_grant_ref", mapper, granter, class: "grant",
                     permissions: readOnly ? ["map_read"] : ["map_read", "map_write"])]
    }

    /// May `a` and `b` set up an event channel, `b` offering it and `a` binding it (`flask_evtchn_unbound`, then
    /// `flask_evtchn_interdomain`), and may `a` send on it? Each endpoint gets the label of
    /// `type_transition DOMAIN REMOTE:event`, its creator needs `create` on it, and it needs `bind` to the remote domain.
    public func eventChannel(_ a: XenDomain, _ b: XenDomain) -> [XenCheck] {
        var out: [XenCheck] = []
        let (tBA, noteBA) = targetSID(b, a)
        let (tAB, noteAB) = targetSID(a, b)
        guard let chanB = channelLabel(creator: b.label, remote: tBA)?.label else {
            return [check(step: "event channel", hook: "EVTCHNOP_alloc_unbound", subject: "\(b.name) → \(a.name)",
                          source: b.label, target: tBA, targetNote: noteBA, class: "event", permissions: ["create"])]
        }
        out.append(check(step: "offer channel: create", hook: "EVTCHNOP_alloc_unbound", subject: "\(b.name) → its channel",
                         source: b.label, target: chanB, targetNote: "the channel's label", class: "event",
                         permissions: ["create"]))
        out.append(check(step: "offer channel: bind", hook: "EVTCHNOP_alloc_unbound", subject: "\(b.name)'s channel → \(a.name)",
                         source: chanB, target: tBA, targetNote: noteBA, class: "event", permissions: ["bind"]))
        guard let chanA = channelLabel(creator: a.label, remote: tAB)?.label else { return out }
        out.append(check(step: "bind channel: create", hook: "EVTCHNOP_bind_interdomain", subject: "\(a.name) → its channel",
                         source: a.label, target: chanA, targetNote: "the channel's label", class: "event",
                         permissions: ["create"]))
        out.append(check(step: "bind channel: bind", hook: "EVTCHNOP_bind_interdomain", subject: "\(a.name)'s channel → \(b.name)",
                         source: chanA, target: tAB, targetNote: noteAB, class: "event", permissions: ["bind"]))
        out.append(check(step: "bind channel: recheck", hook: "EVTCHNOP_bind_interdomain",
                         subject: "\(b.name)'s channel → \(a.name)", source: chanB, target: tBA, targetNote: noteBA,
                         class: "event", permissions: ["bind"]))
        out.append(check(step: "send", hook: "EVTCHNOP_send", subject: "\(a.name) → its channel", source: a.label,
                         target: chanA, targetNote: "the channel's label", class: "event", permissions: ["send"]))
        return out
    }

    /// May `mapper` map `owner`'s memory (`XENMEM_add_to_physmap` with a foreign domain, PV `mmu_update`)?
    public func foreignMemory(_ mapper: XenDomain, _ owner: XenDomain) -> [XenCheck] {
        [domainCheck(step: "map memory", hook: "XENMAPSPACE_gmfn_foreign / mmu_update", mapper, owner, class: "mmu",
                     permissions: ["map_read", "map_write"])]
    }

    /// May `sender` send Argo messages to `receiver` (`flask_argo_send`)?
    public func argoSend(_ sender: XenDomain, _ receiver: XenDomain) -> [XenCheck] {
        [domainCheck(step: "argo send", hook: "XEN_ARGO_OP_sendv", sender, receiver, class: "argo", permissions: ["send"])]
    }

    /// The checks of one kind of access from `a` to `b`.
    public func access(_ kind: XenAccessKind, _ a: XenDomain, _ b: XenDomain) -> [XenCheck] {
        switch kind {
        case .grant: return grantMap(a, b)
        case .event: return eventChannel(a, b)
        case .memory: return foreignMemory(a, b)
        case .argo: return argoSend(a, b)
        }
    }

    // MARK: Devices

    /// The labels of a device: the matching object context or, where none matches, the initial SID Xen falls back to
    /// (irq, ioport, iomem, device). A range gets one label per span, as `security_iterate_*_sids` walks it.
    public func deviceLabels(_ device: XenDevice) throws -> [XenDeviceLabel] {
        let contexts = database.objectContexts
        func fallback(_ sid: String, _ d: XenDevice) throws -> XenDeviceLabel {
            XenDeviceLabel(device: d, label: try initialContext(sid), source: "initial SID \(sid) (no object context matches)")
        }
        switch device {
        case .pirq(let n):
            for o in contexts { if case .xenPIRQ(n, _) = o { return [XenDeviceLabel(device: device, label: o.context, source: o.statement)] } }
            return [try fallback("irq", device)]
        case .pci(let a):
            for o in contexts {
                if case .xenPCIDevice(let v, _) = o, UInt64(truncatingIfNeeded: v) == a.sbdf {
                    return [XenDeviceLabel(device: device, label: o.context, source: o.statement)]
                }
            }
            return [try fallback("device", device)]
        case .deviceTree(let p):
            for o in contexts { if case .xenDeviceTree(p, _) = o { return [XenDeviceLabel(device: device, label: o.context, source: o.statement)] } }
            return [try fallback("device", device)]
        case .ioports(let lo, let hi):
            var spans: [(UInt64, UInt64, ObjectContext)] = []
            for o in contexts { if case .xenIOPort(let l, let h, _) = o { spans.append((UInt64(max(0, l)), UInt64(max(0, h)), o)) } }
            return try walk(lo, hi, spans, sid: "ioport") { .ioports(low: $0, high: $1) }
        case .iomem(let lo, let hi):
            var spans: [(UInt64, UInt64, ObjectContext)] = []
            for o in contexts { if case .xenIOMemory(let l, let h, _) = o { spans.append((l, h, o)) } }
            return try walk(lo, hi, spans, sid: "iomem") { .iomem(low: $0, high: $1) }
        }
    }

    /// Walks `lo...hi` over sorted spans: each overlap gets the span's label, each gap the initial SID.
    private func walk(_ lo: UInt64, _ hi: UInt64, _ spans: [(UInt64, UInt64, ObjectContext)], sid: String,
                      make: (UInt64, UInt64) -> XenDevice) throws -> [XenDeviceLabel] {
        var out: [XenDeviceLabel] = []
        var start = lo
        for (l, h, o) in spans.sorted(by: { $0.0 < $1.0 }) where h >= start && l <= hi {
            if start < l {
                out.append(XenDeviceLabel(device: make(start, l - 1), label: try initialContext(sid),
                                          source: "initial SID \(sid) (no object context matches)"))
                start = l
            }
            out.append(XenDeviceLabel(device: make(start, min(hi, h)), label: o.context, source: o.statement))
            if h >= hi { return out }
            start = h + 1
        }
        out.append(XenDeviceLabel(device: make(start, hi), label: try initialContext(sid),
                                  source: "initial SID \(sid) (no object context matches)"))
        return out
    }

    /// May `toolstack` give `device` to `domain`, and may the domain use it? The checks of `assign_device`
    /// (PCI, device tree), `map_domain_pirq`/`map_domain_irq` (IRQs) and `iomem_permission`/`ioport_permission`:
    /// the toolstack needs `resource add` on the domain and `add_*` on the device, the domain needs the IOMMU's use
    /// permission on the device.
    public func deviceAssignment(_ device: XenDevice, to domain: XenDomain, by toolstack: XenDomain,
                                 iommu: XenIOMMU = .intremap) throws -> [XenCheck] {
        let (addPerm, hook): (String, String)
        switch device {
        case .pci: (addPerm, hook) = ("add_device", "XEN_DOMCTL_assign_device")
        case .deviceTree: (addPerm, hook) = ("add_device", "XEN_DOMCTL_assign_device (device tree)")
        case .pirq: (addPerm, hook) = ("add_irq", "PHYSDEVOP_map_pirq")
        case .ioports: (addPerm, hook) = ("add_ioport", "XEN_DOMCTL_ioport_permission")
        case .iomem: (addPerm, hook) = ("add_iomem", "XEN_DOMCTL_iomem_permission")
        }
        var out = [domainCheck(step: "give \(device)", hook: hook, toolstack, domain, class: "resource", permissions: ["add"])]
        for l in try deviceLabels(device) {
            out.append(check(step: "give \(l.device)", hook: hook, subject: "\(toolstack.name) → \(l.device)",
                             source: toolstack.label, target: l.label, targetNote: l.source, class: "resource",
                             permissions: [addPerm]))
            out.append(check(step: "use \(l.device)", hook: hook, subject: "\(domain.name) → \(l.device)",
                             source: domain.label, target: l.label, targetNote: l.source, class: "resource",
                             permissions: [iommu.usePermission]))
        }
        return out
    }
}
