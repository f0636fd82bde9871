import SELinux
import SELinuxPolicy

/// The `AccessChecker` backed by svirt's policy engine: the host's binary policy, or the built-in one.
public struct PolicyAccessChecker: AccessChecker {
    public let policy: PolicyDatabase
    /// Where the policy came from, for messages: a path, or svirt's built-in policy.
    public var source: String

    public init(policy: PolicyDatabase, source: String = "the loaded policy") {
        self.policy = policy
        self.source = source
    }

    /// How messages name svirt's built-in sVirt policy.
    public static let builtInSource = "svirt's built-in sVirt policy"

    /// A checker over svirt's built-in sVirt policy.
    public static func builtIn() throws -> PolicyAccessChecker {
        PolicyAccessChecker(policy: try BuiltInPolicy.load(), source: builtInSource)
    }

    /// One decision per permission from a single computation, each refusal with the reason `check` would give
    /// for that permission alone.
    public func checkEach(source: SecurityContext, target: SecurityContext, objectClass: String,
                          permissions: [String]) throws -> [AccessDecision] {
        let r = try policy.check(source: source, target: target, class: objectClass, permissions: permissions)
        return r.permissions.map { v in
            switch v.reason {
            case .allowed:
                return .allowed
            case .typeEnforcement:
                return .denied(Denial(kind: .typeEnforcement,
                                      detail: "allow \(source.type) \(target.type):\(objectClass) { \(v.permission) };"))
            case .boolean(let b):
                return .denied(Denial(kind: .boolean, detail: b.map(\.description).joined(separator: " or "), booleans: b.map(\.name)))
            case .constraint(let c):
                return .denied(Denial(kind: .constraint, detail: c.map(\.text).joined(separator: "\n")))
            case .rbac:
                return .denied(Denial(kind: .rbac, detail: "allow \(source.role) \(target.role);"))
            case .bounds:
                return .denied(Denial(kind: .bounds, detail: v.reason.description))
            case .unknown(let h):
                return v.allowed ? .allowed : .denied(Denial(kind: .other, detail: "\(v.reason) (handle_unknown \(h))"))
            }
        }
    }

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
