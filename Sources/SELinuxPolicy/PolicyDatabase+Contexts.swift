import SELinux

/// A security context resolved against one policy: its user, role and type values and its MLS range as the
/// policy numbers them. Make one with `PolicyDatabase.resolve(_:)`; reuse it for many decisions.
public struct PolicyContext: Sendable, Hashable {
    let values: ContextValues
    /// The context as text.
    public let context: SecurityContext
}

/// Why a context is not valid in a policy.
public enum ContextProblem: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownUser(String)
    case unknownRole(String)
    case unknownType(String)
    case typeIsAttribute(String)
    case unknownSensitivity(String)
    case unknownCategory(String)
    case missingRange
    case unexpectedRange
    case roleNotAuthorized(user: String, role: String)
    case typeNotInRole(role: String, type: String)
    case categoriesNotAllowed(level: String)
    case highDoesNotDominateLow(range: String)
    case rangeOutsideUser(range: String, user: String, userRange: String)

    public var description: String {
        switch self {
        case .unknownUser(let u): return "the policy has no user '\(u)'"
        case .unknownRole(let r): return "the policy has no role '\(r)'"
        case .unknownType(let t): return "the policy has no type '\(t)'"
        case .typeIsAttribute(let t): return "'\(t)' is an attribute, not a type; name one of its types"
        case .unknownSensitivity(let s): return "the policy has no sensitivity '\(s)'"
        case .unknownCategory(let c): return "the policy has no category '\(c)'"
        case .missingRange: return "the policy is MLS: add a level, e.g. ':s0'"
        case .unexpectedRange: return "the policy has no MLS: drop the level"
        case .roleNotAuthorized(let u, let r): return "user \(u) may not have role \(r)"
        case .typeNotInRole(let r, let t): return "role \(r) may not have type \(t)"
        case .categoriesNotAllowed(let l): return "the categories of \(l) are not allowed with its sensitivity"
        case .highDoesNotDominateLow(let r): return "in \(r) the high level does not dominate the low level"
        case .rangeOutsideUser(let r, let u, let ur): return "\(r) is outside user \(u)'s range \(ur)"
        }
    }
}

extension PolicyDatabase {
    /// Resolves a context's names against the policy and checks that the context is valid (the user has the
    /// role, the role has the type, the level is inside the user's range and its categories are defined).
    /// Throws a `PolicyFormatError` with code `.unknownName` that says what is wrong and how to fix it.
    public func resolve(_ context: SecurityContext) throws -> PolicyContext {
        switch values(of: context) {
        case .failure(let p):
            throw PolicyFormatError(code: .unknownName, offset: 0, section: "invalid context '\(context)'",
                                    expected: "a context valid in this policy", found: p.description)
        case .success(let v):
            if let p = problem(v, context) {
                throw PolicyFormatError(code: .unknownName, offset: 0, section: "invalid context '\(context)'",
                                        expected: "a context valid in this policy", found: p.description)
            }
            return PolicyContext(values: v, context: context)
        }
    }

    /// Parses and resolves context text.
    public func resolve(_ text: String) throws -> PolicyContext {
        let c: SecurityContext
        do { c = try SecurityContext(parsing: text, limits: parseLimits) } catch let e as SELinuxError {
            throw PolicyFormatError(code: .unknownName, offset: e.position ?? 0, section: "invalid context '\(text)'",
                                    expected: "user:role:type[:range]", found: e.message)
        }
        return try resolve(c)
    }

    /// Nil when the context is valid in the policy, else why not.
    public func validity(of context: SecurityContext) -> ContextProblem? {
        switch values(of: context) {
        case .failure(let p): return p
        case .success(let v): return problem(v, context)
        }
    }

    /// The bounds the policy puts on level text.
    public var parseLimits: ParseLimits {
        ParseLimits(sensitivities: max(1, storage.sensitivityByValue.count), categories: storage.categoryByValue.count)
    }

    func values(of c: SecurityContext) -> Result<ContextValues, ContextProblem> {
        guard let u = storage.userByName[c.user] else { return .failure(.unknownUser(c.user)) }
        guard let r = storage.roleByName[c.role] else { return .failure(.unknownRole(c.role)) }
        guard let t = storage.typeByName[c.type] else { return .failure(.unknownType(c.type)) }
        if storage.types[Int(t) - 1].isAttribute { return .failure(.typeIsAttribute(c.type)) }
        var range = LevelRange(low: Level(sens: 0, cats: CategorySet()), high: Level(sens: 0, cats: CategorySet()))
        if storage.mls {
            guard let cr = c.range else { return .failure(.missingRange) }
            switch (level(cr.low), level(cr.high)) {
            case (.success(let lo), .success(let hi)): range = LevelRange(low: lo, high: hi)
            case (.failure(let p), _), (_, .failure(let p)): return .failure(p)
            }
        } else if c.range != nil {
            return .failure(.unexpectedRange)
        }
        return .success(ContextValues(user: u, role: r, type: t, range: range))
    }

