/// An `AccessChecker` that can say more about its policy: which booleans it defines, the same policy with some
/// booleans set, and the attributes of a type. The lifecycle needs these where SELinux is off: svirt's own
/// boolean store then decides the booleans, and an unconfined domain (`unconfined_t`) is told apart from a
/// confined one. The policy engine's checker implements it.
public protocol PolicyInspector: AccessChecker {
    /// Where the policy came from, for messages (a path, or "svirt's built-in sVirt policy").
    var policySource: String { get }

    /// Whether the policy defines the boolean `name`.
    func definesBoolean(_ name: String) throws -> Bool

    /// The same policy with the booleans set; names the policy does not define are an error.
    func settingBooleans(_ values: [String: Bool]) throws -> any PolicyInspector

    /// The attributes of the type `name` (empty when the policy has no such type).
    func attributes(ofType name: String) throws -> [String]
}

extension PolicyInspector {
    /// Whether `type` is an unconfined domain: the policy gives it the attribute `unconfined_domain_type`, the
    /// reference policy's mark for domains it lets do anything.
    public func isUnconfinedDomain(_ type: String) throws -> Bool {
        try attributes(ofType: type).contains("unconfined_domain_type")
    }
}
