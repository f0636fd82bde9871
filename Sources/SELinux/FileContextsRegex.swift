/// A regular expression that does not compile, with the byte offset (in the expression as written) where the
/// problem is.
struct RegexSyntaxError: Error, Sendable {
    var offset: Int
    var message: String
}

/// Compiles one file_contexts regular expression into `NFABuilder` nodes.
///
/// The dialect is the part of PCRE2 that file_contexts files use, read the way libselinux hands it to PCRE2:
/// the expression is wrapped as `^` + expression + `$`, compiled with `PCRE2_DOTALL` and no UTF mode, and
/// searched for in the path. So `.` matches any byte (a newline too), classes match bytes, `$` also matches
/// before a final newline, and a top-level `|` splits the anchors (`/a|/b` is `^/a` or `/b$`).
///
/// Supported: literals, `.`, `[...]` and `[^...]` with ranges, escapes and POSIX classes (`[:alpha:]`),
/// groups `(...)` and `(?:...)`, `|`, `*` `+` `?` `{n}` `{n,}` `{n,m}` (and their lazy forms, which match the
/// same paths), `^`, `$`, the escapes `\d \D \s \S \w \W`, `\a \e \f \n \r \t`, `\xhh`, `\x{hh}`, `\0oo`, and
/// any escaped punctuation. A `{` that does not start a valid count is a literal, as in PCRE2.
///
/// Refused with an error: back references, lookaround, word boundaries and the other PCRE assertions, inline
/// options, possessive quantifiers, `\Q...\E`, Unicode properties. file_contexts files do not use them, and
/// several of them cannot be matched by a finite automaton.
struct RegexCompiler {
    /// The pattern as PCRE2 sees it: `^`, the expression, `$`.
    let p: UnsafeBufferPointer<UInt8>
    var i = 0
    var depth = 0
    /// Whether a `|` appeared outside every group (so libselinux's `^`/`$` do not anchor the whole expression).
    var topLevelAlternation = false
    /// The sink's node count when compilation started.
    var start = 0

    static let maxDepth = 200
    static let maxRepeat = 1000
    static let perExpressionNodeLimit = 200_000

    /// `pattern` must already be wrapped: see `wrap(_:into:)`. It must stay valid while the compiler is used.
    init(pattern: UnsafeBufferPointer<UInt8>) {
        p = pattern
    }

    /// Writes `^` + expression + `$` into `buffer`, as libselinux builds the pattern it compiles.
    static func wrap(_ expression: UnsafeBufferPointer<UInt8>, into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(UInt8(ascii: "^"))
        buffer.append(contentsOf: expression)
        buffer.append(UInt8(ascii: "$"))
    }

    /// Offset in the expression as written (without the added `^`).
    func written(_ offset: Int) -> Int { max(0, min(offset - 1, p.count - 2)) }

    func error(_ offset: Int, _ message: String) -> RegexSyntaxError {
        RegexSyntaxError(offset: written(offset), message: message)
    }

    /// Compiles the whole pattern and returns its fragment; the caller patches its ends to an accept node.
    mutating func compile<Sink: AutomatonSink>(into b: inout Sink) throws -> Fragment {
        let mark = b.count
        start = mark
        let f = try alternation(&b)
        if i < p.count {
            // Only an unmatched ')' stops an alternation at the top level.
            throw error(i, "unmatched closing parenthesis ')': remove it or escape it as '\\)'")
        }
        if b.count - mark > RegexCompiler.perExpressionNodeLimit {
            throw error(0, "the expression is too large once its counted repetitions are expanded; "
                        + "svirt accepts up to \(RegexCompiler.perExpressionNodeLimit) automaton states per line")
        }
        return f
    }

    // MARK: Grammar

    mutating func alternation<Sink: AutomatonSink>(_ b: inout Sink) throws -> Fragment {
        var f = try concatenation(&b)
        while i < p.count, p[i] == UInt8(ascii: "|") {
            if depth == 0 { topLevelAlternation = true }
            i += 1
            let g = try concatenation(&b)
            f = b.alternate(f, g)
        }
        return f
    }

