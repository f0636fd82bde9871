/// An XML document kept as a tree, so that what was read can be written back: elements, attributes (in their
/// order, with their quote character), text, comments, CDATA sections and processing instructions.
///
/// svirt reads libvirt domain XML with its own small parser (`XMLTree(parsing:limits:)`), because that XML may
/// come from clients: it reads no DTD and no external entity, refuses `<!DOCTYPE>`, and bounds the input size,
/// the nesting depth and the node count.
public struct XMLTree: Sendable, Hashable {
    /// What comes before the root element: the XML declaration, comments, processing instructions, whitespace.
    public var prolog: [Node]
    /// The document element.
    public var root: Element
    /// What comes after the root element.
    public var epilog: [Node]

    public init(prolog: [Node] = [], root: Element, epilog: [Node] = []) {
        self.prolog = prolog
        self.root = root
        self.epilog = epilog
    }

    /// One node of element content.
    public enum Node: Sendable, Hashable {
        case element(Element)
        case text(String)
        case comment(String)
        case cdata(String)
        /// `<?target data?>`; the XML declaration is one too (target `xml`).
        case processingInstruction(target: String, data: String)
    }

    /// An attribute, with the quote character it was written with (`'` or `"`).
    public struct Attribute: Sendable, Hashable {
        public var name: String
        public var value: String
        public var quote: Character

        public init(name: String, value: String, quote: Character = "'") {
            self.name = name
            self.value = value
            self.quote = quote == "\"" ? "\"" : "'"
        }
    }

    /// An element with its attributes and content.
    public struct Element: Sendable, Hashable {
        public var name: String
        public var attributes: [Attribute]
        public var children: [Node]
        /// Where the element starts in the source, 1-based, for error messages; 0 for elements built in code.
        public var line: Int

        public init(name: String, attributes: [Attribute] = [], children: [Node] = [], line: Int = 0) {
            self.name = name
            self.attributes = attributes
            self.children = children
            self.line = line
        }

        /// The value of the attribute `name`, if present.
        public subscript(attribute name: String) -> String? {
            attributes.first { $0.name == name }?.value
        }

        /// Sets (or, with nil, removes) an attribute, keeping its place when it exists.
        public mutating func setAttribute(_ name: String, _ value: String?) {
            if let i = attributes.firstIndex(where: { $0.name == name }) {
                if let value { attributes[i].value = value } else { attributes.remove(at: i) }
            } else if let value {
                attributes.append(Attribute(name: name, value: value))
            }
        }

        /// The child elements, in order.
        public var elements: [Element] {
            children.compactMap { if case .element(let e) = $0 { return e } else { return nil } }
        }

        /// The child elements named `name`.
        public func elements(named name: String) -> [Element] { elements.filter { $0.name == name } }

        /// The first child element named `name`.
        public func element(named name: String) -> Element? {
            for case .element(let e) in children where e.name == name { return e }
            return nil
        }

        /// The text content: the concatenation of the text and CDATA children (not of nested elements).
        public var text: String {
            var s = ""
            for c in children {
                switch c {
                case .text(let t), .cdata(let t): s += t
                default: break
                }
            }
            return s
        }

        /// The text content without leading and trailing whitespace.
        public var trimmedText: String { text.trimmingCharacters(in: " \t\r\n") }

        /// Replaces the content with one text node.
        public mutating func setText(_ text: String) { children = [.text(text)] }
    }
}

// MARK: Writing

extension XMLTree {
    /// The document as XML text. A parsed document comes back as it was read, except that references are
    /// written in canonical form and line ends are `\n`.
    public var xmlText: String {
        var out = ""
        for n in prolog { Self.write(n, into: &out) }
        Self.write(root, into: &out)
        for n in epilog { Self.write(n, into: &out) }
        return out
    }

    /// One element (and its content) as XML text.
    public static func xmlText(of element: Element) -> String {
        var out = ""
        write(element, into: &out)
        return out
    }

    static func write(_ node: Node, into out: inout String) {
        switch node {
        case .element(let e): write(e, into: &out)
        case .text(let t): out += escapeText(t)
        case .comment(let c): out += "<!--\(c)-->"
        case .cdata(let c): out += "<![CDATA[\(c)]]>"
        case .processingInstruction(let target, let data):
            out += data.isEmpty ? "<?\(target)?>" : "<?\(target) \(data)?>"
        }
    }

    static func write(_ e: Element, into out: inout String) {
        out += "<" + e.name
        for a in e.attributes {
            out += " \(a.name)=\(a.quote)\(escapeAttribute(a.value, quote: a.quote))\(a.quote)"
        }
        if e.children.isEmpty {
            out += "/>"
            return
        }
        out += ">"
        for c in e.children { write(c, into: &out) }
        out += "</\(e.name)>"
    }

    /// Text content with `&`, `<` and `>` escaped.
    public static func escapeText(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x0D }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// An attribute value with `&`, `<`, the quote character and the whitespace that normalisation would
    /// change escaped.
    public static func escapeAttribute(_ s: String, quote: Character) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case "\"" where quote == "\"": out += "&quot;"
            case "'" where quote == "'": out += "&apos;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