    func level(_ l: SecurityLevel) -> Result<Level, ContextProblem> {
        let sens: UInt32
        if canonicalSensitivities {
            guard l.sensitivity >= 0, l.sensitivity < storage.sensitivityByValue.count else {
                return .failure(.unknownSensitivity("s\(l.sensitivity)"))
            }
            sens = UInt32(l.sensitivity + 1)
        } else {
            guard let i = storage.sensitivityByName["s\(l.sensitivity)"] else {
                return .failure(.unknownSensitivity("s\(l.sensitivity)"))
            }
            sens = storage.sensitivities[i].level.sens
        }
        if canonicalCategories {
            if let mx = l.categories.max, mx >= storage.categoryByValue.count { return .failure(.unknownCategory("c\(mx)")) }
            return .success(Level(sens: sens, cats: l.categories))
        }
        var cats = CategorySet()
        for c in l.categories {
            guard let v = storage.categoryByName["c\(c)"] else { return .failure(.unknownCategory("c\(c)")) }
            cats.insert(Int(v) - 1)
        }
        return .success(Level(sens: sens, cats: cats))
    }

    /// libsepol's `policydb_context_isvalid`, with a reason.
    func problem(_ v: ContextValues, _ c: SecurityContext) -> ContextProblem? {
        if v.role != 1 {
            guard storage.roles[Int(v.role) - 1].types.contains(Int(v.type) - 1) else {
                return .typeNotInRole(role: c.role, type: c.type)
            }
            guard storage.users[Int(v.user) - 1].roles.contains(Int(v.role) - 1) else {
                return .roleNotAuthorized(user: c.user, role: c.role)
            }
        }
        if storage.mls {
            for l in [v.range.low, v.range.high] {
                let allowed = storage.sensitivities[storage.sensitivityByValue[Int(l.sens) - 1]].level.cats
                guard l.cats.isSubset(of: allowed) else { return .categoriesNotAllowed(level: levelText(l)) }
            }
            guard v.range.high.dominates(v.range.low) else { return .highDoesNotDominateLow(range: rangeText(v.range)) }
            if v.role != 1 {
                let ur = storage.users[Int(v.user) - 1].range
                guard v.range.low.dominates(ur.low), ur.high.dominates(v.range.high) else {
                    return .rangeOutsideUser(range: rangeText(v.range), user: c.user, userRange: rangeText(ur))
                }
            }
        }
        return nil
    }

    // MARK: Values back to text

    func securityLevel(_ l: Level) -> SecurityLevel {
        let sensName = storage.sensitivityName(l.sens)
        let sens = Int(sensName.dropFirst()) ?? Int(l.sens) - 1
        if canonicalCategories { return SecurityLevel(sensitivity: sens, categories: l.cats) }
        var cats = CategorySet()
        for b in l.cats {
            let n = storage.categoryName(UInt32(b + 1))
            cats.insert(Int(n.dropFirst()) ?? b)
        }
        return SecurityLevel(sensitivity: sens, categories: cats)
    }

    func securityContext(_ v: ContextValues) -> SecurityContext {
        var range: SecurityRange?
        if storage.mls {
            let lo = securityLevel(v.range.low), hi = securityLevel(v.range.high)
            range = (try? SecurityRange(low: lo, high: hi)) ?? SecurityRange(lo)
        }
        return SecurityContext(user: storage.userName(v.user), role: storage.roleName(v.role),
                               type: storage.typeName(v.type), range: range)
    }

    /// Level text with the policy's own names (`s0:c1,c2`, spans as `c0.c1023`).
    func levelText(_ l: Level) -> String {
        var parts: [String] = []
        var runStart = -1, prev = -2
        func flush() {
            guard runStart >= 0 else { return }
            if prev - runStart >= 2 {
                parts.append("\(storage.categoryName(UInt32(runStart + 1))).\(storage.categoryName(UInt32(prev + 1)))")
            } else {
                for b in runStart...prev { parts.append(storage.categoryName(UInt32(b + 1))) }
            }
        }
        for b in l.cats {
            if b == prev + 1 { prev = b; continue }
            flush()
            runStart = b; prev = b
        }
        flush()
        let s = storage.sensitivityName(l.sens)
        return parts.isEmpty ? s : "\(s):\(parts.joined(separator: ","))"
    }

    func rangeText(_ r: LevelRange) -> String {
        r.low == r.high ? levelText(r.low) : "\(levelText(r.low))-\(levelText(r.high))"
    }
}
