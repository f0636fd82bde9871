import Foundation

/// An xl domain configuration file (xl.cfg(5)), parsed the way xl's libxlu parser reads it.
///
/// The syntax: one `KEY = VALUE` (or `KEY += VALUE`) per line or separated by `;`; a value is a string in single or
/// double quotes (with C escapes), a number (`42`, `0x1f`), or a list `[ v, v, ... ]` that may span lines, nest, and
/// end with a comma; `#` starts a comment. A later setting of the same key replaces an earlier one, and `+=` appends
/// to a string or list set earlier. Python (which the old xm accepted) is an error.
///
/// Every setting keeps its line and the byte range of its value, so a value can be replaced without touching the
/// rest of the file (`replacing(_:with:)`). Errors name the file and line: `guest.cfg:4: unterminated string`.
public struct XLConfig: Sendable {
    /// A value as written.
    public indirect enum Value: Sendable, Hashable, CustomStringConvertible {
        /// A quoted string, unescaped.
        case string(String)
        /// A number, as written (xl converts it when it is read).
        case number(String)
        case list([Value])

        /// The string or number text; nil for a list.
        public var atom: String? {
            switch self {
            case .string(let s), .number(let s): return s
            case .list: return nil
            }
        }

        public var description: String {
            switch self {
            case .string(let s): return "'" + s + "'"
            case .number(let n): return n
            case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
            }
        }
    }

    /// One `KEY = VALUE` statement.
    public struct Setting: Sendable, Hashable {
        public var name: String
        /// The value after any `+=` were applied.
        public var value: Value
        /// True when this statement was `KEY += VALUE`.
        public var appended: Bool
        /// The 1-based line of the key.
        public var line: Int
        /// The byte range of the value's text in the file (for `+=`, of the last part).
        public var valueRange: Range<Int>
    }

    /// Limits on what a file may hold, so a hostile file cannot exhaust memory.
    public struct Limits: Sendable {
        public var maximumBytes = 1 << 20
        public var maximumDepth = 32
        public var maximumValues = 100_000
        public init() {}
    }

    /// The name the file was read from, for messages.
    public let source: String
    /// The text, as read.
    public let text: String
    /// Every statement in file order. Several may set the same key; the last one counts.
    public let statements: [Setting]

    /// Parses xl.cfg text. Throws `XenError` (code `.syntax`) naming `source` and the line.
    public init(parsing text: String, source: String = "xl.cfg", limits: Limits = Limits()) throws {
        self.source = source
        self.text = text
        var parser = Parser(bytes: Array(text.utf8), source: source, limits: limits)
        statements = try parser.parseFile()
    }

    /// The setting that counts for `name` (the last one), or nil.
    public func setting(_ name: String) -> Setting? { statements.last { $0.name == name } }

    /// The lines of every statement of `name`, when it is set more than once.
    public func repeatedLines(_ name: String) -> [Int] {
        let lines = statements.filter { $0.name == name }.map(\.line)
        return lines.count > 1 ? lines : []
    }

    /// The string (or number text) `name` is set to. Throws when it is a list, as xl warns.
    public func string(_ name: String) throws -> String? {
        guard let s = setting(name) else { return nil }
        guard let a = s.value.atom else {
            throw XenError(.value, "'\(name)' is a list but should be a single value, e.g. \(name) = \"...\"",
                           file: source, line: s.line)
        }
        return a
    }

    /// The list `name` is set to. Throws when it is a single value.
    public func list(_ name: String) throws -> [Value]? {
        guard let s = setting(name) else { return nil }
        guard case .list(let l) = s.value else {
            throw XenError(.value, "'\(name)' is a single value but should be a list, e.g. \(name) = [ ... ]",
                           file: source, line: s.line)
        }
        return l
    }

    /// A number setting the way xl reads one (`strtol` with base 0: decimal, `0x` hex, leading-0 octal).
    public func integer(_ name: String) throws -> Int? {
        guard let s = setting(name) else { return nil }
        guard let a = s.value.atom else {
            throw XenError(.value, "'\(name)' is a list but should be a number", file: source, line: s.line)
        }
        guard let v = Self.integer(a) else {
            throw XenError(.value, "'\(name)' is not a valid number: '\(a)'", file: source, line: s.line)
        }
        return v
    }

