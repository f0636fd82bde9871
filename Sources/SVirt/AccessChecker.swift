import SELinux

/// Answers "may this context do that to that object?" from a policy. The policy engine implements it; the
/// static-label preflight consumes it.
public protocol AccessChecker: Sendable {
    /// Whether `source` may use `permissions` of `objectClass` on `target`.
    func check(source: SecurityContext, target: SecurityContext, objectClass: String,
               permissions: [String]) throws -> AccessDecision

    /// One decision per permission, in order, each with its own reason. The default asks `check` once per
    /// permission; the policy engine answers from one computation.
    func checkEach(source: SecurityContext, target: SecurityContext, objectClass: String,
                   permissions: [String]) throws -> [AccessDecision]
}

extension AccessChecker {
    public func checkEach(source: SecurityContext, target: SecurityContext, objectClass: String,
                          permissions: [String]) throws -> [AccessDecision] {
        try permissions.map { try check(source: source, target: target, objectClass: objectClass, permissions: [$0]) }
    }
}

/// A policy's answer, with the reason for a denial as audit2why gives it.
public enum AccessDecision: Sendable, Hashable {
    case allowed
    case denied(Denial)
    /// The checker could not decide (no policy at hand); `reason` says why.
    case unknown(reason: String)
}

/// Why a policy denies an access.
public struct Denial: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// No allow rule gives the permissions.
        case typeEnforcement = "te"
        /// Turning on one of `booleans` would allow it.
        case boolean
        /// A constraint (for sVirt: the MCS constraint on levels) forbids it.
        case constraint
        case rbac
        case bounds
        case other
    }

    public var kind: Kind
    /// The policy's own words: the constraint text, the missing rule.
    public var detail: String
    public var booleans: [String]

    public init(kind: Kind, detail: String = "", booleans: [String] = []) {
        self.kind = kind
        self.detail = detail
        self.booleans = booleans
    }
}

/// An `AccessChecker` with no policy: every answer is `.unknown`. It stands in until a policy engine is wired
/// in, so the preflight says it did not check rather than pretending to pass.
public struct UnavailableAccessChecker: AccessChecker {
    public var reason: String

    public init(reason: String) { self.reason = reason }

    public func check(source: SecurityContext, target: SecurityContext, objectClass: String,
                      permissions: [String]) throws -> AccessDecision {
        .unknown(reason: reason)
    }
}
