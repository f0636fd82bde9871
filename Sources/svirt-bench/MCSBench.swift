import Foundation
import SELinux
import SVirt

/// `svirt-bench mcs`: allocations per second at several occupancies of c0..c1023, for svirt's allocator and
/// for the random-retry allocator of libvirt and go-selinux (draw two categories, retry on c1 == c2 or on a
/// taken pair, keyed by the level string).
enum MCSBench {
    static func run() {
        do {
            try measure()
        } catch {
            // A failed allocation is a broken benchmark, not a fast one: stop and say so.
            print("mcs: stopped: \(error)")
        }
    }

    static func measure() throws {
        let pool = try CategoryPool(categoryCount: 1024)
        let total = pool.pairCount
        let occupancies: [(String, Double)] = [("at0", 0), ("at50", 0.5), ("at99", 0.99), ("at99_9", 0.999)]
        for (name, occ) in occupancies {
            let ours = try svirtRate(pool: pool, occupancy: occ, total: total)
            let base = retryRate(occupancy: occ, total: total)
            Figure(name: "mcs.alloc.\(name)", value: ours, unit: "allocs/s", baseline: ("random-retry", base)).print()
            Figure(name: "mcs.alloc.\(name).random-retry", value: base, unit: "allocs/s").print()
        }
        // Filling the whole pool: the last 1% against the first 1%.
        var a = MCSAllocator(pool: pool)
        var rng = SystemRandomNumberGenerator()
        let onePercent = total / 100
        var t0 = now()
        for _ in 0..<onePercent { _ = try a.allocate(owner: "bench", now: 0, using: &rng) }
        let first = Double(onePercent) / (now() - t0)
        for _ in onePercent..<(total - onePercent) { _ = try a.allocate(owner: "bench", now: 0, using: &rng) }
        t0 = now()
        for _ in (total - onePercent)..<total { _ = try a.allocate(owner: "bench", now: 0, using: &rng) }
        let last = Double(onePercent) / (now() - t0)
        Figure(name: "mcs.fill.first1pct", value: first, unit: "allocs/s").print()
        Figure(name: "mcs.fill.last1pct", value: last, unit: "allocs/s", baseline: ("svirt-first1pct", first)).print()
    }

    /// Allocations per second when `occupancy` of the pool is taken: fill, then allocate and release a batch.
    static func svirtRate(pool: CategoryPool, occupancy: Double, total: Int) throws -> Double {
        var a = MCSAllocator(pool: pool, coolDown: 0)
        var rng = SystemRandomNumberGenerator()
        let target = Int(Double(total) * occupancy)
        for _ in 0..<target { _ = try a.allocate(owner: "bench", now: 0, using: &rng) }
        let batch = max(1, min(20_000, (total - target) / 2))
        var elapsed = 0.0, count = 0
        while elapsed < 0.3 {
            var got: [SecurityLevel] = []
            got.reserveCapacity(batch)
            let t0 = now()
            for _ in 0..<batch { got.append(try a.allocate(owner: "bench", now: 0, using: &rng)) }
            elapsed += now() - t0
            count += got.count
            // Release with a zero cool-down so the occupancy stays where it was.
            for l in got { _ = try a.release(l, now: -1) }
        }
        return Double(count) / elapsed
    }

    /// The same for the random-retry allocator.
    static func retryRate(occupancy: Double, total: Int) -> Double {
        var taken = Set<String>()
        var rng = SystemRandomNumberGenerator()
        func draw() -> String {
            while true {
                let c1 = Int.random(in: 0..<1024, using: &rng), c2 = Int.random(in: 0..<1024, using: &rng)
                if c1 == c2 { continue }
                let s = "s0:c\(min(c1, c2)),c\(max(c1, c2))"
                if taken.insert(s).inserted { return s }
            }
        }
        let target = Int(Double(total) * occupancy)
        // Fill directly (the fill itself is not timed).
        var all: [String] = []
        all.reserveCapacity(total)
        for j in 1..<1024 { for i in 0..<j { all.append("s0:c\(i),c\(j)") } }
        all.shuffle(using: &rng)
        for s in all.prefix(target) { taken.insert(s) }
        let batch = max(1, min(20_000, (total - target) / 2))
        var elapsed = 0.0, count = 0
        while elapsed < 0.3 {
            var got: [String] = []
            let t0 = now()
            for _ in 0..<batch { got.append(draw()) }
            elapsed += now() - t0
            count += got.count
            for s in got { taken.remove(s) }
        }
        return Double(count) / elapsed
    }
}
