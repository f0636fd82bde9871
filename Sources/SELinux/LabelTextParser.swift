/// The one parser for context, range and level text. It works on UTF-8 bytes and reports errors with the
/// input and the byte offset where they start.
///
/// Messages have the shape `<what> in '<input>' at column <n>: <why and fix>`, for example
/// `invalid category 'c1024' in 's0:c1,c1024' at column 7: this policy has categories c0..c1023`.
struct LabelTextParser {
    let text: String
    let bytes: [UInt8]
    let limits: ParseLimits
    var pos = 0

    init(_ text: String, limits: ParseLimits) {
        self.text = text
        self.bytes = Array(text.utf8)
        self.limits = limits
    }

    static let contextExample = "write user:role:type[:range], e.g. system_u:system_r:svirt_t:s0:c1,c2"

    // MARK: Entry points

    mutating func parseWholeContext() throws -> SecurityContext {
        guard !bytes.isEmpty else { throw fail(.invalidContext, 0, "empty security context", Self.contextExample) }
        let user = try identifier(named: "user")
        try expectColon(after: "user")
        let role = try identifier(named: "role")
        try expectColon(after: "role")
        let type = try identifier(named: "type")
        var range: SecurityRange?
        if pos < bytes.count {
            guard bytes[pos] == UInt8(ascii: ":") else {
                throw fail(.invalidContext, pos, "unexpected \(quoted(pos)) after the type", Self.contextExample)
            }
            pos += 1
            range = try parseRange()
        }
        try expectEnd()
        return SecurityContext(user: user, role: role, type: type, range: range)
    }

    mutating func parseWholeRange() throws -> SecurityRange {
        guard !bytes.isEmpty else {
            throw fail(.invalidRange, 0, "empty range", "write low[-high], e.g. s0 or s0-s0:c0.c1023")
        }
        let r = try parseRange()
        try expectEnd()
        return r
    }

    mutating func parseWholeLevel() throws -> SecurityLevel {
        guard !bytes.isEmpty else {
            throw fail(.invalidLevel, 0, "empty level", "write a sensitivity and categories, e.g. s0:c1,c2")
        }
        let l = try parseLevel()
        try expectEnd()
        return l
    }

    // MARK: Grammar

