/// A set of byte values, 256 bits. The file_contexts regular expressions match bytes, not characters.
struct ByteSet: Hashable, Sendable {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    static let all = ByteSet(w0: ~0, w1: ~0, w2: ~0, w3: ~0)

    init() {}
    init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }
    init(byte: UInt8) { insert(byte) }
    init(range: ClosedRange<UInt8>) { insert(range: range) }

    func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        default: return w3 & bit != 0
        }
    }

    @inline(__always)
    mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        let w = b >> 6
        w0 |= w == 0 ? bit : 0
        w1 |= w == 1 ? bit : 0
        w2 |= w == 2 ? bit : 0
        w3 |= w == 3 ? bit : 0
    }

    mutating func insert(range: ClosedRange<UInt8>) {
        for b in range { insert(b) }
    }

    mutating func formUnion(_ o: ByteSet) {
        w0 |= o.w0; w1 |= o.w1; w2 |= o.w2; w3 |= o.w3
    }

    var inverted: ByteSet { ByteSet(w0: ~w0, w1: ~w1, w2: ~w2, w3: ~w3) }

    func word(_ i: Int) -> UInt64 {
        switch i {
        case 0: return w0
        case 1: return w1
        case 2: return w2
        default: return w3
        }
    }

    // The classes of PCRE2's default ("C" locale) character tables, without Unicode properties.

    static let digit = ByteSet(range: 0x30...0x39)
    static let upper = ByteSet(range: 0x41...0x5A)
    static let lower = ByteSet(range: 0x61...0x7A)
    static var alpha: ByteSet { var s = upper; s.formUnion(lower); return s }
    static var alnum: ByteSet { var s = alpha; s.formUnion(digit); return s }
    static var word: ByteSet { var s = alnum; s.insert(UInt8(ascii: "_")); return s }
    /// `\s` and `[:space:]`: tab, newline, vertical tab, form feed, carriage return, space.
    static var space: ByteSet { var s = ByteSet(range: 0x09...0x0D); s.insert(0x20); return s }
    static var blank: ByteSet { var s = ByteSet(byte: 0x20); s.insert(0x09); return s }
    static var cntrl: ByteSet { var s = ByteSet(range: 0x00...0x1F); s.insert(0x7F); return s }
    static let print = ByteSet(range: 0x20...0x7E)
    static let graph = ByteSet(range: 0x21...0x7E)
    static var punct: ByteSet {
        var s = ByteSet(range: 0x21...0x2F)
        s.insert(range: 0x3A...0x40); s.insert(range: 0x5B...0x60); s.insert(range: 0x7B...0x7E)
        return s
    }
    static var xdigit: ByteSet { var s = digit; s.insert(range: 0x41...0x46); s.insert(range: 0x61...0x66); return s }
    static let ascii = ByteSet(range: 0x00...0x7F)

    /// A POSIX class name as written inside `[: :]`.
    static func posix(_ name: [UInt8]) -> ByteSet? {
        switch String(decoding: name, as: UTF8.self) {
        case "alpha": return alpha
        case "lower": return lower
        case "upper": return upper
        case "alnum": return alnum
        case "ascii": return ascii
        case "blank": return blank
        case "cntrl": return cntrl
        case "digit": return digit
        case "graph": return graph
        case "print": return print
        case "punct": return punct
        case "space": return space
        case "word": return word
        case "xdigit": return xdigit
        default: return nil
        }
    }
}
