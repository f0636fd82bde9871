extension DomainDefinition {
    /// The definition as XML, as it was read (unknown elements and attributes included).
    ///
    /// With `seclabels`, the domain-level `<seclabel>` elements are replaced by these, formatted as libvirt
    /// formats them: this is how `dumpxml` shows a running VM with its live labels. The new elements take the
    /// place of the first old one, or go last in `<domain>`.
    public func xmlText(seclabels: [DomainSeclabel]? = nil) -> String {
        guard let seclabels else { return xml.xmlText }
        var tree = xml
        tree.root = Self.replacingSeclabels(in: tree.root, with: seclabels)
        return tree.xmlText
    }

    /// The live seclabels of a VM that runs with `label`: the selinux one from the generated label, and the
    /// others (dac) as defined.
    public func liveSeclabels(with label: SecurityLabel) -> [DomainSeclabel] {
        var out = seclabels.filter { $0.model != "selinux" }
        out.insert(label.seclabel, at: 0)
        return out
    }

    /// One `<seclabel>` element, formatted as libvirt does (section 12.3 of the reference).
    public static func seclabelElement(_ s: DomainSeclabel) -> XMLTree.Element {
        var e = XMLTree.Element(name: "seclabel", attributes: [XMLTree.Attribute(name: "type", value: s.type.rawValue)])
        if let m = s.model { e.attributes.append(XMLTree.Attribute(name: "model", value: m)) }
        if s.type == .none { return e }
        e.attributes.append(XMLTree.Attribute(name: "relabel", value: s.relabel ? "yes" : "no"))
        func child(_ name: String, _ text: String?) {
            guard let text else { return }
            e.children.append(.element(XMLTree.Element(name: name, children: [.text(text)])))
        }
        child("label", s.label)
        if s.relabel { child("imagelabel", s.imageLabel) }
        if s.type == .dynamic { child("baselabel", s.baseLabel) }
        return e
    }

    static func replacingSeclabels(in root: XMLTree.Element, with seclabels: [DomainSeclabel]) -> XMLTree.Element {
        var root = root
        func isSeclabel(_ n: XMLTree.Node) -> Bool {
            if case .element(let e) = n { return e.name == "seclabel" } else { return false }
        }
        func isBlank(_ n: XMLTree.Node) -> Bool {
            if case .text(let t) = n { return t.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" } }
            return false
        }
        // The indentation of the domain's children, taken from the text before the first child element.
        var indent = "\n  "
        if let first = root.children.firstIndex(where: { if case .element = $0 { return true } else { return false } }),
           first > 0, case .text(let t) = root.children[first - 1], isBlank(root.children[first - 1]) {
            indent = t
        }
        var insertAt: Int?
        var kept: [XMLTree.Node] = []
        for n in root.children {
            if isSeclabel(n) {
                // The indentation in front of a removed element goes with it.
                if let last = kept.last, isBlank(last) { kept.removeLast() }
                if insertAt == nil { insertAt = kept.count }
                continue
            }
            kept.append(n)
        }
        var added: [XMLTree.Node] = []
        for s in seclabels {
            added.append(.text(indent))
            added.append(.element(seclabelElement(s)))
        }
        if let at = insertAt {
            kept.insert(contentsOf: added, at: min(at, kept.count))
        } else {
            // Before the closing tag's indentation, if there is one.
            let at = kept.last.map(isBlank) == true ? kept.count - 1 : kept.count
            kept.insert(contentsOf: added, at: at)
        }
        root.children = kept
        return root
    }
}