    mutating func parseRange() throws -> SecurityRange {
        let start = pos
        let low = try parseLevel()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "-") else { return SecurityRange(low) }
        pos += 1
        guard pos < bytes.count else {
            throw fail(.invalidRange, pos, "the range ends after '-'", "write the high level, e.g. s0-s0:c0.c1023")
        }
        let high = try parseLevel()
        guard high.dominates(low) else {
            throw fail(.invalidRange, start, "invalid range '\(low)-\(high)'",
                       "the high level does not dominate the low level; give the high level at least the low "
                       + "level's sensitivity and every one of its categories")
        }
        return try SecurityRange(low: low, high: high)
    }

    mutating func parseLevel() throws -> SecurityLevel {
        let start = pos
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "s") else {
            throw fail(.invalidSensitivity, pos, "expected a sensitivity, found \(found(pos))",
                       "a level starts with a sensitivity such as s0")
        }
        pos += 1
        guard let sens = number() else {
            throw fail(.invalidSensitivity, start, "invalid sensitivity '\(token(from: start))'",
                       "write 's' and a number without leading zeros, e.g. s0")
        }
        guard sens < limits.sensitivities else {
            throw fail(.invalidSensitivity, start, "invalid sensitivity 's\(sens)'",
                       "this policy has sensitivities s0..s\(limits.sensitivities - 1)")
        }
        var cats = CategorySet()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ":") {
            pos += 1
            guard pos < bytes.count, bytes[pos] != UInt8(ascii: "-") else {
                throw fail(.invalidCategory, pos, "empty category list after ':'", "write e.g. s0:c1,c2, or drop the ':'")
            }
            try parseCategoryItem(into: &cats)
            while pos < bytes.count, bytes[pos] == UInt8(ascii: ",") {
                pos += 1
                try parseCategoryItem(into: &cats)
            }
        }
        return SecurityLevel(sensitivity: sens, categories: cats)
    }

    mutating func parseCategoryItem(into cats: inout CategorySet) throws {
        let lo = try category()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            let hi = try category()
            guard lo.value < hi.value else {
                throw fail(.invalidCategory, lo.start, "invalid category span '\(slice(lo.start, pos))'",
                           "the first category of a span must be lower than the second, e.g. c0.c1023")
            }
            cats.insert(range: lo.value...hi.value)
        } else {
            cats.insert(lo.value)
        }
    }

    mutating func category() throws -> (value: Int, start: Int) {
        let start = pos
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "c") else {
            throw fail(.invalidCategory, pos, "expected a category, found \(found(pos))",
                       "categories are written c0, c1, ... or as a span c0.c3")
        }
        pos += 1
        guard let n = number() else {
            throw fail(.invalidCategory, start, "invalid category '\(token(from: start))'",
                       "write 'c' and a number without leading zeros, e.g. c5")
        }
        guard n < limits.categories else {
            let why = limits.categories == 0 ? "this policy has no categories"
                : "this policy has categories c0..c\(limits.categories - 1)"
            throw fail(.invalidCategory, start, "invalid category 'c\(n)'", why)
        }
        return (n, start)
    }

    // MARK: Tokens

    /// A decimal number without leading zeros and with at most 9 digits, or nil (position unchanged).
    mutating func number() -> Int? {
        let start = pos
        var value = 0
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
            if pos - start >= 9 { pos = start; return nil }
            value = value * 10 + Int(bytes[pos] - 0x30)
            pos += 1
        }
        if pos == start { return nil }
        if pos - start > 1, bytes[start] == 0x30 { pos = start; return nil }
        return value
    }

    mutating func identifier(named what: String) throws -> String {
        let start = pos
        while pos < bytes.count, bytes[pos] != UInt8(ascii: ":") {
            let b = bytes[pos]
            let ok = (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            guard ok else {
                throw fail(.invalidContext, pos, "invalid character \(quoted(pos)) in the \(what)",
                           "user, role and type names use letters, digits, '_', '-' and '.'")
            }
            pos += 1
        }
        guard pos > start else {
            throw fail(.invalidContext, start, "the \(what) is empty", Self.contextExample)
        }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    mutating func expectColon(after what: String) throws {
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
            throw fail(.invalidContext, pos, "the context ends after the \(what)", Self.contextExample)
        }
        pos += 1
    }

    func expectEnd() throws {
        guard pos == bytes.count else {
            throw fail(.invalidContext, pos, "unexpected \(quoted(pos))",
                       "nothing may follow the level or range; categories are separated by ','")
        }
    }

    // MARK: Errors

    func fail(_ code: SELinuxError.Code, _ offset: Int, _ what: String, _ why: String) -> SELinuxError {
        let shown = bytes.count > 200 ? String(decoding: bytes.prefix(200), as: UTF8.self) + "…" : text
        return SELinuxError(code: code, message: "\(what) in '\(shown)' at column \(offset + 1): \(why)",
                            input: text, position: offset)
    }

    func slice(_ a: Int, _ b: Int) -> String {
        String(decoding: bytes[max(0, a)..<min(max(a, b), bytes.count)], as: UTF8.self)
    }

    /// The run of bytes from `offset` up to the next separator, for messages.
    func token(from offset: Int) -> String {
        var end = min(offset + 1, bytes.count)
        while end < bytes.count, end - offset < 40,
              bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: ":"), bytes[end] != UInt8(ascii: "-") {
            end += 1
        }
        return slice(offset, end)
    }

    func found(_ offset: Int) -> String {
        offset < bytes.count ? "'\(token(from: offset))'" : "the end of the text"
    }

    func quoted(_ offset: Int) -> String {
        guard offset < bytes.count else { return "end of text" }
        let b = bytes[offset]
        if b >= 0x20 && b < 0x7f { return "'\(Character(UnicodeScalar(b)))'" }
        return "byte 0x\(String(b, radix: 16))"
    }
}