    /// Bytes that stand for themselves wherever they are (not `\\ [ ] ( ) { } | * + ? . ^ $`).
    @inline(__always)
    static func isPlain(_ c: UInt8) -> Bool {
        // Bit c of the masks is set for the special bytes below 128.
        let low: UInt64 = (1 << 0x24) | (1 << 0x28) | (1 << 0x29) | (1 << 0x2A) | (1 << 0x2B) | (1 << 0x2E) | (1 << 0x3F)
        let high: UInt64 = (1 << (0x5B - 64)) | (1 << (0x5C - 64)) | (1 << (0x5D - 64)) | (1 << (0x5E - 64))
            | (1 << (0x7B - 64)) | (1 << (0x7C - 64)) | (1 << (0x7D - 64))
        if c < 64 { return low & (1 << UInt64(c)) == 0 }
        if c < 128 { return high & (1 << UInt64(c - 64)) == 0 }
        return true
    }

    mutating func concatenation<Sink: AutomatonSink>(_ b: inout Sink) throws -> Fragment {
        var f: Fragment?
        while i < p.count, p[i] != UInt8(ascii: "|"), p[i] != UInt8(ascii: ")") {
            // A plain byte with no quantifier after it: one node, without the general path.
            // A run of plain bytes, none of them quantified: one chain of nodes, without the general path.
            var j = i
            while j < p.count, RegexCompiler.isPlain(p[j]), j + 1 >= p.count || !RegexCompiler.mayQuantify(p[j + 1]) {
                j += 1
            }
            if j > i {
                let g = b.literalChain(p, i..<j)
                f = f.map { b.concat($0, g) } ?? g
                i = j
                continue
            }
            let g = try quantified(&b)
            f = f.map { b.concat($0, g) } ?? g
        }
        return f ?? b.emptyFragment()
    }

    mutating func quantified<Sink: AutomatonSink>(_ b: inout Sink) throws -> Fragment {
        let atomStart = i
        let mark = b.count
        let (atom, repeatable) = try self.atom(&b)
        guard i < p.count else { return atom }
        guard let q = quantifier(at: i) else { return atom }
        guard repeatable else {
            throw error(i, "quantifier '\(show(i, q.length))' does not follow a repeatable item: "
                        + "escape it (e.g. '\\\(Character(UnicodeScalar(p[i]))))' to match it literally")
        }
        if let message = q.problem { throw error(i, message) }
        i += q.length
        if i < p.count, p[i] == UInt8(ascii: "+") {
            throw error(i, "possessive quantifiers ('\(show(atomStart, i + 1 - atomStart))') are outside the "
                        + "file_contexts dialect: drop the final '+'")
        }
        if i < p.count, p[i] == UInt8(ascii: "?") { i += 1 }  // lazy: matches the same paths
        if i < p.count, quantifier(at: i) != nil {
            throw error(i, "a second quantifier '\(show(i, 1))' follows a quantifier: group the item first, "
                        + "e.g. '(a*)*', or escape it")
        }
        let range = mark..<b.count
        // Counted repetition copies the item: refuse before copying when the copies would pass the limit.
        let copies = q.max ?? max(1, q.min)
        if range.count * copies > RegexCompiler.perExpressionNodeLimit || b.count - start > RegexCompiler.perExpressionNodeLimit {
            throw error(atomStart, "the expression is too large once its counted repetitions are expanded; "
                        + "svirt accepts up to \(RegexCompiler.perExpressionNodeLimit) automaton states per line")
        }
        return repeatFragment(atom, nodes: range, min: q.min, max: q.max, into: &b)
    }

