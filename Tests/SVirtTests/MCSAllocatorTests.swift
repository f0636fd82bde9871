import Testing
@testable import SELinux
@testable import SVirt

/// Counts the 64-bit words drawn, to show that a pick does not retry.
struct CountingRNG: RandomNumberGenerator {
    var inner = SeededGenerator(seed: 42)
    var draws = 0
    mutating func next() -> UInt64 {
        draws += 1
        return inner.next()
    }
}

func level(_ s: String) throws -> SecurityLevel { try SecurityLevel(parsing: s) }

@Suite("MCS allocator") struct MCSAllocatorTests {
    @Test("rank and unrank are inverse over every pair of c0..c1023")
    func rankUnrank() throws {
        let pool = try CategoryPool(categoryCount: 1024)
        #expect(pool.pairCount == 523_776)
        for r in 0..<pool.pairCount {
            let (a, b) = pool.pair(atRank: r)
            #expect(a < b)
            #expect(pool.rank(of: a, b) == r)
        }
        #expect(pool.rank(of: 5, 5) == nil)
        #expect(pool.rank(of: 1, 1024) == nil)
    }

    @Test("allocating all 523,776 pairs gives distinct pairs, then a typed exhausted error with the counts")
    func fillWholePool() throws {
        let pool = try CategoryPool(categoryCount: 1024)
        var a = MCSAllocator(pool: pool)
        var rng = SeededGenerator(seed: 1)
        var seen = Set<Int>()
        for i in 0..<pool.pairCount {
            let l = try a.allocate(owner: "vm\(i)", now: 0, using: &rng)
            let r = try #require(pool.rank(of: l))
            #expect(seen.insert(r).inserted, "pair \(l) handed out twice")
        }
        #expect(seen.count == 523_776)
        #expect(a.freePairs == 0)
        do {
            _ = try a.allocate(owner: "one-too-many", now: 0, using: &rng)
            Issue.record("a full pool handed out a level")
        } catch let e as SVirtError {
            #expect(e.code == .exhausted)
            #expect(e.message.contains("523776 pairs"))
            #expect(e.message.contains("523776 reservations"))
        }
    }

    @Test("a pick draws one random number whatever the occupancy, so it never retries")
    func noRetries() throws {
        let pool = try CategoryPool(categoryCount: 1024)
        var a = MCSAllocator(pool: pool)
        var fill = SeededGenerator(seed: 9)
        for i in 0..<(pool.pairCount - 600) { _ = try a.allocate(owner: "f\(i)", now: 0, using: &fill) }
        // 99.9% full: the random-retry algorithm would need ~1000 draws per pick here.
        var rng = CountingRNG()
        for i in 0..<500 { _ = try a.allocate(owner: "m\(i)", now: 0, using: &rng) }
        #expect(rng.draws <= 510, "\(rng.draws) draws for 500 picks")
    }

    @Test("picks are uniform among the free pairs")
    func uniform() throws {
        let pool = try CategoryPool(categoryCount: 8)
        var rng = SeededGenerator(seed: 3)
        var base = MCSAllocator(pool: pool, coolDown: 0)
        // Block 10 of the 28 pairs.
        for r in stride(from: 0, to: 28, by: 3) { try base.reserve(Reservation(level: pool.level(atRank: r), owner: "x", kind: .admin, createdAt: 0)) }
        let free = base.freePairs
        #expect(free == 18)
        var counts: [SecurityLevel: Int] = [:]
        let trials = 36_000
        for _ in 0..<trials {
            var a = base
            let l = try a.allocate(owner: "u", now: 0, using: &rng)
            counts[l, default: 0] += 1
        }
        #expect(counts.count == free)
        let expected = Double(trials) / Double(free)
        var chi = 0.0
        for (_, c) in counts { chi += (Double(c) - expected) * (Double(c) - expected) / expected }
        // 17 degrees of freedom: p = 0.001 at 40.8.
        #expect(chi < 40.8, "chi-square \(chi)")
    }

    @Test("a reserved level that dominates or is dominated by another is refused, naming the holder")
    func dominanceConflicts() throws {
        let pool = try CategoryPool(categoryCount: 1024)
        var a = MCSAllocator(pool: pool)
        try a.reserve(Reservation(level: try level("s0:c1,c2"), owner: "Dynamic_VM1", kind: .domain, createdAt: 0))
        for (text, relation) in [("s0:c1,c2,c3", "dominates"), ("s0:c1", "is dominated by"), ("s0:c2,c1", "already reserved"),
                                 ("s0:c0.c1023", "dominates"), ("s1:c1,c2", "dominates")] {
            do {
                try a.reserve(Reservation(level: try level(text), owner: "Static_VM", kind: .domain, createdAt: 0))
                Issue.record("\(text) was reserved beside s0:c1,c2")
            } catch let e as SVirtError {
                #expect(e.code == .levelConflict)
                #expect(e.message.contains("VM 'Dynamic_VM1'"), "\(e.message)")
                #expect(e.message.contains(relation), "\(e.message)")
            }
        }
        // Incomparable levels are fine.
        try a.reserve(Reservation(level: try level("s0:c1,c3"), owner: "B", kind: .admin, createdAt: 0))
        try a.reserve(Reservation(level: try level("s0:c2,c3,c4"), owner: "C", kind: .admin, createdAt: 0))
    }

