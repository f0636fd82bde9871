import SVirt

/// The secrets domain XML may hold, which libvirt's `virsh dumpxml` leaves out unless asked with `--security-info`
/// (`VIR_DOMAIN_XML_SECURE`): the `passwd` attribute of `<graphics>` (VNC, SPICE, RDP), and the `<cookies>` of a
/// network disk's `<source>`. The console takes them out of what it shows a caller that holds neither the token nor
/// a session.
enum DomainXMLSecrets {
    /// `xml` without its secrets; everything else comes back as it was read. Nil when the XML cannot be read, so
    /// that nothing is shown whose secrets could not be found (the caller says so instead).
    static func redacted(_ xml: String) -> String? {
        if xml.isEmpty { return xml }
        guard var tree = try? XMLTree(parsing: xml, what: "domain XML") else { return nil }
        redact(&tree.root)
        return tree.xmlText
    }

    /// Removes `passwd` from every element (libvirt's schema has it on `<graphics>` only) and `<cookies>` from every
    /// `<source>`. The reader bounds the depth, so the recursion is bounded too.
    static func redact(_ element: inout XMLTree.Element) {
        element.setAttribute("passwd", nil)
        let isSource = element.name == "source"
        element.children = element.children.compactMap { node in
            guard case .element(var child) = node else { return node }
            if isSource && child.name == "cookies" { return nil }
            redact(&child)
            return .element(child)
        }
    }

    /// What the pages say where the XML could not be read to hide its secrets.
    static let unreadable = "(the XML is not shown: it could not be read to hide its secrets; sign in at /login to see it)"
}
