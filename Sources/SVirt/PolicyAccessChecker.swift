import SELinux
import SELinuxPolicy

/// The `AccessChecker` backed by svirt's policy engine: the host's binary policy, or the built-in one.
public struct PolicyAccessChecker: AccessChecker {
    public let policy: PolicyDatabase

    public init(policy: PolicyDatabase) { self.policy = policy }

    /// A checker over svirt's built-in sVirt policy.
    public static func builtIn() throws -> PolicyAccessChecker { PolicyAccessChecker(policy: try BuiltInPolicy.load()) }

    public func check(source: SecurityContext, target: SecurityContext, objectClass: String,
                      permissions: [String]) throws -> AccessDecision {
        let r = try policy.check(source: source, target: target, class: objectClass, permissions: permissions)
        switch r.result {
        case .allow:
            return .allowed
        case .boolean:
            return .denied(Denial(kind: .boolean, detail: r.booleans.map(\.description).joined(separator: " or "),
                                  booleans: r.booleans.map(\.name)))
        case .teRule, .dontaudit:
            let denied = r.permissions.filter { !$0.allowed }.map(\.permission).joined(separator: " ")
            return .denied(Denial(kind: .typeEnforcement,
                                  detail: "allow \(source.type) \(target.type):\(objectClass) { \(denied) };"))
        case .constraint:
            return .denied(Denial(kind: .constraint, detail: r.constraints.map(\.text).joined(separator: "\n")))
        case .rbac:
            return .denied(Denial(kind: .rbac, detail: "allow \(source.role) \(target.role);"))
        case .bounds:
            return .denied(Denial(kind: .bounds, detail: r.permissions.map(\.reason.description).joined(separator: "; ")))
        }
    }
}
