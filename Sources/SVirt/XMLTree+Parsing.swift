/// Bounds on the XML svirt reads, so hostile input cannot exhaust memory or the stack.
public struct XMLLimits: Sendable, Hashable {
    /// The largest document, in bytes.
    public var maxBytes: Int
    /// The deepest element nesting.
    public var maxDepth: Int
    /// The most nodes (elements, text, comments...) in a document.
    public var maxNodes: Int
    /// The most attributes on one element.
    public var maxAttributes: Int
    /// The longest element or attribute name, in bytes.
    public var maxNameLength: Int

    public init(maxBytes: Int = 4 << 20, maxDepth: Int = 64, maxNodes: Int = 200_000, maxAttributes: Int = 256,
                maxNameLength: Int = 1024) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
        self.maxAttributes = maxAttributes
        self.maxNameLength = maxNameLength
    }

    /// The limits for domain XML: 4 MiB, 64 levels, 200,000 nodes.
    public static let domain = XMLLimits()
}

extension XMLTree {
    /// Parses an XML document.
    ///
    /// Accepted: the XML declaration, elements, attributes, text, CDATA, comments, processing instructions, the
    /// five predefined entities and numeric character references. Refused, with an error that names the line
    /// and column: `<!DOCTYPE>` (so no DTD, no entity declaration and nothing external is ever read), any other
    /// entity, malformed markup, mismatched tags, duplicate attributes, and input beyond `limits`.
    /// Errors are `SVirtError` with code `.invalidDomain`; `what` names the input in messages.
    public init(parsing text: String, limits: XMLLimits = .domain, what: String = "XML") throws {
        let count = text.utf8.count
        guard count <= limits.maxBytes else {
            throw SVirtError(.invalidDomain,
                             "\(what) is \(count) bytes, more than the \(limits.maxBytes) bytes svirt reads; "
                             + "a domain definition is a few kilobytes, so check that this is the right file")
        }
        var parser = XMLTextParser(Array(text.utf8), limits: limits, what: what)
        self = try parser.parseDocument()
    }
}

/// The parser behind `XMLTree(parsing:)`: a recursive-descent reader over UTF-8 bytes with explicit bounds.
struct XMLTextParser {
    let b: [UInt8]
    let limits: XMLLimits
    let what: String
    var i = 0
    var nodes = 0
    /// The offset where each line starts, for line numbers without rescanning the input.
    let lineStarts: [Int]

    init(_ bytes: [UInt8], limits: XMLLimits, what: String) {
        b = bytes
        self.limits = limits
        self.what = what
        var starts = [0]
        for (k, c) in bytes.enumerated() where c == 0x0A { starts.append(k + 1) }
        lineStarts = starts
        // A UTF-8 byte order mark is allowed before the declaration.
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { i = 3 }
    }

    // MARK: Positions and errors

    func position(_ at: Int) -> (line: Int, column: Int) {
        let line = self.line(at)
        let start = lineStarts[line - 1]
        var col = 1
        var k = start
        let end = min(at, b.count)
        while k < end {
            if b[k] & 0xC0 != 0x80 { col += 1 }
            k += 1
        }
        return (line, col)
    }

    func fail(_ message: String, at: Int? = nil) -> SVirtError {
        let p = position(at ?? i)
        return SVirtError(.invalidDomain, "\(what) line \(p.line) column \(p.column): \(message)")
    }

