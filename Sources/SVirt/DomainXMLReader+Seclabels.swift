import SELinux

/// `<seclabel>` rules (libvirt's domain_conf, section 12 of the reference), in svirt's words.
extension DomainXMLReader {
    func readDomainSeclabels(_ elements: [XMLTree.Element]) throws -> [DomainSeclabel] {
        var out: [DomainSeclabel] = []
        for e in elements {
            let s = try readDomainSeclabel(e, single: elements.count == 1)
            if let m = s.model, out.contains(where: { $0.model == m }) {
                throw fail("seclabel", "model='\(m)' is given twice; write one <seclabel> per model")
            }
            out.append(s)
        }
        return out
    }

    func readDomainSeclabel(_ e: XMLTree.Element, single: Bool) throws -> DomainSeclabel {
        var model = e[attribute: "model"]
        if let m = model, m.utf8.count > DomainSeclabel.maxModelLength {
            throw fail("seclabel", "model is longer than \(DomainSeclabel.maxModelLength) bytes")
        }
        let typeText = e[attribute: "type"] ?? "dynamic"
        guard let type = DomainSeclabel.LabelType(rawValue: typeText) else {
            throw fail("seclabel", "type='\(typeText)' is not a label type; use dynamic, static or none")
        }
        var relabel = type == .dynamic
        if let r = e[attribute: "relabel"] {
            guard r == "yes" || r == "no" else {
                throw fail("seclabel", "relabel='\(r)' must be 'yes' or 'no'")
            }
            relabel = r == "yes"
        }

        if model == "none" {
            if mode == .live, type != .none {
                throw fail("seclabel", "model='none' needs type='none' (found type='\(typeText)')")
            }
            // model none asks for no labelling at all: nothing else is read.
            return DomainSeclabel(model: "none", type: .none, relabel: false)
        }

        if type == .dynamic, !relabel {
            throw fail("seclabel", "type='dynamic' with relabel='no' cannot work: a dynamic label is new at every start, "
                       + "so the VM's resources must be relabelled; use relabel='yes' or a static label")
        }
        if type == .none, relabel {
            throw fail("seclabel", "type='none' with relabel='yes' cannot work: there is no label to relabel with; "
                       + "drop relabel='yes' or use type='dynamic'")
        }

        func text(_ name: String) throws -> String? {
            let found = e.elements(named: name)
            if found.count > 1 { throw fail("seclabel", "<\(name)> is given \(found.count) times") }
            guard let t = found.first?.trimmedText else { return nil }
            guard !t.isEmpty else { throw fail("seclabel", "<\(name)> is empty") }
            guard t.utf8.count <= DomainSeclabel.maxLabelLength else {
                throw fail("seclabel", "<\(name)> is longer than \(DomainSeclabel.maxLabelLength) bytes")
            }
            return t
        }
        let label = try text("label")
        let imageLabel = try text("imagelabel")
        let baseLabel = try text("baselabel")

        switch type {
        case .static:
            guard label != nil else {
                throw fail("seclabel", "type='static' needs a <label> with the process context, e.g. "
                           + "<label>system_u:system_r:svirt_t:s0:c1,c2</label>")
            }
        case .dynamic:
            if mode == .inactive, label != nil {
                throw fail("seclabel", "type='dynamic' with a <label> is only accepted in live XML (--live)")
            }
            // A DAC label is the guest user, which svirt keeps in its own record: live XML may leave it out.
            if mode == .live, label == nil, model != "dac" {
                throw fail("seclabel", "live XML of a dynamic label needs the <label> the VM runs with")
            }
        case .none:
            if label != nil || imageLabel != nil {
                throw fail("seclabel", "type='none' takes no <label> or <imagelabel>")
            }
        }
        if imageLabel != nil, mode == .inactive {
            throw fail("seclabel", "<imagelabel> is only accepted in live XML (--live); svirt derives it from the label")
        }
        if mode == .live, relabel, type != .none, imageLabel == nil, model != "dac" {
            throw fail("seclabel", "live XML with relabel='yes' needs the <imagelabel> the VM's resources carry")
        }
        if baseLabel != nil, type != .dynamic {
            throw fail("seclabel", "<baselabel> is only used with type='dynamic'")
        }

        if model == nil {
            guard single else {
                throw fail("seclabel", "with several <seclabel> elements each needs a model ('selinux' or 'dac')")
            }
            guard type == .none || (type == .dynamic && baseLabel == nil && mode == .inactive) else {
                throw fail("seclabel", "the model is missing; write model='selinux'")
            }
            model = "selinux"
        }

        if model == "selinux" {
            for (name, value) in [("label", label), ("imagelabel", imageLabel), ("baselabel", baseLabel)] {
                guard let value else { continue }
                do {
                    _ = try SecurityContext(parsing: value)
                } catch let err as SELinuxError {
                    throw fail("seclabel <\(name)>", "'\(value)' is not a valid security context: \(err.message)")
                }
            }
        }
        return DomainSeclabel(model: model, type: type, relabel: relabel, label: label, imageLabel: imageLabel,
                              baseLabel: baseLabel)
    }

    func readDeviceSeclabels(_ elements: [XMLTree.Element], display: String) throws -> [DeviceSeclabel] {
        var out: [DeviceSeclabel] = []
        for e in elements {
            guard let model = e[attribute: "model"] else {
                throw fail("\(display) <seclabel>", "the model is missing; write model='selinux' (a device seclabel "
                           + "without a model would be ignored, so svirt refuses it)")
            }
            guard !out.contains(where: { $0.model == model }) else {
                throw fail("\(display) <seclabel>", "model='\(model)' is given twice")
            }
            var relabel = true
            if let r = e[attribute: "relabel"] {
                guard r == "yes" || r == "no" else {
                    throw fail("\(display) <seclabel>", "relabel='\(r)' must be 'yes' or 'no'")
                }
                relabel = r == "yes"
            }
            let labelSkip = mode == .live && e[attribute: "labelskip"] == "yes"
            let label = e.element(named: "label")?.trimmedText
            if label != nil, !relabel {
                throw fail("\(display) <seclabel>", "a <label> with relabel='no' contradicts itself; drop the label, "
                           + "or use relabel='yes' to set it")
            }
            if let label {
                guard label.utf8.count <= DomainSeclabel.maxLabelLength else {
                    throw fail("\(display) <seclabel>", "<label> is longer than \(DomainSeclabel.maxLabelLength) bytes")
                }
                if model == "selinux" {
                    do {
                        _ = try SecurityContext(parsing: label)
                    } catch let err as SELinuxError {
                        throw fail("\(display) <seclabel> <label>", "'\(label)' is not a valid security context: \(err.message)")
                    }
                }
            }
            out.append(DeviceSeclabel(model: model, relabel: relabel, label: label, labelSkip: labelSkip))
        }
        return out
    }
}
