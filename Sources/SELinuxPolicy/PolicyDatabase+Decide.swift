import SELinux

/// libsepol's reason bits (`SEPOL_COMPUTEAV_*`).
enum ReasonBit {
    static let te: UInt32 = 1
    static let constraint: UInt32 = 2
    static let rbac: UInt32 = 4
    static let bounds: UInt32 = 8
}

/// The access vectors at each stage of a decision, so reasons can be told apart.
struct Stages {
    var teAllowed: UInt32 = 0
    var afterConstraints: UInt32 = 0
    var afterRBAC: UInt32 = 0
    var allowed: UInt32 = 0
    var auditAllow: UInt32 = 0
    var auditDeny: UInt32 = ~0
    var reason: UInt32 = 0
    var boundingType: UInt32 = 0
}

extension PolicyDatabase {
    // MARK: - Type enforcement

    /// The union of the allow, auditallow and dontaudit rules over the attribute closure of source × target,
    /// with the conditional rules enabled under `states`.
    @inline(__always)
    func teVectors(_ s: UInt32, _ t: UInt32, _ c: UInt16, states: [UInt8]) -> (UInt32, UInt32, UInt32) {
        let idx = storage.index
        var allowed: UInt32 = 0, auditAllow: UInt32 = 0, auditDeny: UInt32 = ~0
        let sLo = Int(idx.attrOffsets[Int(s) - 1]), sHi = Int(idx.attrOffsets[Int(s)])
        let tLo = Int(idx.attrOffsets[Int(t) - 1]), tHi = Int(idx.attrOffsets[Int(t)])
        let tCount = tHi - tLo
        for k in sLo..<sHi {
            let src = Int(idx.attrValues[k])
            for pass in 0..<2 {
                let rules = pass == 0 ? idx.av : idx.cond
                let gLo = Int(rules.sourceOffsets[src]), gHi = Int(rules.sourceOffsets[src + 1])
                var g = gLo
                while g < gHi, rules.groups[g].tclass < c { g += 1 }
                guard g < gHi, rules.groups[g].tclass == c else { continue }
                let start = Int(rules.groups[g].start), end = start + Int(rules.groups[g].count)
                @inline(__always) func apply(_ e: DecisionIndex.Packed) {
                    if pass == 1 {
                        let ref = Int(e.ref)
                        let want: UInt8 = storage.condEntryBranch[ref] ? 1 : 0
                        guard states[Int(storage.condEntryNode[ref])] == want else { return }
                    }
                    switch e.spec {
                    case AVSpec.allowed: allowed |= e.data
                    case AVSpec.auditAllow: auditAllow |= e.data
                    default: auditDeny &= e.data
                    }
                }
                if end - start <= 16 || end - start <= tCount * 6 {
                    for i in start..<end where idx.covers(rules.entries[i].target, t) { apply(rules.entries[i]) }
                } else {
                    for j in tLo..<tHi {
                        let want = idx.attrValues[j]
                        var lo = start, hi = end
                        while lo < hi {
                            let mid = (lo + hi) >> 1
                            if rules.entries[mid].target < want { lo = mid + 1 } else { hi = mid }
                        }
                        while lo < end, rules.entries[lo].target == want {
                            apply(rules.entries[lo])
                            lo += 1
                        }
                    }
                }
            }
        }
        return (allowed, auditAllow, auditDeny)
    }

    // MARK: - Constraints

    @inline(__always) func levelEq(_ a: Level, _ b: Level) -> Bool { a.sens == b.sens && a.cats == b.cats }

    /// Evaluates one leaf of a constraint expression.
    func leaf(_ e: ConstraintExpr, _ s: ContextValues, _ t: ContextValues) -> Bool {
        if e.kind == 5 {
            guard e.attr & 16 == 0 else { return false }
            let c = e.attr & 8 != 0 ? t : s
            let v: UInt32 = e.attr & 1 != 0 ? c.user : e.attr & 2 != 0 ? c.role : c.type
            let hit = e.names.contains(Int(v) - 1)
            return e.op == 1 ? hit : !hit
        }
        switch e.attr {
        case 1: return e.op == 1 ? s.user == t.user : s.user != t.user
        case 4: return e.op == 1 ? s.type == t.type : s.type != t.type
        case 2:
            let r1 = storage.roles[Int(s.role) - 1], r2 = storage.roles[Int(t.role) - 1]
            switch e.op {
            case 1: return s.role == t.role
            case 2: return s.role != t.role
            case 3: return r1.dominates.contains(Int(t.role) - 1)
            case 4: return r2.dominates.contains(Int(s.role) - 1)
            default: return !r1.dominates.contains(Int(t.role) - 1) && !r2.dominates.contains(Int(s.role) - 1)
            }
        default:
            let l1: Level, l2: Level
            switch e.attr {
            case 32: l1 = s.range.low; l2 = t.range.low
            case 64: l1 = s.range.low; l2 = t.range.high
            case 128: l1 = s.range.high; l2 = t.range.low
            case 256: l1 = s.range.high; l2 = t.range.high
            case 512: l1 = s.range.low; l2 = s.range.high
            default: l1 = t.range.low; l2 = t.range.high
            }
            switch e.op {
            case 1: return levelEq(l1, l2)
            case 2: return !levelEq(l1, l2)
            case 3: return l1.dominates(l2)
            case 4: return l2.dominates(l1)
            default: return !l1.dominates(l2) && !l2.dominates(l1)
            }
        }
    }

