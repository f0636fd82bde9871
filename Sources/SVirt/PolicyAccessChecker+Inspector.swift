import SELinuxPolicy

extension PolicyAccessChecker: PolicyInspector {
    public var policySource: String { source }

    public func definesBoolean(_ name: String) throws -> Bool { policy.booleanValue(name) != nil }

    public func settingBooleans(_ values: [String: Bool]) throws -> any PolicyInspector {
        PolicyAccessChecker(policy: try policy.settingBooleans(values), source: source)
    }

    public func attributes(ofType name: String) throws -> [String] { policy.attributes(of: name) }
}
