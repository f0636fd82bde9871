import SELinux

extension PolicyDatabase {
    /// Decides a request and explains it: a verdict and reason per permission, and the audit2why result for
    /// the whole request (TE first, then constraint, RBAC, bounds; booleans that would allow a TE denial;
    /// DONTAUDIT when a dontaudit rule hides it).
    public func check(source: PolicyContext, target: PolicyContext, class name: String,
                      permissions: [String]) -> AccessCheck {
        guard let c = storage.classByName[name] else {
            let allow = storage.handleUnknown == .allow
            let verdicts = permissions.map {
                PermissionVerdict(permission: $0, allowed: allow, reason: .unknown(storage.handleUnknown),
                                  auditedWhenDenied: true, auditedWhenAllowed: false)
            }
            return AccessCheck(source: source.context, target: target.context, tclass: name, decision: nil,
                               permissions: verdicts, result: allow ? .allow : .teRule, booleans: [], constraints: [])
        }
        let s = source.values, t = target.values
        var requested: UInt32 = 0
        var unknown: [String] = []
        var bits: [(String, UInt32?)] = []
        for p in permissions {
            if let b = storage.permissionByName[Int(c) - 1][p] {
                requested |= 1 << b
                bits.append((p, b))
            } else {
                unknown.append(p)
                bits.append((p, nil))
            }
        }
        let st = compute(s, t, c, requested: requested, states: nodeStates)
        let decision = AccessDecision(tclass: publicClass(c), allowed: AccessVector(rawValue: st.allowed),
                                      auditAllow: AccessVector(rawValue: st.auditAllow),
                                      auditDeny: AccessVector(rawValue: st.auditDeny), permissive: isPermissive(s.type))
        var verdicts: [PermissionVerdict] = []
        for (p, bit) in bits {
            guard let b = bit else {
                verdicts.append(PermissionVerdict(permission: p, allowed: storage.handleUnknown == .allow,
                                                  reason: .unknown(storage.handleUnknown), auditedWhenDenied: true,
                                                  auditedWhenAllowed: false))
                continue
            }
            let m: UInt32 = 1 << b
            let reason: PermissionReason
            if st.allowed & m != 0 {
                reason = .allowed
            } else if st.teAllowed & m == 0 {
                let b = booleansAllowing(s, t, c, requested: m)
                reason = b.isEmpty ? .typeEnforcement : .boolean(b)
            } else if st.afterConstraints & m == 0 {
                reason = .constraint(failedConstraints(s, t, c, mask: m))
            } else if st.afterRBAC & m == 0 {
                reason = .rbac(sourceRole: storage.roleName(s.role), targetRole: storage.roleName(t.role))
            } else {
                reason = .bounds(boundingType: storage.typeName(st.boundingType))
            }
            verdicts.append(PermissionVerdict(permission: p, allowed: st.allowed & m != 0, reason: reason,
                                              auditedWhenDenied: st.auditDeny & m != 0,
                                              auditedWhenAllowed: st.auditAllow & m != 0))
        }
        var result: AuditResult
        var booleans: [BooleanSetting] = []
        var constraints: [ConstraintFailure] = []
        if st.reason == 0 {
            result = .allow
        } else if st.reason & ReasonBit.te != 0 {
            booleans = booleansAllowing(s, t, c, requested: requested)
            if !booleans.isEmpty {
                result = .boolean
            } else {
                result = requested & ~st.auditDeny != 0 ? .dontaudit : .teRule
            }
        } else if st.reason & ReasonBit.constraint != 0 {
            result = .constraint
            constraints = failedConstraints(s, t, c, mask: requested & st.teAllowed & ~st.afterConstraints)
        } else if st.reason & ReasonBit.rbac != 0 {
            result = .rbac
        } else {
            result = .bounds
        }
        if !unknown.isEmpty, storage.handleUnknown != .allow, result == .allow { result = .teRule }
        return AccessCheck(source: source.context, target: target.context, tclass: name, decision: decision,
                           permissions: verdicts, result: result, booleans: booleans, constraints: constraints)
    }

    /// `check` from context values; throws when a context is not valid in the policy.
    public func check(source: SecurityContext, target: SecurityContext, class name: String,
                      permissions: [String]) throws -> AccessCheck {
        check(source: try resolve(source), target: try resolve(target), class: name, permissions: permissions)
    }

    /// Every boolean that, flipped alone, makes the whole request allowed with no reason left (audit2why's
    /// test). Only booleans of conditionals holding allow rules for this source, target and class can.
    func booleansAllowing(_ s: ContextValues, _ t: ContextValues, _ c: UInt32, requested: UInt32) -> [BooleanSetting] {
        let nodes = relevantNodes(s.type, t.type, UInt16(c))
        guard !nodes.isEmpty else { return [] }
        var candidates = Set<UInt32>()
        for n in nodes { for item in storage.condNodes[n].expr where item.kind == 1 { candidates.insert(item.boolean) } }
        var out: [BooleanSetting] = []
        for b in candidates.sorted() {
            var values = booleanValues
            values[Int(b) - 1].toggle()
            var states = nodeStates
            for (i, node) in storage.condNodes.enumerated() where node.expr.contains(where: { $0.kind == 1 && $0.boolean == b }) {
                states[i] = Self.evaluate(node.expr, values) ? 1 : 0
            }
            let st = compute(s, t, c, requested: requested, states: states)
            if st.reason == 0 { out.append(BooleanSetting(name: storage.booleanName(b), value: values[Int(b) - 1])) }
        }
        return out
    }