    @Test("a level without categories cannot be reserved")
    func noCategories() throws {
        var a = MCSAllocator(pool: try CategoryPool(categoryCount: 64))
        #expect(throws: SVirtError.self) { try a.reserve(Reservation(level: try level("s0"), owner: "x", kind: .admin, createdAt: 0)) }
    }

    @Test("pairs inside a reserved triple and pairs holding a reserved single category are never handed out")
    func reservationsBlockPairs() throws {
        let pool = try CategoryPool(categoryCount: 10)
        var a = MCSAllocator(pool: pool)
        try a.reserve(Reservation(level: try level("s0:c1,c2,c3"), owner: "static", kind: .domain, createdAt: 0))
        try a.reserve(Reservation(level: try level("s0:c7"), owner: "single", kind: .domain, createdAt: 0))
        // 45 pairs - 3 inside the triple - 9 holding c7 = 33.
        #expect(a.freePairs == 33)
        var rng = SeededGenerator(seed: 5)
        for i in 0..<33 {
            let l = try a.allocate(owner: "d\(i)", now: 0, using: &rng)
            #expect(!l.categories.isSubset(of: CategorySet([1, 2, 3])))
            #expect(!l.categories.contains(7))
            #expect(l.isIncomparable(with: try level("s0:c1,c2,c3")))
        }
        #expect(throws: SVirtError.self) { _ = try a.allocate(owner: "x", now: 0, using: &rng) }
        // Releasing the triple frees exactly its three pairs (the cool-down only holds pairs that dominate it).
        try a.release(try level("s0:c1,c2,c3"), now: 0)
        #expect(a.freePairs == 3)
    }

    @Test("a released pair is not handed out again until the rest of the pool is used up")
    func coolDownUntilExhausted() throws {
        let pool = try CategoryPool(categoryCount: 8)
        var a = MCSAllocator(pool: pool, coolDown: 1000)
        var rng = SeededGenerator(seed: 8)
        let first = try a.allocate(owner: "A", now: 0, using: &rng)
        try a.release(first, now: 1)
        var handedOut: [SecurityLevel] = []
        for i in 0..<27 { handedOut.append(try a.allocate(owner: "B\(i)", now: 2, using: &rng)) }
        #expect(!handedOut.contains(first))
        // Now only the cooling pair is left: it goes next.
        #expect(try a.allocate(owner: "C", now: 3, using: &rng) == first)
        #expect(throws: SVirtError.self) { _ = try a.allocate(owner: "D", now: 3, using: &rng) }
    }

    @Test("the oldest cooling pair is handed out first when nothing else is free")
    func oldestCoolingFirst() throws {
        let pool = try CategoryPool(categoryCount: 8)
        var a = MCSAllocator(pool: pool, coolDown: 1000)
        var rng = SeededGenerator(seed: 11)
        var all: [SecurityLevel] = []
        for i in 0..<28 { all.append(try a.allocate(owner: "v\(i)", now: 0, using: &rng)) }
        try a.release(all[5], now: 10)
        try a.release(all[9], now: 5)
        try a.release(all[2], now: 20)
        #expect(try a.allocate(owner: "n1", now: 30, using: &rng) == all[9])
        #expect(try a.allocate(owner: "n2", now: 30, using: &rng) == all[5])
        #expect(try a.allocate(owner: "n3", now: 30, using: &rng) == all[2])
    }

    @Test("after the cool-down a released pair is free again")
    func coolDownExpires() throws {
        let pool = try CategoryPool(categoryCount: 8)
        var a = MCSAllocator(pool: pool, coolDown: 100)
        var rng = SeededGenerator(seed: 2)
        let l = try a.allocate(owner: "A", now: 0, using: &rng)
        try a.release(l, now: 0)
        #expect(a.freePairs == 27)
        #expect(a.expiredCooling(now: 100).count == 1)
        _ = try a.allocate(owner: "B", now: 100, using: &rng)
        // The expired level was unblocked before the pick: 28 - 1 taken.
        #expect(a.freePairs == 27)
    }

