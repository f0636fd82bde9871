import SVirtTestSupport
import Testing
@testable import SELinux


@Suite("label properties") struct LabelPropertyTests {
    static func randomCategories(_ rng: inout SeededRandom, limit: Int = 1024) -> [Int] {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return []
        case 1: return (0..<Int.random(in: 1...3, using: &rng)).map { _ in Int.random(in: 0..<limit, using: &rng) }
        case 2:
            let a = Int.random(in: 0..<(limit - 1), using: &rng)
            return Array(a...min(limit - 1, a + Int.random(in: 1...40, using: &rng)))
        default: return (0..<Int.random(in: 1...30, using: &rng)).map { _ in Int.random(in: 0..<limit, using: &rng) }
        }
    }

    /// Text for a category list in a random (non-canonical) spelling: shuffled, with duplicates and spans.
    static func spell(_ cats: [Int], _ rng: inout SeededRandom) -> String {
        var items: [String] = []
        var sorted = Array(Set(cats)).sorted()
        while !sorted.isEmpty {
            var run = 1
            while run < sorted.count, sorted[run] == sorted[0] + run { run += 1 }
            if run >= 2, Bool.random(using: &rng) {
                items.append("c\(sorted[0]).c\(sorted[run - 1])")
            } else {
                for c in sorted.prefix(run) { items.append("c\(c)") }
            }
            sorted.removeFirst(run)
        }
        if !items.isEmpty, Bool.random(using: &rng) { items.append(items[0]) }
        items.shuffle(using: &rng)
        return items.joined(separator: ",")
    }

    static func randomLevelText(_ rng: inout SeededRandom) -> (String, Int, Set<Int>) {
        let s = Int.random(in: 0..<16, using: &rng)
        let cats = randomCategories(&rng)
        let spelled = spell(cats, &rng)
        return (spelled.isEmpty ? "s\(s)" : "s\(s):\(spelled)", s, Set(cats))
    }

    @Test("100,000 random contexts round-trip: parse(format(x)) == x and format is stable")
    func roundTrip() throws {
        var rng = SeededRandom(seed: 20261126)
        let names = ["system_u", "user_u", "unconfined_u", "root", "staff_u", "a", "x.y-z_9"]
        let roles = ["system_r", "object_r", "unconfined_r", "staff_r"]
        let types = ["svirt_t", "svirt_image_t", "virt_content_t", "unlabeled_t", "t"]
        for _ in 0..<100_000 {
            var text = "\(names.randomElement(using: &rng)!):\(roles.randomElement(using: &rng)!):\(types.randomElement(using: &rng)!)"
            var expectedRange: (Int, Set<Int>, Int, Set<Int>)?
            if Int.random(in: 0..<5, using: &rng) > 0 {
                let low = Self.randomLevelText(&rng)
                text += ":" + low.0
                if Bool.random(using: &rng) {
                    // A high level that dominates the low one.
                    let hs = Int.random(in: low.1..<16, using: &rng)
                    let extra = Self.randomCategories(&rng)
                    let hcats = low.2.union(extra)
                    let spelled = Self.spell(Array(hcats), &rng)
                    text += "-" + (spelled.isEmpty ? "s\(hs)" : "s\(hs):\(spelled)")
                    expectedRange = (low.1, low.2, hs, hcats)
                } else {
                    expectedRange = (low.1, low.2, low.1, low.2)
                }
            }
            let c = try SecurityContext(parsing: text)
            let formatted = c.description
            let again = try SecurityContext(parsing: formatted)
            #expect(again == c, "\(text) → \(formatted)")
            #expect(again.description == formatted)
            if let (ls, lc, hs, hc) = expectedRange, let r = c.range {
                #expect(r.low.sensitivity == ls && Set(r.low.categories) == lc)
                #expect(r.high.sensitivity == hs && Set(r.high.categories) == hc)
            } else {
                #expect(c.range == nil)
            }
        }
    }

    @Test("dominance agrees with a brute-force set model on random levels")
    func dominanceModel() {
        var rng = SeededRandom(seed: 77)
        for _ in 0..<100_000 {
            // Small universes make equal and comparable pairs common.
            let limit = [4, 8, 70, 1024].randomElement(using: &rng)!
            let a = Set(Self.randomCategories(&rng, limit: limit)), b = Set(Self.randomCategories(&rng, limit: limit))
            let sa = Int.random(in: 0..<3, using: &rng), sb = Int.random(in: 0..<3, using: &rng)
            let la = SecurityLevel(sensitivity: sa, categories: CategorySet(a))
            let lb = SecurityLevel(sensitivity: sb, categories: CategorySet(b))
            let dom = sa >= sb && a.isSuperset(of: b)
            let domby = sb >= sa && b.isSuperset(of: a)
            #expect(la.dominates(lb) == dom)
            #expect(la.isDominated(by: lb) == domby)
            #expect((la == lb) == (sa == sb && a == b))
            #expect(la.isIncomparable(with: lb) == (!dom && !domby))
            let expected: LevelRelation = dom && domby ? .equal : dom ? .dominates : domby ? .dominatedBy : .incomparable
            #expect(la.relation(to: lb) == expected)
            #expect(la.categories.count == a.count)
            #expect(Set(la.categories.union(lb.categories)) == a.union(b))
            #expect(Set(la.categories.intersection(lb.categories)) == a.intersection(b))
            #expect(Set(la.categories.subtracting(lb.categories)) == a.subtracting(b))
            #expect(la.categories.intersects(lb.categories) == !a.isDisjoint(with: b))
        }
    }

    @Test("a category set is canonical: the same members are equal and hash the same however built")
    func canonicalSet() {
        var s = CategorySet([1, 700])
        s.remove(700)
        #expect(s == CategorySet([1]))
        #expect(s.hashValue == CategorySet([1]).hashValue)
        #expect(CategorySet(range: 0...1023).count == 1024)
        #expect(CategorySet([3, 1, 2]).runs == [1...3])
        #expect(CategorySet([63, 64]).description == "c63,c64")
        #expect(CategorySet(range: 60...130).description == "c60.c130")
        #expect(CategorySet([5, 9]).min == 5 && CategorySet([5, 9]).max == 9)
    }
}
