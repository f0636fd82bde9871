import SELinux

/// Which labeling computation: a new object or process (`type_transition`), a polyinstantiated member
/// (`type_member`) or a relabel (`type_change`).
public enum LabelComputation: Sendable, Hashable {
    case create
    case member
    case relabel
}

extension PolicyDatabase {
    /// The label of a new object of `class` created by `source` in (or from) `target`, as the kernel's
    /// `security_compute_sid` gives it: type_transition rules (with the object name, for filename transitions),
    /// role_transition and range_transition rules, and the class's default_user/role/type/range.
    /// Throws when the class is unknown or the result is not a valid context.
    public func computeCreate(source: PolicyContext, target: PolicyContext, class name: String,
                              objectName: String? = nil) throws -> SecurityContext {
        try computeLabel(.create, source: source, target: target, class: name, objectName: objectName)
    }

    /// `computeCreate` from context values.
    public func computeCreate(source: SecurityContext, target: SecurityContext, class name: String,
                              objectName: String? = nil) throws -> SecurityContext {
        try computeCreate(source: resolve(source), target: resolve(target), class: name, objectName: objectName)
    }

    /// `security_compute_sid` for creation, membership or relabeling.
    public func computeLabel(_ kind: LabelComputation, source: PolicyContext, target: PolicyContext, class name: String,
                             objectName: String? = nil) throws -> SecurityContext {
        guard let c = storage.classByName[name] else {
            throw unknown("class", name, hint: "e.g. file, dir, process")
        }
        let s = source.values, t = target.values
        let cls = storage.classes[Int(c) - 1]
        let spec: UInt16 = kind == .create ? AVSpec.transition : kind == .member ? AVSpec.member : AVSpec.change
        let isProcess = c == storage.processClass
        var n = ContextValues(user: 0, role: 0, type: 0, range: s.range)
        switch kind {
        case .create, .relabel: n.user = cls.defaultUser == 2 ? t.user : s.user
        case .member: n.user = t.user
        }
        switch cls.defaultRole {
        case 1: n.role = s.role
        case 2: n.role = t.role
        default: n.role = isProcess ? s.role : 1
        }
        switch cls.defaultType {
        case 1: n.type = s.type
        case 2: n.type = t.type
        default: n.type = isProcess ? s.type : t.type
        }
        let key = DecisionIndex.typeRuleKey(s.type, t.type, c, spec)
        if let v = storage.index.typeRules[key] {
            n.type = v
        } else if let refs = storage.index.condTypeRules[key] {
            for r in refs {
                let want: UInt8 = storage.condEntryBranch[Int(r)] ? 1 : 0
                if nodeStates[Int(storage.condEntryNode[Int(r)])] == want {
                    n.type = storage.condEntries[Int(r)].data
                    break
                }
            }
        }
        if kind == .create, let objectName {
            for f in storage.filenameTransitions
            where f.sourceType == s.type && f.targetType == t.type && f.tclass == c && f.name == objectName {
                n.type = f.newType
                break
            }
        }
        if kind == .create {
            for rt in storage.roleTransitions where rt.role == s.role && rt.type == t.type && rt.tclass == c {
                n.role = rt.newRole
                break
            }
        }
        if storage.mls { n.range = computeRange(kind, s, t, c, isProcess: isProcess, defaultRange: cls.defaultRange) }
        let result = securityContext(n)
        if let p = problem(n, result) {
            throw PolicyFormatError(code: .unknownName, offset: 0, section: "the computed label '\(result)' is not valid",
                                    expected: "a valid context for a new \(name)", found: p.description)
        }
        return result
    }

    /// libsepol's `mls_compute_sid`.
    func computeRange(_ kind: LabelComputation, _ s: ContextValues, _ t: ContextValues, _ c: UInt32, isProcess: Bool,
                      defaultRange: UInt32) -> LevelRange {
        if kind == .create {
            for rt in storage.rangeTransitions where rt.sourceType == s.type && rt.targetType == t.type && rt.tclass == c {
                return rt.range
            }
            switch defaultRange {
            case 1: return LevelRange(low: s.range.low, high: s.range.low)
            case 2: return LevelRange(low: s.range.high, high: s.range.high)
            case 3: return s.range
            case 4: return LevelRange(low: t.range.low, high: t.range.low)
            case 5: return LevelRange(low: t.range.high, high: t.range.high)
            case 6: return t.range
            case 7:
                let lo = Level(sens: max(s.range.low.sens, t.range.low.sens),
                               cats: s.range.low.cats.intersection(t.range.low.cats))
                let hi = Level(sens: min(s.range.high.sens, t.range.high.sens),
                               cats: s.range.high.cats.intersection(t.range.high.cats))
                if hi.dominates(lo) { return LevelRange(low: lo, high: hi) }
            default: break
            }
        }
        if kind != .member, isProcess { return s.range }
        return LevelRange(low: s.range.low, high: s.range.low)
    }
}