    @Test("a released single category cools every pair that holds it")
    func singleCategoryCooling() throws {
        let pool = try CategoryPool(categoryCount: 8)
        var a = MCSAllocator(pool: pool, coolDown: 100)
        try a.reserve(Reservation(level: try level("s0:c3"), owner: "single", kind: .admin, createdAt: 0))
        #expect(a.freePairs == 21)
        try a.release(try level("s0:c3"), now: 0)
        #expect(a.freePairs == 21)
        #expect(a.statistics().coolingPairs == 7)
    }

    @Test("set-aside categories are never handed out, and a pool needs 8 categories")
    func partition() throws {
        let pool = try CategoryPool(level: try level("s0:c0.c1023"), excluding: CategorySet(range: 16...1023))
        #expect(pool.categories.count == 16)
        var a = MCSAllocator(pool: pool)
        var rng = SeededGenerator(seed: 4)
        for i in 0..<120 {
            let l = try a.allocate(owner: "v\(i)", now: 0, using: &rng)
            #expect(l.categories.max ?? 0 < 16)
        }
        #expect(throws: SVirtError.self) { _ = try a.allocate(owner: "x", now: 0, using: &rng) }
        do {
            _ = try CategoryPool(level: try level("s0:c0.c1023"), excluding: CategorySet(range: 7...1023))
            Issue.record("a 7-category pool was accepted")
        } catch let e as SVirtError {
            #expect(e.code == .invalidPool)
            #expect(e.message.contains("leaves 7"))
            #expect(e.message.contains("at least 8"))
        }
        #expect(throws: SVirtError.self) { _ = try CategoryPool(level: try level("s0")) }
    }

    @Test("the pool's sensitivity is the allocated levels' sensitivity")
    func sensitivity() throws {
        let pool = try CategoryPool(level: try level("s3:c0.c9"))
        var a = MCSAllocator(pool: pool)
        var rng = SeededGenerator(seed: 6)
        #expect(try a.allocate(owner: "v", now: 0, using: &rng).sensitivity == 3)
    }
}

@Suite("in-memory level registry") struct InMemoryLevelRegistryTests {
    @Test("allocations are distinct, reservations conflict by dominance, and releases cool down")
    func basics() async throws {
        let reg = InMemoryLevelRegistry(seed: 1, coolDown: 1000)
        let pool = try CategoryPool(categoryCount: 8)
        var got = Set<SecurityLevel>()
        for i in 0..<28 { got.insert(try await reg.allocateLevel(owner: "v\(i)", kind: .domain, process: nil, pool: pool)) }
        #expect(got.count == 28)
        await #expect(throws: SVirtError.self) { _ = try await reg.allocateLevel(owner: "x", kind: .admin, process: nil, pool: pool) }
        let one = try #require(got.first)
        let released = try await reg.releaseLevel(one)
        #expect(released.level == one)
        #expect(try await reg.reservations().count == 27)
        await #expect(throws: SVirtError.self) { try await reg.reserveLevel(one.categories.max.map { SecurityLevel(sensitivity: 0, categories: CategorySet([$0])) } ?? one, owner: "y", kind: .admin, process: nil) }
    }

    @Test("the in-word select finds the k-th set bit of any word, as counting bit by bit does")
    func selectBit() {
        var rng = SeededGenerator(seed: 17)
        var words: [UInt64] = [0, 1, 1 << 63, ~0, 0xAAAA_AAAA_AAAA_AAAA, 0x8000_0000_0000_0001]
        for _ in 0..<2000 { words.append(rng.next() & rng.next()) }
        for w in words {
            var positions: [Int] = []
            for b in 0..<64 where w & (1 << UInt64(b)) != 0 { positions.append(b) }
            for (k, p) in positions.enumerated() { #expect(RankBitmap.selectBit(w, k) == p, "word \(w) k \(k)") }
        }
    }

    @Test("a pair built at once equals, and hashes as, the same pair built category by category")
    func pairSet() {
        var rng = SeededGenerator(seed: 23)
        for _ in 0..<3000 {
            let a = Int(rng.next() % 1024), b = Int(rng.next() % 1024)
            let fast = CategorySet(pair: a, b), slow = CategorySet([a, b])
            #expect(fast == slow && fast.hashValue == slow.hashValue && fast.rawWords == slow.rawWords, "c\(a),c\(b)")
        }
        #expect(CategorySet(pair: 3, 70_000) == CategorySet([3]))
        // Equal sets hash equally however they were built (a removal that empties high words trims them).
        var s = CategorySet([1, 900])
        s.remove(900)
        #expect(s == CategorySet([1]) && s.hashValue == CategorySet([1]).hashValue)
    }
}
