/// A security context `user:role:type[:range]`, such as `system_u:system_r:svirt_t:s0:c585,c813`.
///
/// Parsing accepts the forms the kernel accepts; `description` gives the canonical form, and
/// `SecurityContext(parsing: c.description) == c` for every value.
public struct SecurityContext: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var role: String
    public var type: String
    /// The MLS range, absent on a policy without MLS.
    public var range: SecurityRange?

    public init(user: String, role: String, type: String, range: SecurityRange? = nil) {
        self.user = user
        self.role = role
        self.type = type
        self.range = range
    }

    /// Parses `user:role:type` or `user:role:type:range`.
    public init(parsing text: String, limits: ParseLimits = .default) throws {
        var parser = LabelTextParser(text, limits: limits)
        self = try parser.parseWholeContext()
    }

    /// The low level of the range, if there is one.
    public var level: SecurityLevel? { range?.low }

    public var description: String {
        if let range { return "\(user):\(role):\(type):\(range)" }
        return "\(user):\(role):\(type)"
    }

    /// A copy with another type.
    public func with(type: String) -> SecurityContext {
        var c = self
        c.type = type
        return c
    }

    /// A copy with another range.
    public func with(range: SecurityRange?) -> SecurityContext {
        var c = self
        c.range = range
        return c
    }

    /// A copy with another role.
    public func with(role: String) -> SecurityContext {
        var c = self
        c.role = role
        return c
    }

    /// A copy with another user.
    public func with(user: String) -> SecurityContext {
        var c = self
        c.user = user
        return c
    }
}