    /// The 1-based line of offset `at`: a binary search over the line starts.
    func line(_ at: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= at { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }

    var atEnd: Bool { i >= b.count }

    func peek(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        return s.withUTF8Buffer { u in
            for k in 0..<n where b[i + k] != u[k] { return false }
            return true
        }
    }

    mutating func skipWhitespace() {
        while i < b.count, Self.isSpace(b[i]) { i += 1 }
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    static func isNameStart(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x3A || c >= 0x80
    }

    static func isNameChar(_ c: UInt8) -> Bool {
        isNameStart(c) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E
    }

    mutating func countNode() throws {
        nodes += 1
        if nodes > limits.maxNodes {
            throw fail("more than \(limits.maxNodes) XML nodes; a domain definition needs far fewer")
        }
    }

    /// Text from `a` to `b` (exclusive), with `\r\n` and lone `\r` turned into `\n` as XML requires.
    func string(_ from: Int, _ to: Int) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(to - from)
        var k = from
        while k < to {
            if b[k] == 0x0D {
                bytes.append(0x0A)
                if k + 1 < to, b[k + 1] == 0x0A { k += 1 }
            } else {
                bytes.append(b[k])
            }
            k += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Document

    mutating func parseDocument() throws -> XMLTree {
        var prolog: [XMLTree.Node] = []
        while true {
            let start = i
            skipWhitespace()
            if i > start { prolog.append(.text(string(start, i))) }
            if atEnd { throw fail("the document has no root element; a domain definition starts with <domain>") }
            if peek("<?") {
                prolog.append(try parseProcessingInstruction(inProlog: prolog.isEmpty || prolog.allSatisfy(Self.isBlank)))
            } else if peek("<!--") {
                prolog.append(try parseComment())
            } else if peek("<!DOCTYPE") || peek("<!doctype") {
                throw fail("<!DOCTYPE> is not accepted: svirt reads no DTD and no entity declarations, and domain XML "
                           + "needs none; remove the DOCTYPE")
            } else if peek("<") {
                break
            } else {
                throw fail("text \(found()) before the root element; a domain definition starts with <domain>")
            }
        }
        let root = try parseElement(depth: 1)
        var epilog: [XMLTree.Node] = []
        while true {
            let start = i
            skipWhitespace()
            if i > start { epilog.append(.text(string(start, i))) }
            if atEnd { break }
            if peek("<?") {
                epilog.append(try parseProcessingInstruction(inProlog: false))
            } else if peek("<!--") {
                epilog.append(try parseComment())
            } else {
                throw fail("content \(found()) after the end of <\(root.name)>; a document has one root element")
            }
        }
        return XMLTree(prolog: prolog, root: root, epilog: epilog)
    }

    static func isBlank(_ n: XMLTree.Node) -> Bool {
        if case .text(let t) = n { return t.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" } }
        return false
    }

    /// A short quote of the input at the cursor, for messages.
    func found() -> String {
        guard !atEnd else { return "end of input" }
        var end = i
        while end < b.count, end - i < 20, b[end] != 0x0A { end += 1 }
        return "'\(String(decoding: b[i..<end], as: UTF8.self))'"
    }

    // MARK: Markup

    mutating func parseName(_ what: String) throws -> String {
        let start = i
        guard i < b.count, Self.isNameStart(b[i]) else {
            throw fail("expected \(what), found \(found())")
        }
        i += 1
        while i < b.count, Self.isNameChar(b[i]) {
            i += 1
            if i - start > limits.maxNameLength {
                throw fail("\(what) is longer than \(limits.maxNameLength) bytes", at: start)
            }
        }
        guard let name = String(validating: b[start..<i], as: UTF8.self) else {
            throw fail("\(what) is not valid UTF-8", at: start)
        }
        return name
    }

    mutating func parseComment() throws -> XMLTree.Node {
        .comment(try delimitedText(opener: 4, closer: [0x2D, 0x2D, 0x3E], "comment", unclosed: "comment is not closed with '-->'"))
    }

    /// The text between an opener of `opener` bytes at `i` and the next `closer`, checked as UTF-8 and counted
    /// as a node; `i` ends after the closer.
    mutating func delimitedText(opener: Int, closer: [UInt8], _ what: String, unclosed: String) throws -> String {
        let start = i
        i += opener
        while i + closer.count <= b.count {
            if b[i..<i + closer.count].elementsEqual(closer) {
                let text = try validated(start + opener, i, what)
                i += closer.count
                try countNode()
                return text
            }
            i += 1
        }
        throw fail(unclosed, at: start)
    }

    mutating func parseProcessingInstruction(inProlog: Bool) throws -> XMLTree.Node {
        let start = i
        i += 2
        let target = try parseName("a processing instruction target")
        if target.lowercased() == "xml", !(inProlog && start == (b.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0)) {
            throw fail("the XML declaration <?xml ...?> may only appear at the very start of the document", at: start)
        }
        skipWhitespace()
        let dataStart = i
        while i + 1 < b.count {
            if b[i] == 0x3F, b[i + 1] == 0x3E {
                let data = try validated(dataStart, i, "processing instruction")
                i += 2
                try countNode()
                if target == "xml", let encoding = Self.declaredEncoding(data),
                   !["utf-8", "utf8", "us-ascii", "ascii"].contains(encoding) {
                    throw fail("the document declares the encoding '\(encoding)'; svirt reads UTF-8, so save it as UTF-8",
                               at: start)
                }
                return .processingInstruction(target: target, data: data)
            }
            i += 1
        }
        throw fail("processing instruction <?\(target) is not closed with '?>'", at: start)
    }

    /// The `encoding` pseudo-attribute of an XML declaration, lowercased.
    static func declaredEncoding(_ data: String) -> String? {
        let lower = Array(data.lowercased().utf8)
        let key = Array("encoding".utf8)
        guard lower.count >= key.count else { return nil }
        for start in 0...(lower.count - key.count) where Array(lower[start..<start + key.count]) == key {
            var k = start + key.count
            while k < lower.count, lower[k] == 0x20 || lower[k] == 0x3D { k += 1 }
            guard k < lower.count, lower[k] == 0x27 || lower[k] == 0x22 else { return nil }
            let q = lower[k]
            k += 1
            var end = k
            while end < lower.count, lower[end] != q { end += 1 }
            return String(decoding: lower[k..<end], as: UTF8.self)
        }
        return nil
    }

    mutating func parseCDATA() throws -> XMLTree.Node {
        .cdata(try delimitedText(opener: 9, closer: [0x5D, 0x5D, 0x3E], "CDATA section",
                                 unclosed: "CDATA section is not closed with ']]>'"))
    }

    func validated(_ from: Int, _ to: Int, _ what: String) throws -> String {
        guard String(validating: b[from..<to], as: UTF8.self) != nil else {
            throw fail("\(what) is not valid UTF-8", at: from)
        }
        return string(from, to)
    }

    mutating func parseElement(depth: Int) throws -> XMLTree.Element {
        guard depth <= limits.maxDepth else {
            throw fail("elements are nested more than \(limits.maxDepth) levels deep")
        }
        let start = i
        i += 1  // '<'
        let name = try parseName("an element name")
        try countNode()
        var element = XMLTree.Element(name: name, line: line(start))
        var seen = Set<String>()
        while true {
            let beforeSpace = i
            skipWhitespace()
            guard !atEnd else { throw fail("<\(name)> is not closed: the input ends inside its start tag", at: start) }
            if b[i] == 0x2F {  // '/>'
                guard i + 1 < b.count, b[i + 1] == 0x3E else { throw fail("expected '/>' to close <\(name)>, found \(found())") }
                i += 2
                return element
            }
            if b[i] == 0x3E {
                i += 1
                break
            }
            guard i > beforeSpace else {
                throw fail("<\(name)>: expected whitespace, '>' or '/>' after an attribute, found \(found())")
            }
            let attrStart = i
            let attrName = try parseName("an attribute name in <\(name)>")
            guard seen.insert(attrName).inserted else {
                throw fail("<\(name)> has the attribute '\(attrName)' twice", at: attrStart)
            }
            guard element.attributes.count < limits.maxAttributes else {
                throw fail("<\(name)> has more than \(limits.maxAttributes) attributes", at: attrStart)
            }
            skipWhitespace()
            guard i < b.count, b[i] == 0x3D else {
                throw fail("<\(name)>: attribute '\(attrName)' needs '=' and a quoted value, found \(found())")
            }
            i += 1
            skipWhitespace()
            guard i < b.count, b[i] == 0x27 || b[i] == 0x22 else {
                throw fail("<\(name)>: the value of '\(attrName)' must be in quotes, found \(found())")
            }
            let quote = b[i]
            i += 1
            let value = try parseAttributeValue(quote: quote, element: name, attribute: attrName)
            element.attributes.append(XMLTree.Attribute(name: attrName, value: value, quote: quote == 0x22 ? "\"" : "'"))
        }
        // Content.
        var textStart = i
        var text: [UInt8] = []
        func flush(_ p: inout XMLTextParser, _ element: inout XMLTree.Element) throws {
            if !text.isEmpty {
                guard let s = String(validating: text, as: UTF8.self) else {
                    throw p.fail("text in <\(name)> is not valid UTF-8", at: textStart)
                }
                try p.countNode()
                element.children.append(.text(s))
                text.removeAll(keepingCapacity: true)
            }
        }
        while true {
            guard !atEnd else { throw fail("<\(name)> is not closed: expected </\(name)> before the end of input", at: start) }
            let c = b[i]
            if c == 0x3C {  // '<'
                if peek("</") {
                    try flush(&self, &element)
                    let closeStart = i
                    i += 2
                    let closing = try parseName("an element name after '</'")
                    guard closing == name else {
                        throw fail("</\(closing)> does not match <\(name)> opened on line \(element.line)", at: closeStart)
                    }
                    skipWhitespace()
                    guard i < b.count, b[i] == 0x3E else { throw fail("expected '>' to end </\(name)>, found \(found())") }
                    i += 1
                    return element
                } else if peek("<!--") {
                    try flush(&self, &element)
                    element.children.append(try parseComment())
                } else if peek("<![CDATA[") {
                    try flush(&self, &element)
                    element.children.append(try parseCDATA())
                } else if peek("<?") {
                    try flush(&self, &element)
                    element.children.append(try parseProcessingInstruction(inProlog: false))
                } else if peek("<!") {
                    throw fail("markup declarations (<!...>) are not accepted inside <\(name)>; svirt reads no DTD")
                } else {
                    try flush(&self, &element)
                    element.children.append(.element(try parseElement(depth: depth + 1)))
                }
                textStart = i
            } else if c == 0x26 {  // '&'
                if text.isEmpty { textStart = i }
                text.append(contentsOf: try parseReference(in: "<\(name)>"))
            } else if c == 0x0D {
                if text.isEmpty { textStart = i }
                text.append(0x0A)
                i += 1
                if i < b.count, b[i] == 0x0A { i += 1 }
            } else {
                if c == 0x3E, i >= 2, b[i - 1] == 0x5D, b[i - 2] == 0x5D {
                    throw fail("']]>' is not allowed in text; write ']]&gt;'")
                }
                if c < 0x20, c != 0x09, c != 0x0A {
                    throw fail("control character 0x\(String(c, radix: 16)) in <\(name)> is not allowed in XML")
                }
                if text.isEmpty { textStart = i }
                text.append(c)
                i += 1
            }
        }
    }

    mutating func parseAttributeValue(quote: UInt8, element: String, attribute: String) throws -> String {
        let start = i
        var out: [UInt8] = []
        while true {
            guard i < b.count else {
                throw fail("<\(element)>: the value of '\(attribute)' is not closed", at: start)
            }
            let c = b[i]
            if c == quote {
                i += 1
                break
            }
            switch c {
            case 0x3C:
                throw fail("<\(element)>: '<' is not allowed in the value of '\(attribute)'; write '&lt;'")
            case 0x26:
                out.append(contentsOf: try parseReference(in: "attribute '\(attribute)' of <\(element)>"))
            case 0x09, 0x0A:
                out.append(0x20)
                i += 1
            case 0x0D:
                out.append(0x20)
                i += 1
                if i < b.count, b[i] == 0x0A { i += 1 }
            default:
                if c < 0x20 {
                    throw fail("<\(element)>: control character 0x\(String(c, radix: 16)) in the value of '\(attribute)'")
                }
                out.append(c)
                i += 1
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw fail("<\(element)>: the value of '\(attribute)' is not valid UTF-8", at: start)
        }
        return s
    }

    /// Reads `&...;` at the cursor and returns the UTF-8 bytes it stands for.
    mutating func parseReference(in place: String) throws -> [UInt8] {
        let start = i
        i += 1
        var end = i
        while end < b.count, b[end] != 0x3B, end - i < 12 { end += 1 }
        guard end < b.count, b[end] == 0x3B else {
            throw fail("'&' in \(place) does not start a reference; write '&amp;' for a literal '&'", at: start)
        }
        let name = String(decoding: b[i..<end], as: UTF8.self)
        i = end + 1
        switch name {
        case "lt": return [0x3C]
        case "gt": return [0x3E]
        case "amp": return [0x26]
        case "apos": return [0x27]
        case "quot": return [0x22]
        default: break
        }
        if name.hasPrefix("#") {
            let digits = name.dropFirst()
            let value: UInt32?
            if digits.hasPrefix("x") || digits.hasPrefix("X") {
                value = UInt32(digits.dropFirst(), radix: 16)
            } else {
                value = UInt32(digits, radix: 10)
            }
            guard let v = value, Self.isXMLChar(v), let scalar = Unicode.Scalar(v) else {
                throw fail("'&\(name);' in \(place) is not a character XML allows", at: start)
            }
            return Array(String(Character(scalar)).utf8)
        }
        throw fail("the entity '&\(name);' in \(place) is not defined: svirt knows only &lt; &gt; &amp; &apos; &quot; "
                   + "and numeric references, and reads no DTD", at: start)
    }

    static func isXMLChar(_ v: UInt32) -> Bool {
        v == 0x9 || v == 0xA || v == 0xD || (v >= 0x20 && v <= 0xD7FF) || (v >= 0xE000 && v <= 0xFFFD)
            || (v >= 0x10000 && v <= 0x10FFFF)
    }
}
