import Synchronization
import SELinux
import SELinuxPolicy
import SVirt

/// The host's `AccessChecker`: svirt's policy engine over the host's binary policy (or the built-in sVirt
/// policy where the host has none). The policy is read on the first check, so commands that never ask pay
/// nothing; a damaged policy file is an error at that check, naming the file.
public final class HostPolicyAccessChecker: AccessChecker {
    let selinux: HostSELinuxConfiguration
    private let booleans: [String: Bool]
    private let loaded = Mutex<PolicyAccessChecker?>(nil)

    /// `booleans` override the policy's defaults (svirt's own boolean store where SELinux is off).
    public init(_ selinux: HostSELinuxConfiguration, booleans: [String: Bool] = [:]) {
        self.selinux = selinux
        self.booleans = booleans
    }

    /// The checker over the loaded policy.
    public func policyChecker() throws -> PolicyAccessChecker {
        if let c = loaded.withLock({ $0 }) { return c }
        var policy = try selinux.loadPolicy()
        if !booleans.isEmpty {
            let known = booleans.filter { policy.booleanValue($0.key) != nil }
            policy = try policy.settingBooleans(known)
        }
        let c = PolicyAccessChecker(policy: policy, source: selinux.policySource)
        loaded.withLock { $0 = c }
        return c
    }

    public func check(source: SecurityContext, target: SecurityContext, objectClass: String,
                      permissions: [String]) throws -> SVirt.AccessDecision {
        try policyChecker().check(source: source, target: target, objectClass: objectClass, permissions: permissions)
    }

    public func checkEach(source: SecurityContext, target: SecurityContext, objectClass: String,
                          permissions: [String]) throws -> [SVirt.AccessDecision] {
        try policyChecker().checkEach(source: source, target: target, objectClass: objectClass, permissions: permissions)
    }
}
