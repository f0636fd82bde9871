import SELinux
import SELinuxPolicy

/// What the IOMMU offers, which decides the permission a domain needs to use a passed-through device
/// (`flask_iommu_resource_use_perm`): `use_iommu` with interrupt remapping, `use_iommu_nointremap` without it,
/// `use_noiommu` with no IOMMU.
public enum XenIOMMU: String, Sendable, Hashable, CaseIterable, Codable {
    case intremap
    case nointremap
    case off

    public var usePermission: String {
        switch self {
        case .intremap: return "use_iommu"
        case .nointremap: return "use_iommu_nointremap"
        case .off: return "use_noiommu"
        }
    }
}

/// A domain as the hypervisor sees it for access checks: a name, the label it runs under (its SID), and for a stub
/// device model the guest it serves and the `_target` label Xen computed when it was made that guest's device model.
public struct XenDomain: Sendable, Hashable {
    public var name: String
    public var label: SecurityContext
    /// For a device model: the name of its target domain.
    public var deviceModelOf: String?
    /// For a device model: its `target_sid` (`type_transition GUEST DM:domain`), used when it acts on its target.
    public var targetLabel: SecurityContext?

    public init(name: String, label: SecurityContext, deviceModelOf: String? = nil, targetLabel: SecurityContext? = nil) {
        self.name = name
        self.label = label
        self.deviceModelOf = deviceModelOf
        self.targetLabel = targetLabel
    }
}

/// A Xen FLASK policy with what the hypervisor adds around the policy engine: initial SID names of a Xen release,
/// the `_self` and `_target` labels it substitutes, event channel labels, and device labels from the Xen object
/// contexts.
public struct XenPolicy: Sendable {
    public let database: PolicyDatabase
    public let release: XenRelease
    /// True when `release` was not given and the policy did not tell which release it was built for.
    public let releaseAssumed: Bool
    /// The type_transition rules with their attributes expanded, to name the rule behind a computed label.
    let typeTransitions: [(rule: TERule, sources: Set<String>, targets: Set<String>)]

    /// Wraps a Xen policy. Throws when the policy is a SELinux (kernel) policy.
    public init(_ database: PolicyDatabase, release: XenRelease? = nil) throws {
        guard database.target == .xen else {
            throw XenError(.policy, "this is a SELinux policy (target selinux), not a Xen FLASK policy; give the policy "
                           + "Xen loads, e.g. /boot/xenpolicy-4.19 (built by 'make -C tools/flask/policy')")
        }
        self.database = database
        let inferred = database.inferredXenRelease
        self.release = release ?? inferred ?? .current
        releaseAssumed = release == nil && inferred == nil
        var members: [String: Set<String>] = [:]
        func expand(_ name: String) -> Set<String> {
            if let m = members[name] { return m }
            let m = Set(database.members(of: name))
            members[name] = m
            return m
        }
        typeTransitions = database.rules.filter { $0.kind == .typeTransition }.map { ($0, expand($0.source), expand($0.target)) }
    }

    // MARK: Initial SIDs

    /// The context of an initial SID (`dom0`, `domU`, `security`...) under the release's numbering.
    public func initialContext(_ name: String) throws -> SecurityContext {
        guard let sid = release.initialSID(named: name) else {
            throw XenError(.policy, "\(release) has no initial SID '\(name)'; its SIDs are "
                           + release.initialSIDNames.joined(separator: ", "))
        }
        guard let c = database.xenInitialContext(name, release: release) else {
            throw XenError(.policy, "the policy gives no context to initial SID \(sid) ('\(name)' in \(release)); "
                           + "add 'sid \(name) CONTEXT' to the policy, or pass the Xen version it was built for")
        }
        return c
    }

    /// dom0's label (initial SID `dom0`), the default caller of every toolstack operation.
    public func dom0() throws -> XenDomain { XenDomain(name: "dom0", label: try initialContext("dom0")) }

    // MARK: Labels the hypervisor computes

    /// `security_transition_sid(a, b, class)`, with the rule that gave it.
    func transition(_ a: SecurityContext, _ b: SecurityContext, _ tclass: String) -> (SecurityContext, String)? {
        guard let pa = try? database.resolve(a), let pb = try? database.resolve(b),
              let n = try? database.computeCreate(source: pa, target: pb, class: tclass) else { return nil }
        let match = typeTransitions.first {
            $0.rule.tclass == tclass && $0.rule.defaultType == n.type && $0.sources.contains(a.type) && $0.targets.contains(b.type)
        }
        if let rule = match?.rule {
            return (n, "type_transition \(rule.source) \(rule.target):\(tclass) \(rule.defaultType ?? n.type)")
        }
        return (n, "no type_transition for \(a.type) \(b.type):\(tclass): the default label")
    }

    /// A domain's `_self` label: `type_transition L L:domain`, or L itself (`flask_domain_create`).
    public func selfLabel(_ label: SecurityContext) -> XenComputedLabel {
        guard let (n, rule) = transition(label, label, "domain") else {
            return XenComputedLabel(what: "_self label", label: label, rule: "the label is not valid: no _self label")
        }
        return XenComputedLabel(what: "_self label", label: n, rule: rule)
    }