    /// `strtol(text, NULL, 0)` without its silent acceptance of trailing junk: nil unless the whole text is a number.
    public static func integer(_ text: String) -> Int? {
        var t = Substring(text.trimmingCharacters(in: .whitespaces))
        var negative = false
        if t.first == "-" || t.first == "+" { negative = t.first == "-"; t = t.dropFirst() }
        let radix: Int
        if t.lowercased().hasPrefix("0x") { t = t.dropFirst(2); radix = 16 } else if t.count > 1, t.first == "0" {
            t = t.dropFirst(); radix = 8
        } else { radix = 10 }
        guard !t.isEmpty, let v = Int(t, radix: radix) else { return nil }
        return negative ? -v : v
    }

    /// The text with the value of `name`'s counting statement replaced by `value` (as written: quote it yourself),
    /// or with `name = value` appended when the file has no such setting. Throws when the setting was built with `+=`.
    public func replacing(_ name: String, with value: String) throws -> String {
        guard let s = setting(name) else {
            var t = text
            if !t.isEmpty, !t.hasSuffix("\n") { t += "\n" }
            return t + "\(name) = \(value)\n"
        }
        guard statements.filter({ $0.name == name }).allSatisfy({ !$0.appended }) else {
            throw XenError(.value, "'\(name)' is built with '+='; write it as one value before svirt rewrites it",
                           file: source, line: s.line)
        }
        var bytes = Array(text.utf8)
        bytes.replaceSubrange(s.valueRange, with: Array(value.utf8))
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension XLConfig {
    /// Quotes a string for xl.cfg in single quotes, escaping what needs it.
    public static func quoted(_ s: String) -> String {
        var out = "'"
        for u in s.unicodeScalars {
            switch u {
            case "'": out += "\\'"
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    let h = String(u.value, radix: 16)
                    out += "\\x" + (h.count < 2 ? "0" + h : h)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "'"
    }
}

// MARK: - The parser

private struct Parser {
    enum Kind: Equatable {
        case identifier(String)
        case number(String)
        case string(String)
        case assign, append, comma, open, close, semicolon, newline, end
    }
    struct Token {
        var kind: Kind
        var line: Int
        var start: Int
        var end: Int
    }

    let bytes: [UInt8]
    let source: String
    let limits: Limits
    var at = 0
    var line = 1
    var values = 0
    var peeked: Token?

    typealias Limits = XLConfig.Limits

    init(bytes: [UInt8], source: String, limits: Limits) {
        self.bytes = bytes
        self.source = source
        self.limits = limits
    }

    func fail(_ line: Int, _ message: String) -> XenError {
        XenError(.syntax, message, file: source, line: line)
    }

    func near(_ t: Token) -> String {
        switch t.kind {
        case .newline: return "end of line"
        case .end: return "end of file"
        default:
            let lo = max(0, min(t.start, bytes.count)), hi = max(lo, min(t.end, bytes.count, lo + 40))
            return "'" + String(decoding: bytes[lo..<hi], as: UTF8.self) + "'"
        }
    }

    // MARK: Lexer

    static func isIdentStart(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
    static func isIdent(_ c: UInt8) -> Bool { isIdentStart(c) || (c >= 48 && c <= 57) }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) }

    mutating func next() throws -> Token {
        if let p = peeked { peeked = nil; return p }
        return try lex()
    }

    mutating func peek() throws -> Token {
        if let p = peeked { return p }
        let t = try lex()
        peeked = t
        return t
    }

    mutating func lex() throws -> Token {
        while at < bytes.count, bytes[at] == 32 || bytes[at] == 9 { at += 1 }
        guard at < bytes.count else { return Token(kind: .end, line: line, start: at, end: at) }
        let start = at, c = bytes[at]
        switch c {
        case 10, 13:
            // A line ends with LF, CRLF or a lone CR.
            at += 1
            if c == 13, at < bytes.count, bytes[at] == 10 { at += 1 }
            line += 1
            return Token(kind: .newline, line: line - 1, start: start, end: at)
        case 35: // '#': a comment runs to the end of the line
            while at < bytes.count, bytes[at] != 10, bytes[at] != 13 { at += 1 }
            return try lex()
        case 61:
            at += 1
            return Token(kind: .assign, line: line, start: start, end: at)
        case 43 where at + 1 < bytes.count && bytes[at + 1] == 61:
            at += 2
            return Token(kind: .append, line: line, start: start, end: at)
        case 44:
            at += 1
            return Token(kind: .comma, line: line, start: start, end: at)
        case 91:
            at += 1
            return Token(kind: .open, line: line, start: start, end: at)
        case 93:
            at += 1
            return Token(kind: .close, line: line, start: start, end: at)
        case 59:
            at += 1
            return Token(kind: .semicolon, line: line, start: start, end: at)
        case 34, 39:
            return try lexString(quote: c)
        default:
            if Self.isIdentStart(c) {
                while at < bytes.count, Self.isIdent(bytes[at]) { at += 1 }
                return Token(kind: .identifier(String(decoding: bytes[start..<at], as: UTF8.self)), line: line,
                             start: start, end: at)
            }
            if Self.isDigit(c) {
                while at < bytes.count, Self.isHex(bytes[at]) || bytes[at] == 120 || bytes[at] == 88 { at += 1 }
                return Token(kind: .number(String(decoding: bytes[start..<at], as: UTF8.self)), line: line,
                             start: start, end: at)
            }
            var end = at
            while end < bytes.count, bytes[end] != 32, bytes[end] != 9, bytes[end] != 10, bytes[end] != 13 { end += 1 }
            let word = String(decoding: bytes[start..<min(end, start + 40)], as: UTF8.self)
            let python = [UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("),
                          UInt8(ascii: ")"), UInt8(ascii: ":")].contains(c)
            throw fail(line, "config parsing error near '\(word)': lexical error"
                       + (python ? "; this looks like Python, which xl no longer reads: write KEY = VALUE with quoted strings"
                                 : "; values are quoted strings, numbers or [ lists ]"))
        }
    }

    mutating func lexString(quote: UInt8) throws -> Token {
        let start = at, startLine = line
        at += 1
        var out: [UInt8] = []
        while true {
            guard at < bytes.count, bytes[at] != 10, bytes[at] != 13 else {
                throw fail(startLine, "unterminated string: close it with \(quote == 34 ? "\"" : "'") on the same line")
            }
            let c = bytes[at]
            at += 1
            if c == quote { break }
            guard c == 92 else { out.append(c); continue }
            guard at < bytes.count, bytes[at] != 10, bytes[at] != 13 else {
                throw fail(startLine, "unterminated string: a backslash ends the line")
            }
            let e = bytes[at]
            at += 1
            switch e {
            case 34, 39, 92: out.append(e)
            case UInt8(ascii: "a"): out.append(7)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "v"): out.append(11)
            case UInt8(ascii: "x"):
                guard at + 1 < bytes.count, Self.isHex(bytes[at]), Self.isHex(bytes[at + 1]),
                      let v = UInt8(String(decoding: bytes[at...(at + 1)], as: UTF8.self), radix: 16) else {
                    throw fail(startLine, "invalid \\x escape in a quoted string: write two hex digits, e.g. \\x41")
                }
                out.append(v)
                at += 2
            case 48...55:
                var v = Int(e - 48), n = 1
                while n < 3, at < bytes.count, bytes[at] >= 48, bytes[at] <= 55 {
                    v = v * 8 + Int(bytes[at] - 48)
                    at += 1
                    n += 1
                }
                guard v <= 255 else { throw fail(startLine, "octal escape \\\(String(v, radix: 8)) is larger than \\377") }
                out.append(UInt8(v))
            default:
                throw fail(startLine, "invalid character after a backslash in a quoted string: '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return Token(kind: .string(String(decoding: out, as: UTF8.self)), line: startLine, start: start, end: at)
    }

    // MARK: Grammar

    mutating func parseFile() throws -> [XLConfig.Setting] {
        guard bytes.count <= limits.maximumBytes else {
            throw XenError(.syntax, "the file is \(bytes.count) bytes; an xl.cfg file is at most \(limits.maximumBytes)",
                           file: source)
        }
        var out: [XLConfig.Setting] = []
        var latest: [String: Int] = [:]
        while true {
            let t = try next()
            switch t.kind {
            case .end: return out
            case .newline, .semicolon: continue
            case .identifier(let name):
                let op = try next()
                guard op.kind == .assign || op.kind == .append else {
                    throw fail(op.line, "config parsing error near \(near(op)): expected '=' after '\(name)'")
                }
                let (value, range) = try parseValue(depth: 0)
                let end = try next()
                switch end.kind {
                case .newline, .semicolon, .end: break
                default:
                    throw fail(end.line, "config parsing error near \(near(end)): one setting per line, or separate them with ';'")
                }
                var v = value
                if op.kind == .append, let prev = latest[name] {
                    switch (out[prev].value, value) {
                    case (.string(let a), .string(let b)): v = .string(a + b)
                    case (.number(let a), .number(let b)), (.string(let a), .number(let b)), (.number(let a), .string(let b)):
                        v = .string(a + b)
                    case (.list(let a), .list(let b)): v = .list(a + b)
                    default:
                        throw fail(t.line, "'\(name) +=' adds a \(Self.kind(value)) to a \(Self.kind(out[prev].value)) "
                                   + "set on line \(out[prev].line); '+=' joins strings to strings and lists to lists")
                    }
                }
                latest[name] = out.count
                out.append(XLConfig.Setting(name: name, value: v, appended: op.kind == .append, line: t.line,
                                            valueRange: range))
                if end.kind == .end { return out }
            default:
                throw fail(t.line, "config parsing error near \(near(t)): expected a setting name (KEY = VALUE)")
            }
        }
    }

    static func kind(_ v: XLConfig.Value) -> String {
        if case .list = v { return "list" }
        return "string"
    }

    mutating func count() throws {
        values += 1
        guard values <= limits.maximumValues else {
            throw fail(line, "more than \(limits.maximumValues) values; an xl.cfg file holds far fewer")
        }
    }

    mutating func skipNewlines() throws {
        while try peek().kind == .newline { _ = try next() }
    }

    mutating func parseValue(depth: Int) throws -> (XLConfig.Value, Range<Int>) {
        let t = try next()
        try count()
        switch t.kind {
        case .string(let s): return (.string(s), t.start..<t.end)
        case .number(let n): return (.number(n), t.start..<t.end)
        case .open:
            guard depth < limits.maximumDepth else {
                throw fail(t.line, "lists nest deeper than \(limits.maximumDepth) levels")
            }
            var items: [XLConfig.Value] = []
            try skipNewlines()
            if try peek().kind == .close {
                let c = try next()
                return (.list([]), t.start..<c.end)
            }
            while true {
                let (v, _) = try parseValue(depth: depth + 1)
                items.append(v)
                try skipNewlines()
                let sep = try next()
                switch sep.kind {
                case .close: return (.list(items), t.start..<sep.end)
                case .comma:
                    try skipNewlines()
                    if try peek().kind == .close {
                        let c = try next()
                        return (.list(items), t.start..<c.end)
                    }
                case .end:
                    throw fail(t.line, "the list opened here is never closed with ']'")
                default:
                    throw fail(sep.line, "config parsing error near \(near(sep)): expected ',' or ']' in a list")
                }
            }
        case .newline, .end, .semicolon:
            throw fail(t.line, "config parsing error near \(near(t)): a value is missing after '='")
        default:
            throw fail(t.line, "config parsing error near \(near(t)): expected a quoted string, a number or a [ list ]")
        }
    }
}
