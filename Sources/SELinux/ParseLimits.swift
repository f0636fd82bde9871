/// How many sensitivities and categories a policy defines. Parsing checks levels against these bounds.
///
/// Without a policy, svirt uses the bounds of the reference policies: `s0..s15` and `c0..c1023`.
public struct ParseLimits: Sendable, Hashable {
    /// Sensitivities are `s0 ..< s<sensitivities>`.
    public var sensitivities: Int
    /// Categories are `c0 ..< c<categories>`.
    public var categories: Int

    public init(sensitivities: Int = 16, categories: Int = CategorySet.defaultLimit) {
        self.sensitivities = max(1, min(sensitivities, CategorySet.absoluteLimit))
        self.categories = max(0, min(categories, CategorySet.absoluteLimit))
    }

    public static let `default` = ParseLimits()
}