    /// The conditional nodes that hold allow rules matching source, target and class.
    func relevantNodes(_ s: UInt32, _ t: UInt32, _ c: UInt16) -> Set<Int> {
        let idx = storage.index
        var out = Set<Int>()
        let sLo = Int(idx.attrOffsets[Int(s) - 1]), sHi = Int(idx.attrOffsets[Int(s)])
        for k in sLo..<sHi {
            let src = Int(idx.attrValues[k])
            let rules = idx.cond
            for g in Int(rules.sourceOffsets[src])..<Int(rules.sourceOffsets[src + 1]) where rules.groups[g].tclass == c {
                let start = Int(rules.groups[g].start)
                for i in start..<(start + Int(rules.groups[g].count)) {
                    let e = rules.entries[i]
                    if e.spec == AVSpec.allowed, idx.covers(e.target, t) {
                        out.insert(Int(storage.condEntryNode[Int(e.ref)]))
                    }
                }
            }
        }
        return out
    }

    /// The constraints of a class covering `mask` that fail for these contexts, as policy text.
    func failedConstraints(_ s: ContextValues, _ t: ContextValues, _ c: UInt32, mask: UInt32) -> [ConstraintFailure] {
        var out: [ConstraintFailure] = []
        for con in storage.classes[Int(c) - 1].constraints where con.permissions & mask != 0 && !holds(con, s, t) {
            let failed = con.expr.filter { $0.kind >= 4 && !leaf($0, s, t) }.map { term($0) }
            out.append(ConstraintFailure(isMLS: isMLS(con), text: constraintText(con, tclass: c, validatetrans: false),
                                         failedTerms: failed))
        }
        return out
    }

    func isMLS(_ con: ConstraintDatum) -> Bool { con.expr.contains { $0.kind == 4 && $0.attr >= 32 } }

    /// One leaf as policy text: `h1 dom h2`, `u1 == u2`, `t1 != mcs_constrained_type`.
    func term(_ e: ConstraintExpr) -> String {
        if e.kind == 5 {
            let n = e.attr & 16 != 0 ? "3" : e.attr & 8 != 0 ? "2" : "1"
            let letter = e.attr & 1 != 0 ? "u" : e.attr & 2 != 0 ? "r" : "t"
            var names: [String] = []
            if e.attr & 4 != 0, let tn = e.typeNames, !tn.isEmpty || !(e.typeNamesNegated?.isEmpty ?? true) {
                names = tn.map { storage.typeName(UInt32($0 + 1)) }
                names += (e.typeNamesNegated ?? CategorySet()).map { "-" + storage.typeName(UInt32($0 + 1)) }
            } else {
                for b in e.names {
                    let v = UInt32(b + 1)
                    names.append(e.attr & 1 != 0 ? storage.userName(v) : e.attr & 2 != 0 ? storage.roleName(v) : storage.typeName(v))
                }
            }
            let set = names.count == 1 ? names[0] : "{ " + names.joined(separator: " ") + " }"
            return "\(letter)\(n) \(e.op == 1 ? "==" : "!=") \(set)"
        }
        let ops = ["", "==", "!=", "dom", "domby", "incomp"]
        let op = Int(e.op) < ops.count ? ops[Int(e.op)] : "?"
        let pair: (String, String)
        switch e.attr {
        case 1: pair = ("u1", "u2")
        case 2: pair = ("r1", "r2")
        case 4: pair = ("t1", "t2")
        case 32: pair = ("l1", "l2")
        case 64: pair = ("l1", "h2")
        case 128: pair = ("h1", "l2")
        case 256: pair = ("h1", "h2")
        case 512: pair = ("l1", "h1")
        default: pair = ("l2", "h2")
        }
        return "\(pair.0) \(op) \(pair.1)"
    }

    /// A constraint statement as policy.conf text.
    func constraintText(_ con: ConstraintDatum, tclass: UInt32, validatetrans: Bool) -> String {
        var stack: [(String, Bool)] = []   // text, is a binary expression
        for e in con.expr {
            switch e.kind {
            case 1:
                let a = stack.popLast() ?? ("?", false)
                stack.append(("not (\(a.0))", false))
            case 2, 3:
                let b = stack.popLast() ?? ("?", false), a = stack.popLast() ?? ("?", false)
                let op = e.kind == 2 ? "and" : "or"
                stack.append(("\(a.1 ? "(\(a.0))" : a.0) \(op) \(b.1 ? "(\(b.0))" : b.0)", true))
            default:
                stack.append((term(e), false))
            }
        }
        let body = stack.last?.0 ?? ""
        let mls = isMLS(con)
        let keyword = validatetrans ? (mls ? "mlsvalidatetrans" : "validatetrans") : (mls ? "mlsconstrain" : "constrain")
        let cls = storage.className(tclass)
        if validatetrans { return "\(keyword) \(cls) (\(body));" }
        let perms = storage.permissionNames(tclass, con.permissions)
        let permText = perms.count == 1 ? perms[0] : "{ " + perms.joined(separator: " ") + " }"
        return "\(keyword) \(cls) \(permText) (\(body));"
    }

    /// Every constraint and validatetrans statement of the policy, as policy text.
    public var constraints: [PolicyConstraint] {
        var out: [PolicyConstraint] = []
        for c in storage.classes {
            for con in c.constraints {
                out.append(PolicyConstraint(tclass: c.name, isValidatetrans: false, isMLS: isMLS(con),
                                            permissions: storage.permissionNames(c.value, con.permissions),
                                            text: constraintText(con, tclass: c.value, validatetrans: false)))
            }
            for con in c.validatetrans {
                out.append(PolicyConstraint(tclass: c.name, isValidatetrans: true, isMLS: isMLS(con), permissions: [],
                                            text: constraintText(con, tclass: c.value, validatetrans: true)))
            }
        }
        return out
    }
}