    @inline(__always)
    static func mayQuantify(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "*") || c == UInt8(ascii: "+") || c == UInt8(ascii: "?") || c == UInt8(ascii: "{")
    }

    func show(_ from: Int, _ length: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[from..<min(p.count, max(from, from + length))]), as: UTF8.self)
    }

    struct Quantifier { var min: Int; var max: Int?; var length: Int; var problem: String? }

    /// The quantifier at `j`, if one starts there. `{` starts one only when it reads `{n}`, `{n,}` or
    /// `{n,m}`; otherwise it is a literal brace (PCRE2 10.42).
    func quantifier(at j: Int) -> Quantifier? {
        switch p[j] {
        case UInt8(ascii: "*"): return Quantifier(min: 0, max: nil, length: 1)
        case UInt8(ascii: "+"): return Quantifier(min: 1, max: nil, length: 1)
        case UInt8(ascii: "?"): return Quantifier(min: 0, max: 1, length: 1)
        case UInt8(ascii: "{"):
            var k = j + 1
            func number() -> Int? {
                let s = k
                var v = 0
                while k < p.count, p[k] >= 0x30, p[k] <= 0x39 {
                    if v <= 1_000_000 { v = v * 10 + Int(p[k] - 0x30) }
                    k += 1
                }
                return k > s ? v : nil
            }
            guard let lo = number(), k < p.count else { return nil }
            var hi: Int? = lo
            if p[k] == UInt8(ascii: ",") {
                k += 1
                hi = number()
            }
            guard k < p.count, p[k] == UInt8(ascii: "}") else { return nil }
            var q = Quantifier(min: lo, max: hi, length: k + 1 - j)
            if lo > 65535 || (hi ?? 0) > 65535 {
                q.problem = "number too big in '\(show(j, q.length))': counts go up to 65535"
            } else if let h = hi, h < lo {
                q.problem = "numbers out of order in '\(show(j, q.length))': write the smaller count first"
            } else if max(lo, hi ?? 0) > RegexCompiler.maxRepeat {
                q.problem = "count in '\(show(j, q.length))' is too large for svirt's automaton: "
                    + "it accepts counts up to \(RegexCompiler.maxRepeat)"
            }
            return q
        default:
            return nil
        }
    }

    mutating func repeatFragment<Sink: AutomatonSink>(_ atom: Fragment, nodes: Range<Int>, min lo: Int, max hi: Int?,
                                 into b: inout Sink) -> Fragment {
        switch (lo, hi) {
        case (0, nil): return b.star(atom)
        case (1, nil): return b.plus(atom)
        case (0, 1?): return b.optional(atom)
        case (1, 1?): return atom
        default: break
        }
        if hi == 0 { return b.emptyFragment() }  // x{0}: the atom's nodes stay unreachable
        // Each further copy is a clone of the atom's nodes: x{2,4} needs 4 copies, x{3,} needs 3.
        let needed = hi ?? lo
        var copies: [Fragment] = [atom]
        while copies.count < needed { copies.append(b.clone(atom, nodes: nodes)) }
        var f: Fragment?
        if let hi {
            // lo mandatory copies, then hi - lo optional ones: x{2,4} = x x x? x?
            for k in 0..<hi {
                let c = k < lo ? copies[k] : b.optional(copies[k])
                f = f.map { b.concat($0, c) } ?? c
            }
        } else {
            // x{n,} = n - 1 copies, then x+.
            for k in 0..<(lo - 1) { f = f.map { b.concat($0, copies[k]) } ?? copies[k] }
            let last = b.plus(copies[lo - 1])
            f = f.map { b.concat($0, last) } ?? last
        }
        return f ?? b.emptyFragment()
    }

    /// One item and whether a quantifier may follow it.
    mutating func atom<Sink: AutomatonSink>(_ b: inout Sink) throws -> (Fragment, Bool) {
        let c = p[i]
        switch c {
        case UInt8(ascii: "("):
            let open = i
            i += 1
            if i < p.count, p[i] == UInt8(ascii: "?") {
                if i + 1 < p.count, p[i + 1] == UInt8(ascii: ":") {
                    i += 2
                } else {
                    throw error(open, "'\(show(open, 3))' is outside the file_contexts dialect: only plain groups "
                                + "'(...)' and non-capturing groups '(?:...)' are supported")
                }
            }
            depth += 1
            if depth > RegexCompiler.maxDepth {
                throw error(open, "groups are nested more than \(RegexCompiler.maxDepth) deep")
            }
            let f = try alternation(&b)
            depth -= 1
            guard i < p.count, p[i] == UInt8(ascii: ")") else {
                throw error(open, "missing closing parenthesis for the group opened here: add ')'")
            }
            i += 1
            return (f, true)
        case UInt8(ascii: "["):
            let set = try bracketClass()
            return (b.byteFragment(set: b.intern(set)), true)
        case UInt8(ascii: "."):
            i += 1
            return (b.byteFragment(set: 256), true)
        case UInt8(ascii: "^"):
            i += 1
            return (b.anchorFragment(.startAnchor), false)
        case UInt8(ascii: "$"):
            i += 1
            return (b.anchorFragment(.endAnchor), false)
        case UInt8(ascii: "\\"):
            let e = try escape(inClass: false)
            i += e.length
            switch e.value {
            case .byte(let x): return (b.byteFragment(set: Int32(x)), true)
            case .set(let s): return (b.byteFragment(set: b.intern(s)), true)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
            throw error(i, "quantifier '\(show(i, 1))' does not follow a repeatable item: escape it as "
                        + "'\\\(Character(UnicodeScalar(c)))' to match it literally")
        case UInt8(ascii: "{"):
            if let q = quantifier(at: i) {
                throw error(i, "quantifier '\(show(i, q.length))' does not follow a repeatable item: "
                            + "escape the brace as '\\{'")
            }
            i += 1
            return (b.byteFragment(set: Int32(c)), true)
        default:
            i += 1
            return (b.byteFragment(set: Int32(c)), true)
        }
    }

    // MARK: Escapes

    enum EscapeValue { case byte(UInt8), set(ByteSet) }

    /// The escape at `i` (which holds the backslash) and its length; `i` is not moved.
    func escape(inClass: Bool) throws -> (value: EscapeValue, length: Int) {
        // A '\\' at the end of the expression escapes the '$' that libselinux appends, as PCRE2 sees it.
        guard i + 1 < p.count else {
            throw error(i, "the expression ends with a lone '\\': escape it as '\\\\'")
        }
        let c = p[i + 1]
        func isHex(_ x: UInt8) -> Bool { (x >= 0x30 && x <= 0x39) || (x >= 0x41 && x <= 0x46) || (x >= 0x61 && x <= 0x66) }
        func hexValue(_ x: UInt8) -> Int { x <= 0x39 ? Int(x - 0x30) : x <= 0x46 ? Int(x - 0x41 + 10) : Int(x - 0x61 + 10) }
        switch c {
        case UInt8(ascii: "d"): return (.set(.digit), 2)
        case UInt8(ascii: "D"): return (.set(ByteSet.digit.inverted), 2)
        case UInt8(ascii: "s"): return (.set(.space), 2)
        case UInt8(ascii: "S"): return (.set(ByteSet.space.inverted), 2)
        case UInt8(ascii: "w"): return (.set(.word), 2)
        case UInt8(ascii: "W"): return (.set(ByteSet.word.inverted), 2)
        case UInt8(ascii: "a"): return (.byte(0x07), 2)
        case UInt8(ascii: "e"): return (.byte(0x1B), 2)
        case UInt8(ascii: "f"): return (.byte(0x0C), 2)
        case UInt8(ascii: "n"): return (.byte(0x0A), 2)
        case UInt8(ascii: "r"): return (.byte(0x0D), 2)
        case UInt8(ascii: "t"): return (.byte(0x09), 2)
        case UInt8(ascii: "b") where inClass: return (.byte(0x08), 2)
        case UInt8(ascii: "x"):
            var k = i + 2
            if k < p.count, p[k] == UInt8(ascii: "{") {
                k += 1
                var v = 0
                let s = k
                while k < p.count, isHex(p[k]) { if v <= 0xFFFF { v = v * 16 + hexValue(p[k]) }; k += 1 }
                guard k > s, k < p.count, p[k] == UInt8(ascii: "}") else {
                    throw error(i, "malformed '\\x{...}': write one to two hex digits between the braces, e.g. \\x{2e}")
                }
                guard v <= 0xFF else {
                    throw error(i, "character code \(v) in '\(show(i, k + 1 - i))' is too large: paths are matched "
                                + "byte by byte, so the code must be at most \\x{ff}")
                }
                return (.byte(UInt8(v)), k + 1 - i)
            }
            var v = 0
            while k < p.count, k < i + 4, isHex(p[k]) { v = v * 16 + hexValue(p[k]); k += 1 }
            return (.byte(UInt8(v)), k - i)
        case UInt8(ascii: "0"):
            var k = i + 2
            var v = 0
            while k < p.count, k < i + 4, p[k] >= 0x30, p[k] <= 0x37 { v = v * 8 + Int(p[k] - 0x30); k += 1 }
            return (.byte(UInt8(v)), k - i)
        default:
            break
        }
        let isDigit = c >= 0x30 && c <= 0x39
        let isLetter = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
        if isDigit {
            throw error(i, "'\(show(i, 2))' (a back reference or octal escape) is outside the file_contexts "
                        + "dialect: write octal as \\0oo or a byte as \\xhh")
        }
        if isLetter {
            let known: Set<UInt8> = Set("AbBzZGKQEpPXCRNhHvVgkcouLlU".utf8)
            if known.contains(c) {
                throw error(i, "'\(show(i, 2))' is a PCRE feature outside the file_contexts dialect "
                            + "(assertions, quoting, properties and case changes are not supported)")
            }
            throw error(i, "unrecognized escape '\(show(i, 2))': escape only punctuation, or use \\d \\s \\w")
        }
        if c >= 0x80 {
            throw error(i, "non-ASCII byte after '\\'")
        }
        return (.byte(c), 2)
    }

    // MARK: Bracket classes

    mutating func bracketClass() throws -> ByteSet {
        let open = i
        if try posixClass(at: i) != nil {
            throw error(i, "POSIX classes such as '[:alpha:]' work only inside a bracket class: write '[[:alpha:]]'")
        }
        i += 1
        var negate = false
        if i < p.count, p[i] == UInt8(ascii: "^") { negate = true; i += 1 }
        var set = ByteSet()
        var first = true
        // The final '$' that libselinux appends can be swallowed by an unterminated class; PCRE2 then reports
        // the missing ']' at the end, and so do we.
        while true {
            guard i < p.count else {
                throw error(open, "missing terminating ']' for the bracket class opened here")
            }
            let c = p[i]
            if c == UInt8(ascii: "]"), !first { i += 1; break }
            first = false
            if c == UInt8(ascii: "["), let (posix, length) = try posixClass(at: i) {
                set.formUnion(posix)
                i += length
                if i + 1 < p.count, p[i] == UInt8(ascii: "-"), p[i + 1] != UInt8(ascii: "]") {
                    throw error(i, "invalid range in bracket class: a POSIX class cannot start a range")
                }
                continue
            }
            let lowStart = i
            let low: UInt8
            if c == UInt8(ascii: "\\") {
                let e = try escape(inClass: true)
                i += e.length
                switch e.value {
                case .byte(let x): low = x
                case .set(let s):
                    set.formUnion(s)
                    if i + 1 < p.count, p[i] == UInt8(ascii: "-"), p[i + 1] != UInt8(ascii: "]") {
                        throw error(lowStart, "invalid range in bracket class: '\(show(lowStart, 2))' is a class, "
                                    + "not a character; escape the '-' as '\\-'")
                    }
                    continue
                }
            } else {
                low = c
                i += 1
            }
            if i + 1 < p.count, p[i] == UInt8(ascii: "-"), p[i + 1] != UInt8(ascii: "]") {
                i += 1
                let high: UInt8
                if p[i] == UInt8(ascii: "["), try posixClass(at: i) != nil {
                    throw error(lowStart, "invalid range in bracket class: a range cannot end in a POSIX class")
                }
                if p[i] == UInt8(ascii: "\\") {
                    let e = try escape(inClass: true)
                    guard case .byte(let x) = e.value else {
                        throw error(i, "invalid range in bracket class: '\(show(i, 2))' is a class, not a character")
                    }
                    high = x
                    i += e.length
                } else {
                    high = p[i]
                    i += 1
                }
                guard low <= high else {
                    throw error(lowStart, "range out of order in bracket class '\(show(lowStart, i - lowStart))': "
                                + "write the lower character first")
                }
                set.insert(range: low...high)
            } else {
                set.insert(low)
            }
        }
        return negate ? set.inverted : set
    }

    /// A POSIX class `[:name:]` or `[:^name:]` at `j`, with its length; nil when the text there is not one.
    func posixClass(at j: Int) throws -> (ByteSet, Int)? {
        guard j + 1 < p.count else { return nil }
        let kind = p[j + 1]
        guard kind == UInt8(ascii: ":") || kind == UInt8(ascii: ".") || kind == UInt8(ascii: "=") else { return nil }
        var k = j + 2
        var negate = false
        if kind == UInt8(ascii: ":"), k < p.count, p[k] == UInt8(ascii: "^") { negate = true; k += 1 }
        let nameStart = k
        while k < p.count, (p[k] >= 0x61 && p[k] <= 0x7A) || (p[k] >= 0x41 && p[k] <= 0x5A) { k += 1 }
        guard k + 1 < p.count, p[k] == kind, p[k + 1] == UInt8(ascii: "]") else { return nil }
        if kind != UInt8(ascii: ":") {
            throw error(j, "POSIX collating elements '\(show(j, k + 2 - j))' are not supported")
        }
        let name = Array(UnsafeBufferPointer(rebasing: p[nameStart..<k]))
        guard let s = ByteSet.posix(name) else {
            throw error(j, "unknown POSIX class '\(show(j, k + 2 - j))': use alpha, digit, alnum, upper, lower, "
                        + "space, blank, punct, print, graph, cntrl, xdigit, word or ascii")
        }
        return (negate ? s.inverted : s, k + 2 - j)
    }
}
