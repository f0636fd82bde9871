/// A set of MCS/MLS categories (`c0`, `c1`, ...) stored as a compact bitset.
///
/// The storage is canonical: trailing zero words are dropped, so two sets with the same members are equal and
/// hash the same whatever way they were built.
public struct CategorySet: Sendable, Hashable, Sequence {
    /// The number of categories a policy has when nothing else is known (`c0..c1023`).
    public static let defaultLimit = 1024
    /// The largest category number svirt accepts anywhere, to bound memory on hostile input.
    public static let absoluteLimit = 1 << 16

    @usableFromInline var words: [UInt64]

    public init() { words = [] }

    /// A set holding the given categories. Numbers outside `0..<absoluteLimit` are ignored.
    public init<S: Sequence>(_ categories: S) where S.Element == Int {
        words = []
        for c in categories { insert(c) }
    }

    /// The set `low...high`.
    public init(range: ClosedRange<Int>) {
        words = []
        insert(range: range)
    }

    /// The set `{first, second}`, built with one allocation (the allocator makes one per level it hands out).
    public init(pair first: Int, _ second: Int) {
        let a = Swift.max(0, Swift.min(first, Self.absoluteLimit - 1)), b = Swift.max(0, Swift.min(second, Self.absoluteLimit - 1))
        guard a == first, b == second else {
            self.init([first, second])
            return
        }
        let count = Swift.max(a, b) >> 6 + 1
        let built = [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = 0 }
            buffer[a >> 6] |= 1 << UInt64(a & 63)
            buffer[b >> 6] |= 1 << UInt64(b & 63)
            initialized = count
        }
        self.init(words: built)
    }

    /// Hashes the non-zero words with their positions: equal sets hash equally, and a pair of categories costs
    /// two words of hashing instead of all of them up to the higher one.
    public func hash(into hasher: inout Hasher) {
        for (i, w) in words.enumerated() where w != 0 {
            hasher.combine(i)
            hasher.combine(w)
        }
    }

    /// Builds a set from raw 64-bit words, bit `i` of word `w` being category `64*w + i`.
    public init(words: [UInt64]) {
        self.words = words
        trim()
    }

    /// The raw words, bit `i` of word `w` being category `64*w + i`; no trailing zero words.
    public var rawWords: [UInt64] { words }

    @inlinable public var isEmpty: Bool { words.isEmpty }

    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The highest category in the set.
    public var max: Int? {
        guard let last = words.last else { return nil }
        return (words.count - 1) * 64 + (63 - last.leadingZeroBitCount)
    }

    /// The lowest category in the set.
    public var min: Int? {
        for (i, w) in words.enumerated() where w != 0 { return i * 64 + w.trailingZeroBitCount }
        return nil
    }

    @inlinable public func contains(_ category: Int) -> Bool {
        guard category >= 0 else { return false }
        let w = category >> 6
        guard w < words.count else { return false }
        return words[w] & (1 << UInt64(category & 63)) != 0
    }

    public mutating func insert(_ category: Int) {
        guard category >= 0, category < Self.absoluteLimit else { return }
        let w = category >> 6
        if w >= words.count { words.append(contentsOf: repeatElement(0, count: w - words.count + 1)) }
        words[w] |= 1 << UInt64(category & 63)
    }

    public mutating func insert(range: ClosedRange<Int>) {
        let lo = Swift.max(range.lowerBound, 0)
        let hi = Swift.min(range.upperBound, Self.absoluteLimit - 1)
        guard lo <= hi else { return }
        let lastWord = hi >> 6
        if lastWord >= words.count { words.append(contentsOf: repeatElement(0, count: lastWord - words.count + 1)) }
        var c = lo
        while c <= hi {
            let w = c >> 6, bit = c & 63
            let span = Swift.min(64 - bit, hi - c + 1)
            let mask: UInt64 = span == 64 ? ~0 : ((1 << UInt64(span)) - 1) << UInt64(bit)
            words[w] |= mask
            c += span
        }
    }

    public mutating func remove(_ category: Int) {
        guard category >= 0 else { return }
        let w = category >> 6
        guard w < words.count else { return }
        words[w] &= ~(1 << UInt64(category & 63))
        trim()
    }

    /// True when every category of `other` is in this set.
    @inlinable public func isSuperset(of other: CategorySet) -> Bool {
        if other.words.count > words.count { return false }
        for i in other.words.indices where other.words[i] & ~words[i] != 0 { return false }
        return true
    }

    @inlinable public func isSubset(of other: CategorySet) -> Bool { other.isSuperset(of: self) }

    public func union(_ other: CategorySet) -> CategorySet {
        var (a, b) = words.count >= other.words.count ? (words, other.words) : (other.words, words)
        for i in b.indices { a[i] |= b[i] }
        b = []
        return CategorySet(words: a)
    }

    public func intersection(_ other: CategorySet) -> CategorySet {
        let n = Swift.min(words.count, other.words.count)
        var out = [UInt64](repeating: 0, count: n)
        for i in 0..<n { out[i] = words[i] & other.words[i] }
        return CategorySet(words: out)
    }

    public func subtracting(_ other: CategorySet) -> CategorySet {
        var out = words
        for i in 0..<Swift.min(words.count, other.words.count) { out[i] &= ~other.words[i] }
        return CategorySet(words: out)
    }

    public func intersects(_ other: CategorySet) -> Bool {
        for i in 0..<Swift.min(words.count, other.words.count) where words[i] & other.words[i] != 0 { return true }
        return false
    }

    /// The members as maximal runs of consecutive categories, in ascending order.
    public var runs: [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        var start = -1, prev = -2
        for c in self {
            if c == prev + 1 { prev = c; continue }
            if start >= 0 { out.append(start...prev) }
            start = c; prev = c
        }
        if start >= 0 { out.append(start...prev) }
        return out
    }

    /// The canonical text the kernel prints: runs of three or more become `cA.cB`, shorter runs are listed
    /// with commas (`c0.c3,c5,c6`). Empty for an empty set.
    public var description: String {
        var parts: [String] = []
        for r in runs {
            if r.count >= 3 {
                parts.append("c\(r.lowerBound).c\(r.upperBound)")
            } else {
                for c in r { parts.append("c\(c)") }
            }
        }
        return parts.joined(separator: ",")
    }

    public struct Iterator: IteratorProtocol {
        let words: [UInt64]
        var index = 0
        var current: UInt64
        init(words: [UInt64]) {
            self.words = words
            current = words.first ?? 0
        }
        public mutating func next() -> Int? {
            while current == 0 {
                index += 1
                guard index < words.count else { return nil }
                current = words[index]
            }
            let bit = current.trailingZeroBitCount
            current &= current - 1
            return index * 64 + bit
        }
    }

    public func makeIterator() -> Iterator { Iterator(words: words) }

    private mutating func trim() {
        while let last = words.last, last == 0 { words.removeLast() }
    }
}

extension CategorySet: CustomStringConvertible {}