    /// A device model's `_target` label for `guest`: `type_transition GUEST DM:domain` (`flask_set_target`).
    public func targetLabel(guest: SecurityContext, deviceModel: SecurityContext) -> XenComputedLabel {
        guard let (n, rule) = transition(guest, deviceModel, "domain") else {
            return XenComputedLabel(what: "_target label", label: guest, rule: "a label is not valid: no _target label")
        }
        return XenComputedLabel(what: "_target label", label: n, rule: rule)
    }

    /// The label of the event channel `creator` opens towards `remote`: `type_transition CREATOR REMOTE:event`
    /// (object role, the creator's low level).
    public func channelLabel(creator: SecurityContext, remote: SecurityContext) -> XenComputedLabel? {
        guard let (n, rule) = transition(creator, remote, "event") else { return nil }
        return XenComputedLabel(what: "event channel label", label: n, rule: rule)
    }

    /// The target label Xen uses when `source` acts on `target` (`domain_target_sid`): the source's `_self` label when
    /// both are the same domain, its `_target` label when the target is the domain it is device model of, else the
    /// target's label.
    public func targetSID(_ source: XenDomain, _ target: XenDomain) -> (SecurityContext, String?) {
        if source.name == target.name {
            let s = selfLabel(source.label)
            return (s.label, "\(source.name)'s _self label (the same domain)")
        }
        if source.deviceModelOf == target.name {
            let t = source.targetLabel ?? targetLabel(guest: target.label, deviceModel: source.label).label
            return (t, "\(source.name)'s _target label (it is \(target.name)'s device model)")
        }
        return (target.label, nil)
    }

    // MARK: Checks

    /// `avc_has_perm(source, target, class, permissions)` as a step.
    public func check(step: String, hook: String, subject: String, source: SecurityContext, target: SecurityContext,
                      targetNote: String? = nil, class tclass: String, permissions: [String]) -> XenCheck {
        var c = XenCheck(step: step, hook: hook, subject: subject, source: source, target: target, targetNote: targetNote,
                         tclass: tclass, permissions: permissions, outcome: .notReached(""))
        let s: PolicyContext, t: PolicyContext
        do { s = try database.resolve(source) } catch {
            c.outcome = .notReached("the label \(source) is not valid: \(Self.problem(error))")
            return c
        }
        do { t = try database.resolve(target) } catch {
            c.outcome = .notReached("the label \(target) is not valid: \(Self.problem(error))")
            return c
        }
        c.outcome = .decided(database.check(source: s, target: t, class: tclass, permissions: permissions))
        return c
    }

    /// A domain-to-domain check with Xen's target substitution (`domain_has_perm`).
    public func domainCheck(step: String, hook: String, _ source: XenDomain, _ target: XenDomain, class tclass: String,
                            permissions: [String]) -> XenCheck {
        let (t, note) = targetSID(source, target)
        return check(step: step, hook: hook, subject: "\(source.name) → \(target.name)", source: source.label, target: t,
                     targetNote: note, class: tclass, permissions: permissions)
    }

    static func problem(_ error: any Error) -> String {
        if let e = error as? PolicyFormatError { return e.found }
        return "\(error)"
    }

    // MARK: Labels in the policy

    /// Why a label is not valid in the policy, component by component (user, role, type, level); empty when valid.
    public func labelProblems(_ context: SecurityContext) -> [(component: String, problem: String)] {
        var out: [(String, String)] = []
        let users = database.users, roles = database.roles
        let user = users.first { $0.name == context.user }
        let role = roles.first { $0.name == context.role }
        if user == nil { out.append(("user", "the policy has no user '\(context.user)'")) }
        if role == nil { out.append(("role", "the policy has no role '\(context.role)'")) }
        if let user, role != nil, context.role != "object_r", !user.roles.contains(context.role) {
            out.append(("role", "user \(context.user) may not have role \(context.role) (its roles: \(user.roles.joined(separator: " ")))"))
        }
        if let t = database.type(named: context.type) {
            if t.isAttribute {
                out.append(("type", "'\(context.type)' is an attribute; name one of its types"))
            } else if let role, context.role != "object_r", !role.types.contains(context.type) {
                out.append(("type", "role \(context.role) may not have type \(context.type); add it with 'role \(context.role) types \(context.type);'"))
            }
        } else {
            out.append(("type", "the policy has no type '\(context.type)'"))
        }
        if out.isEmpty, let p = database.validity(of: context) {
            out.append(("level", Self.levelProblem(p, mls: database.isMLS)))
        } else if out.isEmpty == false, database.isMLS != (context.range != nil) {
            out.append(("level", database.isMLS ? "the policy is MLS: the label needs a level, e.g. ':s0'"
                        : "the policy has no MLS (built without -M): drop the level, or Xen refuses the label with EINVAL"))
        }
        return out
    }

    static func levelProblem(_ p: ContextProblem, mls: Bool) -> String {
        switch p {
        case .unexpectedRange:
            return "the policy has no MLS (built without -M): drop the level, or Xen refuses the label with EINVAL"
        default: return p.description
        }
    }
}
