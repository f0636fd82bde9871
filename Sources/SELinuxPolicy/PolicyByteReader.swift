import SELinux

/// A bounds-checked little-endian cursor over a binary policy. Every read checks the remaining length first
/// and throws a `PolicyFormatError` that names the offset and the section; nothing here can trap.
struct PolicyByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset = 0
    var section = "header"

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var remaining: Int { base.count - offset }

    func error(_ code: PolicyFormatError.Code, at: Int? = nil, expected: String, found: String) -> PolicyFormatError {
        PolicyFormatError(code: code, offset: at ?? offset, section: section, expected: expected, found: found)
    }

    @inline(__always) mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw error(.truncated, expected: "\(n) more bytes for \(what())",
                        found: remaining == 0 ? "the end of the file" : "only \(remaining) bytes left")
        }
    }

    @inline(__always) mutating func u8(_ what: @autoclosure () -> String = "a byte") throws -> UInt8 {
        try need(1, what())
        let v = base.load(fromByteOffset: offset, as: UInt8.self)
        offset += 1
        return v
    }

    @inline(__always) mutating func u16(_ what: @autoclosure () -> String = "a 16-bit number") throws -> UInt16 {
        try need(2, what())
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        offset += 2
        return UInt16(littleEndian: v)
    }

    @inline(__always) mutating func u32(_ what: @autoclosure () -> String = "a 32-bit number") throws -> UInt32 {
        try need(4, what())
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        offset += 4
        return UInt32(littleEndian: v)
    }

    @inline(__always) mutating func u64(_ what: @autoclosure () -> String = "a 64-bit number") throws -> UInt64 {
        try need(8, what())
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: v)
    }

    /// Raw bytes, for addresses kept in network order.
    mutating func bytes(_ n: Int, _ what: String) throws -> [UInt8] {
        try need(n, what)
        let out = Array(UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)]))
        offset += n
        return out
    }

    /// A count that prefixes `minimumItemSize`-byte records: it must fit in the remaining bytes, so a hostile
    /// count can never make the reader allocate more than the file could describe.
    mutating func count(_ what: String, minimumItemSize: Int) throws -> Int {
        let at = offset
        let n = Int(try u32("the number of \(what)"))
        guard minimumItemSize <= 0 || n <= remaining / minimumItemSize else {
            throw error(.tooLarge, at: at, expected: "at most \(remaining / max(1, minimumItemSize)) \(what) in the "
                        + "\(remaining) bytes left", found: "\(n)")
        }
        return n
    }

    /// A string of `length` bytes (no terminator in the file). Names must be non-empty, printable UTF-8.
    mutating func string(length: Int, _ what: String, allowEmpty: Bool = false) throws -> String {
        let at = offset
        guard length > 0 || allowEmpty else {
            throw error(.malformed, expected: "a non-empty \(what)", found: "an empty one")
        }
        guard length <= 65_536 else {
            throw error(.tooLarge, expected: "a \(what) of at most 65536 bytes", found: "length \(length)")
        }
        try need(length, what)
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + length)])
        for b in slice where b == 0 {
            throw error(.malformed, at: at, expected: "a \(what) without NUL bytes", found: "a NUL byte")
        }
        offset += length
        return String(decoding: slice, as: UTF8.self)
    }

    /// An `ebitmap`: map size 64, a high bit, and nodes of (start bit, 64-bit map) in ascending order.
    /// Bits above `limit` are refused here, so the result is never larger than `limit` bits.
    mutating func ebitmap(_ what: String, limit: Int = 1 << 17) throws -> CategorySet {
        let at = offset
        let mapSize = try u32("the map size of \(what)")
        guard mapSize == 64 else {
            throw error(.malformed, at: at, expected: "map size 64 in \(what)", found: "\(mapSize)")
        }
        let highBit = Int(try u32("the high bit of \(what)"))
        let nodes = try count("nodes of \(what)", minimumItemSize: 12)
        if highBit == 0 {
            guard nodes == 0 else {
                throw error(.malformed, at: at, expected: "no nodes in \(what) with high bit 0", found: "\(nodes) nodes")
            }
            return CategorySet()
        }
        guard highBit & 63 == 0 else {
            throw error(.malformed, at: at, expected: "a high bit that is a multiple of 64 in \(what)", found: "\(highBit)")
        }
        guard highBit <= limit + 64 else {
            throw error(.outOfRange, at: at, expected: "at most \(limit) bits in \(what)", found: "high bit \(highBit)")
        }
        var words = [UInt64](repeating: 0, count: highBit / 64)
        var last = -1
        for _ in 0..<nodes {
            let nodeAt = offset
            let start = Int(try u32("a node start bit of \(what)"))
            let map = try u64("a node map of \(what)")
            guard start & 63 == 0 else {
                throw error(.malformed, at: nodeAt, expected: "a start bit that is a multiple of 64 in \(what)", found: "\(start)")
            }
            guard start <= highBit - 64 else {
                throw error(.outOfRange, at: nodeAt, expected: "a start bit below the high bit \(highBit) in \(what)",
                            found: "\(start)")
            }
            guard start > last else {
                throw error(.malformed, at: nodeAt, expected: "ascending start bits in \(what)", found: "\(start) after \(last)")
            }
            guard map != 0 else {
                throw error(.malformed, at: nodeAt, expected: "a non-empty node in \(what)", found: "an empty map at bit \(start)")
            }
            words[start / 64] = map
            last = start
        }
        return CategorySet(words: words)
    }
}
