/// An MLS/MCS level: a sensitivity and a set of categories, written `s0` or `s0:c1,c2` or `s0:c0.c1023`.
///
/// The sensitivity is its number (`s3` is 3); the reference policies order sensitivities by number, and so
/// does svirt. Dominance follows the kernel's `mls_level_dom`.
public struct SecurityLevel: Sendable, Hashable, CustomStringConvertible, Comparable {
    public var sensitivity: Int
    public var categories: CategorySet

    public init(sensitivity: Int = 0, categories: CategorySet = CategorySet()) {
        self.sensitivity = sensitivity
        self.categories = categories
    }

    /// The level `s<sensitivity>:c<first>,c<second>`.
    public init(sensitivity: Int = 0, pair first: Int, _ second: Int) {
        self.init(sensitivity: sensitivity, categories: CategorySet(pair: first, second))
    }

    /// Parses `sN[:categories]`. Throws a `SELinuxError` that names the text and the position.
    public init(parsing text: String, limits: ParseLimits = .default) throws {
        var parser = LabelTextParser(text, limits: limits)
        self = try parser.parseWholeLevel()
    }

    /// The canonical text, with categories sorted and merged as the kernel prints them.
    public var description: String {
        categories.isEmpty ? "s\(sensitivity)" : "s\(sensitivity):\(categories.description)"
    }

    /// `self dom other`: this level's sensitivity is at least the other's and its categories include them all.
    @inlinable public func dominates(_ other: SecurityLevel) -> Bool {
        sensitivity >= other.sensitivity && categories.isSuperset(of: other.categories)
    }

    /// `self domby other`.
    @inlinable public func isDominated(by other: SecurityLevel) -> Bool { other.dominates(self) }

    /// `self incomp other`: neither level dominates the other.
    @inlinable public func isIncomparable(with other: SecurityLevel) -> Bool {
        !dominates(other) && !other.dominates(self)
    }

    /// True when either level dominates the other (equal levels included): the relation that makes two MCS
    /// labels unsafe to hand to two different VMs.
    @inlinable public func isComparable(with other: SecurityLevel) -> Bool { !isIncomparable(with: other) }

    /// A total order for sorting listings: by sensitivity, then by category count, then by the members.
    public static func < (a: SecurityLevel, b: SecurityLevel) -> Bool {
        if a.sensitivity != b.sensitivity { return a.sensitivity < b.sensitivity }
        let ac = Array(a.categories), bc = Array(b.categories)
        if ac.count != bc.count { return ac.count < bc.count }
        return ac.lexicographicallyPrecedes(bc)
    }
}

/// The dominance relation between two levels, as `mls_level_dom`, `domby`, `eq` and `incomp` name it.
public enum LevelRelation: String, Sendable, Hashable {
    case equal = "eq"
    case dominates = "dom"
    case dominatedBy = "domby"
    case incomparable = "incomp"
}

extension SecurityLevel {
    /// How this level relates to `other`.
    public func relation(to other: SecurityLevel) -> LevelRelation {
        let d = dominates(other), db = other.dominates(self)
        switch (d, db) {
        case (true, true): return .equal
        case (true, false): return .dominates
        case (false, true): return .dominatedBy
        case (false, false): return .incomparable
        }
    }
}