    /// Evaluates a constraint (its expression is checked at load: at most 5 deep, one value left).
    func holds(_ con: ConstraintDatum, _ s: ContextValues, _ t: ContextValues) -> Bool {
        var stack: UInt64 = 0
        var sp = 0
        for e in con.expr {
            switch e.kind {
            case 1: stack ^= 1
            case 2, 3:
                let b = stack & 1
                stack >>= 1
                let a = stack & 1
                stack = (stack & ~1) | (e.kind == 2 ? (a & b) : (a | b))
                sp -= 1
            default:
                stack = stack << 1 | (leaf(e, s, t) ? 1 : 0)
                sp += 1
            }
        }
        return sp >= 1 && stack & 1 != 0
    }

    // MARK: - The whole computation

    /// libsepol's `context_struct_compute_av`: TE, then constraints, then role allow, then typebounds.
    func compute(_ s: ContextValues, _ t: ContextValues, _ c: UInt32, requested: UInt32, states: [UInt8],
                 depth: Int = 0) -> Stages {
        var st = Stages()
        let te = teVectors(s.type, t.type, UInt16(c), states: states)
        st.teAllowed = te.0
        st.auditAllow = te.1
        st.auditDeny = te.2
        var allowed = te.0
        var req = requested
        if req & ~allowed != 0 { st.reason |= ReasonBit.te; req &= allowed }
        for con in storage.classes[Int(c) - 1].constraints where con.permissions & allowed != 0 {
            if !holds(con, s, t) { allowed &= ~con.permissions }
        }
        st.afterConstraints = allowed
        if req & ~allowed != 0 { st.reason |= ReasonBit.constraint; req &= allowed }
        if c == storage.processClass, allowed & storage.processTransitionMask != 0, s.role != t.role {
            var found = false
            for ra in storage.roleAllows where ra.role == s.role && ra.newRole == t.role { found = true; break }
            if !found { allowed &= ~storage.processTransitionMask }
        }
        st.afterRBAC = allowed
        if req & ~allowed != 0 { st.reason |= ReasonBit.rbac; req &= allowed }
        let bounds = storage.types[Int(s.type) - 1].bounds
        if bounds != 0, depth < 64 {
            var ls = s
            ls.type = bounds
            var lt = t
            let tb = storage.types[Int(t.type) - 1].bounds
            if tb != 0 { lt.type = tb }
            let lo = compute(ls, lt, c, requested: req, states: states, depth: depth + 1)
            let masked = ~lo.allowed & allowed
            if masked != 0 {
                allowed &= ~masked
                st.reason |= ReasonBit.bounds
                st.boundingType = bounds
            }
        }
        st.allowed = allowed
        return st
    }

    // MARK: - Public decisions

    /// `security_compute_av` for two resolved contexts and a class value: the allowed, auditallow and
    /// auditdeny vectors. The fast path for callers that keep `PolicyContext` values.
    public func accessVectors(source: PolicyContext, target: PolicyContext, classValue: Int)
        -> (allowed: AccessVector, auditAllow: AccessVector, auditDeny: AccessVector) {
        guard classValue >= 1, classValue <= storage.classes.count else {
            let all: UInt32 = storage.handleUnknown == .allow ? ~0 : 0
            return (AccessVector(rawValue: all), .none, .all)
        }
        let st = compute(source.values, target.values, UInt32(classValue), requested: 0, states: nodeStates)
        return (AccessVector(rawValue: st.allowed), AccessVector(rawValue: st.auditAllow), AccessVector(rawValue: st.auditDeny))
    }

    /// `security_compute_av`: the allowed, auditallow and auditdeny vectors for source, target and class.
    /// A class the policy does not define follows handle_unknown.
    public func decide(source: PolicyContext, target: PolicyContext, class name: String) -> AccessDecision {
        guard let c = storage.classByName[name] else {
            let all: UInt32 = storage.handleUnknown == .allow ? ~0 : 0
            return AccessDecision(tclass: PolicyClass(name: name, value: 0, common: nil, permissionSlots: []),
                                  allowed: AccessVector(rawValue: all), auditAllow: .none, auditDeny: .all,
                                  permissive: isPermissive(source.values.type))
        }
        let st = compute(source.values, target.values, c, requested: 0, states: nodeStates)
        return AccessDecision(tclass: publicClass(c), allowed: AccessVector(rawValue: st.allowed),
                              auditAllow: AccessVector(rawValue: st.auditAllow),
                              auditDeny: AccessVector(rawValue: st.auditDeny), permissive: isPermissive(source.values.type))
    }

    /// `decide` from context values; throws when a context is not valid in the policy.
    public func decide(source: SecurityContext, target: SecurityContext, class name: String) throws -> AccessDecision {
        decide(source: try resolve(source), target: try resolve(target), class: name)
    }

    /// `decide` from context text, the way `sepol_context_to_sid` + `sepol_compute_av` are called.
    public func decide(source: String, target: String, class name: String) throws -> AccessDecision {
        decide(source: try resolve(source), target: try resolve(target), class: name)
    }

    func isPermissive(_ type: UInt32) -> Bool { storage.permissiveTypes.contains(Int(type)) }

    /// True when the type is permissive (`permissive TYPE;`).
    public func isPermissive(type name: String) -> Bool {
        guard let v = storage.typeByName[name] else { return false }
        return isPermissive(v)
    }
}
