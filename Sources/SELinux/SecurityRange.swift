/// An MLS range `low[-high]`, such as `s0` or `s0-s0:c0.c1023`. The high level dominates the low level.
public struct SecurityRange: Sendable, Hashable, CustomStringConvertible {
    public private(set) var low: SecurityLevel
    public private(set) var high: SecurityLevel

    /// A single-level range.
    public init(_ level: SecurityLevel) {
        low = level
        high = level
    }

    /// A range from `low` to `high`. Throws when `high` does not dominate `low`.
    public init(low: SecurityLevel, high: SecurityLevel) throws {
        guard high.dominates(low) else {
            let text = "\(low)-\(high)"
            throw SELinuxError(
                code: .invalidRange,
                message: "invalid range '\(text)': the high level '\(high)' does not dominate the low level '\(low)'; "
                    + "write the high level with every category of the low level",
                input: text, position: low.description.utf8.count + 1)
        }
        self.low = low
        self.high = high
    }

    /// Parses `low[-high]`. Throws a `SELinuxError` that names the text and the position.
    public init(parsing text: String, limits: ParseLimits = .default) throws {
        var parser = LabelTextParser(text, limits: limits)
        self = try parser.parseWholeRange()
    }

    /// The canonical text: `low` when both levels are equal, `low-high` otherwise.
    public var description: String { low == high ? low.description : "\(low)-\(high)" }

    /// True when `level` lies inside the range: it dominates `low` and `high` dominates it.
    public func contains(_ level: SecurityLevel) -> Bool {
        level.dominates(low) && high.dominates(level)
    }

    /// True when `other` lies inside this range, as the kernel's `mls_range_contains(self, other)`.
    public func contains(_ other: SecurityRange) -> Bool {
        other.low.dominates(low) && high.dominates(other.high)
    }
}
