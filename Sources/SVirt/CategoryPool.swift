import SELinux

/// The categories svirt may hand out, at one sensitivity, and the C(n,2) pairs they form.
///
/// Pairs are numbered in co-lexicographic order of their positions in `categories`: position pair (i, j) with
/// i < j has rank `j*(j-1)/2 + i`. That gives an O(1) rank/unrank with no table.
public struct CategoryPool: Sendable, Hashable, CustomStringConvertible {
    /// The fewest categories a pool may have, as libvirt requires.
    public static let minimumCategories = 8

    /// The sensitivity every allocated level carries.
    public let sensitivity: Int
    /// The usable categories, ascending.
    public let categories: [Int]
    /// The categories set aside for other tools; never handed out.
    public let excluded: CategorySet
    private let positionOf: [Int32]

    /// A pool of the categories of `level` (a process clearance such as `s0:c0.c1023`), minus `excluded`.
    public init(level: SecurityLevel, excluding excluded: CategorySet = CategorySet()) throws {
        let usable = level.categories.subtracting(excluded)
        let cats = Array(usable)
        guard cats.count >= Self.minimumCategories else {
            let from = level.categories.isEmpty ? "'\(level)' has no categories"
                : "'\(level)'\(excluded.isEmpty ? "" : " minus the set-aside categories \(excluded)") leaves \(cats.count)"
            throw SVirtError(.invalidPool,
                             "the category pool is too small: \(from), and svirt needs at least "
                             + "\(Self.minimumCategories) categories; give a wider range with --categories (e.g. c0.c1023)")
        }
        self.sensitivity = level.sensitivity
        self.categories = cats
        self.excluded = excluded
        var pos = [Int32](repeating: -1, count: (cats.last ?? 0) + 1)
        for (i, c) in cats.enumerated() { pos[c] = Int32(i) }
        self.positionOf = pos
    }

    /// The pool `c0..c<count-1>` at `s0`.
    public init(categoryCount count: Int) throws {
        try self.init(level: SecurityLevel(sensitivity: 0, categories: CategorySet(range: 0...(max(count, 1) - 1))))
    }

    /// How many distinct pairs the pool has: C(n, 2).
    public var pairCount: Int { categories.count * (categories.count - 1) / 2 }

    /// The pool's categories as a set.
    public var categorySet: CategorySet { CategorySet(categories) }

    /// The clearance the pool spans, e.g. `s0:c0.c1023`.
    public var level: SecurityLevel { SecurityLevel(sensitivity: sensitivity, categories: categorySet) }

    public var description: String {
        "\(level)" + (excluded.isEmpty ? "" : " (set aside: \(excluded))")
    }

    /// The position of a category in the pool, or nil when the pool does not have it.
    public func position(of category: Int) -> Int? {
        guard category >= 0, category < positionOf.count else { return nil }
        let p = positionOf[category]
        return p < 0 ? nil : Int(p)
    }

    /// The pair with the given rank, as categories (lower first).
    public func pair(atRank rank: Int) -> (Int, Int) {
        let (i, j) = Self.unrank(rank)
        return (categories[i], categories[j])
    }

    /// The level of the pair with the given rank.
    public func level(atRank rank: Int) -> SecurityLevel {
        let (a, b) = pair(atRank: rank)
        return SecurityLevel(sensitivity: sensitivity, pair: a, b)
    }

    /// The rank of a pair of categories, or nil when either is not in the pool or they are equal.
    public func rank(of a: Int, _ b: Int) -> Int? {
        guard a != b, let pa = position(of: a), let pb = position(of: b) else { return nil }
        return Self.rank(min(pa, pb), max(pa, pb))
    }

    /// The rank of a two-category level at the pool's sensitivity, or nil when it is not a pool pair.
    public func rank(of level: SecurityLevel) -> Int? {
        guard level.sensitivity == sensitivity, level.categories.count == 2 else { return nil }
        var it = level.categories.makeIterator()
        guard let a = it.next(), let b = it.next() else { return nil }
        return rank(of: a, b)
    }

    static func rank(_ i: Int, _ j: Int) -> Int { j * (j - 1) / 2 + i }

    static func unrank(_ r: Int) -> (Int, Int) {
        // j is the largest value with j*(j-1)/2 <= r.
        var j = Int((1.0 + (1.0 + 8.0 * Double(r)).squareRoot()) / 2.0)
        while j * (j - 1) / 2 > r { j -= 1 }
        while (j + 1) * j / 2 <= r { j += 1 }
        return (r - j * (j - 1) / 2, j)
    }
}
