import SVirt

extension HostPolicyAccessChecker: PolicyInspector {
    public var policySource: String { selinux.policySource }

    public func definesBoolean(_ name: String) throws -> Bool { try policyChecker().definesBoolean(name) }

    public func settingBooleans(_ values: [String: Bool]) throws -> any PolicyInspector {
        try policyChecker().settingBooleans(values)
    }

    public func attributes(ofType name: String) throws -> [String] { try policyChecker().attributes(ofType: name) }
}
