import SELinux

/// An access vector: one bit per permission of a class, as the kernel computes it.
public struct AccessVector: Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let all = AccessVector(rawValue: ~0)
    public static let none = AccessVector(rawValue: 0)
    @inlinable public func contains(bit: Int) -> Bool { bit >= 0 && bit < 32 && rawValue & (1 << UInt32(bit)) != 0 }
    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// The result of `security_compute_av` for one source, target and class: which permissions are allowed, which
/// allowed ones are audited (auditallow), and which denied ones are audited (auditdeny; the complement of
/// dontaudit).
public struct AccessDecision: Sendable, Hashable {
    public var tclass: PolicyClass
    public var allowed: AccessVector
    public var auditAllow: AccessVector
    public var auditDeny: AccessVector
    /// The source type is permissive: denials are logged but not enforced.
    public var permissive: Bool

    /// The permission names set in a vector.
    public func names(_ v: AccessVector) -> [String] {
        var out: [String] = []
        for (bit, name) in tclass.permissionsByBit where v.contains(bit: bit) { out.append(name) }
        return out
    }
    public var allowedPermissions: [String] { names(allowed) }
}

/// What audit2why says about a request: the first reason in its order (TE, constraint, RBAC, bounds).
public enum AuditResult: String, Sendable, Hashable, Codable, CaseIterable {
    case allow = "ALLOW"
    case dontaudit = "DONTAUDIT"
    case teRule = "TERULE"
    case boolean = "BOOLEAN"
    case constraint = "CONSTRAINT"
    case rbac = "RBAC"
    case bounds = "BOUNDS"
}

/// A boolean and the value it would need.
public struct BooleanSetting: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    public var value: Bool
    public init(name: String, value: Bool) { self.name = name; self.value = value }
    public var description: String { "\(name)=\(value ? 1 : 0)" }
}

/// A constraint that failed, written as policy text.
public struct ConstraintFailure: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `constrain` or `mlsconstrain`.
    public var isMLS: Bool
    /// The whole statement, e.g. `mlsconstrain file { read write } (h1 dom h2 or t1 != mcs_constrained_type);`
    public var text: String
    /// The leaf tests that evaluated false, e.g. `h1 dom h2`.
    public var failedTerms: [String]
    public var description: String { text }
}

/// Why one permission is allowed or denied.
public enum PermissionReason: Sendable, Hashable, CustomStringConvertible {
    /// An allow rule grants it and nothing takes it away.
    case allowed
    /// No allow rule grants it.
    case typeEnforcement
    /// No allow rule grants it now, but setting any one of these booleans would.
    case boolean([BooleanSetting])
    /// An allow rule grants it, but these constraints remove it.
    case constraint([ConstraintFailure])
    /// The role change is not allowed by a role allow rule.
    case rbac(sourceRole: String, targetRole: String)
    /// The bounding type lacks it (typebounds).
    case bounds(boundingType: String)
    /// The class or permission is not in the policy; handle_unknown decides.
    case unknown(HandleUnknown)

    public var isAllowed: Bool {
        switch self {
        case .allowed: return true
        case .unknown(let h): return h == .allow
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .allowed: return "allowed"
        case .typeEnforcement: return "denied by TE: no allow rule"
        case .boolean(let b): return "denied by TE; allowed with " + b.map(\.description).joined(separator: " or ")
        case .constraint(let c): return "denied by constraint: " + c.map(\.text).joined(separator: "; ")
        case .rbac(let s, let t): return "denied by RBAC: no 'allow \(s) \(t);'"
        case .bounds(let b): return "denied by typebounds: bounding type \(b) lacks it"
        case .unknown(let h): return "not in the policy: handle_unknown=\(h)"
        }
    }
}

/// The verdict for one requested permission.
public struct PermissionVerdict: Sendable, Hashable {
    public var permission: String
    public var allowed: Bool
    public var reason: PermissionReason
    /// A denial of this permission is logged (no dontaudit rule hides it).
    public var auditedWhenDenied: Bool
    /// A grant of this permission is logged (auditallow).
    public var auditedWhenAllowed: Bool
}

/// The answer to "may SOURCE do PERMISSIONS to TARGET of CLASS", with a reason per permission and the
/// audit2why result for the whole request.
public struct AccessCheck: Sendable, Hashable {
    public var source: SecurityContext
    public var target: SecurityContext
    public var tclass: String
    public var decision: AccessDecision?
    public var permissions: [PermissionVerdict]
    public var result: AuditResult
    /// For `.boolean`: every boolean that alone would allow the whole request.
    public var booleans: [BooleanSetting]
    /// For `.constraint`: the constraints that failed.
    public var constraints: [ConstraintFailure]

    /// True when every requested permission is allowed.
    public var allowed: Bool { permissions.allSatisfy(\.allowed) }
}
