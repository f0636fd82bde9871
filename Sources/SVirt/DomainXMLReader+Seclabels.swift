import SELinux

/// `<seclabel>` rules (libvirt's domain_conf, section 12 of the reference), in svirt's words.
extension DomainXMLReader {
    /// libvirt drops the `<label>` and `<imagelabel>` of a dynamic (or untyped) `<seclabel>` when it defines a
    /// domain: a dynamic label is made at every start. svirt does the same, says so, and keeps them out of the
    /// definition.
    mutating func dropDynamicLabels(_ root: inout XMLTree.Element) {
        for i in root.children.indices {
            guard case .element(var e) = root.children[i], e.name == "seclabel",
                  (e[attribute: "type"] ?? "dynamic") == "dynamic" else { continue }
            let dropped = e.elements.filter { $0.name == "label" || $0.name == "imagelabel" }
            guard !dropped.isEmpty else { continue }
            e.children.removeAll { n in
                if case .element(let c) = n { return c.name == "label" || c.name == "imagelabel" }
                return false
            }
            root.children[i] = .element(e)
            let what = dropped.map { "<\($0.name)>\($0.trimmedText)</\($0.name)>" }.joined(separator: " ")
            warnings.append("<seclabel type='dynamic'\(e[attribute: "model"].map { " model='\($0)'" } ?? "")>: \(what) is "
                            + "dropped, as libvirt drops it at define: a dynamic label is generated at every start; use "
                            + "type='static' to keep a label")
        }
    }

    mutating func readDomainSeclabels(_ elements: [XMLTree.Element]) throws -> [DomainSeclabel] {
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

    mutating func readDomainSeclabel(_ e: XMLTree.Element, single: Bool) throws -> DomainSeclabel {
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
        var baseLabel = try text("baselabel")
        // libvirt takes only the type of a <baselabel> (it builds the rest), so a malformed level there does not
        // stop it: svirt uses the user, role and type, and says so.
        if let b = baseLabel, model != "dac", (try? SecurityContext(parsing: b)) == nil {
            let fields = b.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            if fields.count == 4, let fixed = try? SecurityContext(parsing: fields[0...2].joined(separator: ":") + ":s0") {
                warnings.append("<seclabel> <baselabel>\(b)</baselabel>: '\(fields[3])' is not a level; svirt uses the "
                                + "type \(fixed.type) (as libvirt does) with the level it generates")
                baseLabel = fixed.description
            }
        }

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
            // relabel='yes' on a device asks for a label of its own, so it must name one (libvirt refuses it too).
            if mode == .inactive, e[attribute: "relabel"] == "yes", label == nil, model == "selinux" {
                throw fail("\(display) <seclabel>", "relabel='yes' needs the <label> to give this device; add "
                           + "<label>CONTEXT</label>, or drop relabel='yes' to use the VM's image label")
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
