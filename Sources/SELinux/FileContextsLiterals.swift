/// The lines whose expression is a plain path (no meta character, no escape, no bracket or brace), kept in a
/// hash table instead of the automaton. Such a line matches exactly its own path (and, because of PCRE's `$`,
/// that path followed by one newline). They are about 40% of a distribution's file_contexts, and keeping them
/// out of the automaton makes loading cheaper and the DFA states smaller.
struct FileContextsLiterals: Sendable {
    /// Open addressing: each slot is -1 or an index into `entries`.
    private var slots: [Int32]
    private var hashes: [UInt64] = []
    private var keys: [UInt8] = []
    private var spans: [(start: Int32, count: Int32)] = []
    /// Per entry, the lines with that path (file order), and after `finish` the winner per file-type query.
    private var lines: [[Int32]] = []
    private(set) var winners: [Int32] = []

    init(expected: Int = 256) {
        var capacity = 256
        while capacity < expected * 2 { capacity *= 2 }
        slots = [Int32](repeating: -1, count: capacity)
    }

    var isEmpty: Bool { lines.isEmpty }

    /// Whether `regex` qualifies: no byte that PCRE reads as anything but itself.
    static func isPlainPath(_ regex: UnsafeBufferPointer<UInt8>) -> Bool {
        for b in regex {
            switch b {
            case UInt8(ascii: "\\"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "?"),
                 UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "|"), UInt8(ascii: "["), UInt8(ascii: "]"),
                 UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "}"):
                return false
            default:
                continue
            }
        }
        return true
    }

    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(b.count)
        var k = 0
        let raw = UnsafeRawBufferPointer(b)
        while k + 8 <= b.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            k += 8
        }
        if k < b.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while k < b.count { tail |= UInt64(b[k]) << shift; shift += 8; k += 1 }
            h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        }
        return h ^ (h >> 32)
    }

    /// The entry of `key`, or nil.
    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int? {
        if lines.isEmpty { return nil }
        let h = FileContextsLiterals.hash(key)
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        return keys.withUnsafeBufferPointer { stored in
            while true {
                let e = Int(slots[s])
                if e < 0 { return nil }
                if hashes[e] == h {
                    let span = spans[e]
                    if Int(span.count) == key.count {
                        var same = true
                        let start = Int(span.start)
                        for j in 0..<key.count where stored[start + j] != key[j] { same = false; break }
                        if same { return e }
                    }
                }
                s = (s + 1) & mask
            }
        }
    }

    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, line: Int32) {
        if let e = find(key) {
            lines[e].append(line)
            return
        }
        let h = FileContextsLiterals.hash(key)
        let e = Int32(lines.count)
        hashes.append(h)
        spans.append((Int32(truncatingIfNeeded: keys.count), Int32(truncatingIfNeeded: key.count)))
        keys.append(contentsOf: key)
        lines.append([line])
        if lines.count * 2 > slots.count {
            rehash(capacity: slots.count * 2)
        } else {
            place(e, hash: h)
        }
    }

    private mutating func place(_ e: Int32, hash h: UInt64) {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while slots[s] >= 0 { s = (s + 1) & mask }
        slots[s] = e
    }

    private mutating func rehash(capacity: Int) {
        slots = [Int32](repeating: -1, count: capacity)
        for (e, h) in hashes.enumerated() { place(Int32(e), hash: h) }
    }

    /// Computes each entry's winner per file-type query: the highest-precedence line whose file type fits.
    mutating func finish(priority: [Int32], modes: [UInt8]) {
        winners = [Int32](repeating: -1, count: lines.count * 8)
        for (e, list) in lines.enumerated() {
            for spec in list {
                let mode = Int(modes[Int(spec)])
                for q in 0..<8 where q == 0 || mode == 0 || mode == q {
                    let w = winners[e * 8 + q]
                    if w < 0 || priority[Int(spec)] > priority[Int(w)] { winners[e * 8 + q] = spec }
                }
            }
        }
    }

    /// The winning line for `key` and file-type query `query`, or -1.
    func winner(_ key: UnsafeBufferPointer<UInt8>, query: Int) -> Int32 {
        guard let e = find(key) else { return -1 }
        return winners[e * 8 + query]
    }
}
