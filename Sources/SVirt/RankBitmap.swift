/// A bitmap over `0..<count` where a set bit means "blocked", with a Fenwick tree over the free bits per
/// 64-bit word. It finds the k-th free position in O(log n), so picking uniformly among the free positions
/// costs the same at 0% and at 99.9% occupancy.
struct RankBitmap: Sendable {
    let count: Int
    private(set) var words: [UInt64]
    /// Fenwick tree (1-based) over the number of free bits in each word.
    private var tree: [Int32]
    private(set) var freeCount: Int

    init(count: Int) {
        self.count = count
        let wordCount = (count + 63) / 64
        words = [UInt64](repeating: 0, count: wordCount)
        if count % 64 != 0, wordCount > 0 {
            // Bits past the end are permanently blocked.
            words[wordCount - 1] = ~UInt64(0) << UInt64(count % 64)
        }
        tree = [Int32](repeating: 0, count: wordCount + 1)
        freeCount = count
        for w in 0..<wordCount {
            let idx = w + 1
            tree[idx] += Int32(64 - words[w].nonzeroBitCount)
            let parent = idx + (idx & -idx)
            if parent <= wordCount { tree[parent] += tree[idx] }
        }
    }

    func isBlocked(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    /// Marks `i` blocked; returns false when it already was.
    @discardableResult
    mutating func block(_ i: Int) -> Bool {
        let w = i >> 6, m: UInt64 = 1 << UInt64(i & 63)
        guard words[w] & m == 0 else { return false }
        words[w] |= m
        freeCount -= 1
        add(w, -1)
        return true
    }

    /// Marks `i` free; returns false when it already was.
    @discardableResult
    mutating func unblock(_ i: Int) -> Bool {
        let w = i >> 6, m: UInt64 = 1 << UInt64(i & 63)
        guard words[w] & m != 0 else { return false }
        words[w] &= ~m
        freeCount += 1
        add(w, 1)
        return true
    }

    private mutating func add(_ word: Int, _ delta: Int32) {
        var idx = word + 1
        while idx < tree.count {
            tree[idx] += delta
            idx += idx & -idx
        }
    }

    /// The position of the k-th free bit (0-based, ascending), for `0 <= k < freeCount`.
    func selectFree(_ k: Int) -> Int {
        precondition(k >= 0 && k < freeCount, "selectFree out of range")
        var remaining = Int32(k)
        var pos = 0
        var step = 1
        while step * 2 < tree.count { step *= 2 }
        while step > 0 {
            let next = pos + step
            if next < tree.count, tree[next] <= remaining {
                pos = next
                remaining -= tree[next]
            }
            step /= 2
        }
        // `pos` words hold `k - remaining` free bits; the answer is in word `pos`.
        return pos * 64 + Self.selectBit(~words[pos], Int(remaining))
    }

    /// The position of the `k`-th set bit of `word` (0-based, from the lowest): halves, quarters, ... by popcount,
    /// six steps whatever `k` is.
    static func selectBit(_ word: UInt64, _ k: Int) -> Int {
        var w = word, k = k, base = 0
        var width = 32
        while width > 0 {
            let low = w & ((1 << UInt64(width)) &- 1)
            let n = low.nonzeroBitCount
            if k >= n {
                k -= n
                w >>= UInt64(width)
                base += width
            } else {
                w = low
            }
            width /= 2
        }
        return base
    }
}
