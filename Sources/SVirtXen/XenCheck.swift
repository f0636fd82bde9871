import SELinux
import SELinuxPolicy

/// One access check the hypervisor makes (`avc_has_perm` in xen/xsm/flask), with the verdict and the reason for each
/// permission, or why it could not be made.
public struct XenCheck: Sendable {
    /// What happens or is being asked, e.g. "create", "grant map", "relabelfrom".
    public var step: String
    /// Where Xen checks it, e.g. "XEN_DOMCTL_createdomain".
    public var hook: String
    /// Who does what to whom, in domain names: "dom0 → web1".
    public var subject: String
    public var source: SecurityContext
    public var target: SecurityContext
    /// How the target label was chosen when Xen substitutes it: "web1's _self label (same domain)".
    public var targetNote: String?
    public var tclass: String
    public var permissions: [String]
    public var outcome: Outcome

    public enum Outcome: Sendable {
        /// The policy decided.
        case decided(AccessCheck)
        /// The check is never made: a label is not valid, or an earlier step failed.
        case notReached(String)
    }

    /// True when every permission is allowed.
    public var allowed: Bool {
        if case .decided(let c) = outcome { return c.allowed }
        return false
    }

    /// Each permission with its verdict and reason, as text.
    public var verdicts: [(permission: String, allowed: Bool, reason: String)] {
        switch outcome {
        case .decided(let c):
            return c.permissions.map { v in
                var reason: String
                switch v.reason {
                case .allowed: reason = v.auditedWhenAllowed ? "allowed (auditallow: logged)" : "allowed"
                case .constraint(let cs):
                    reason = "denied by constraint: " + cs.map { c in
                        c.text + (c.failedTerms.isEmpty ? "" : " (false: " + c.failedTerms.joined(separator: ", ") + ")")
                    }.joined(separator: "; ")
                case .typeEnforcement:
                    reason = "denied by TE: no rule 'allow \(c.source.type) \(c.target.type):\(c.tclass) \(v.permission);'"
                default: reason = v.reason.description
                }
                return (v.permission, v.allowed, reason)
            }
        case .notReached(let why):
            return permissions.map { ($0, false, why) }
        }
    }

    /// One line: "denied: ..." or "allowed".
    public var summary: String {
        if allowed { return "allowed" }
        let denied = verdicts.filter { !$0.allowed }
        if case .notReached(let why) = outcome { return "not reached: \(why)" }
        return "denied: " + denied.map { "\($0.permission) (\($0.reason))" }.joined(separator: "; ")
    }

    /// The statement that would allow the denied permissions, when TE is what denies them.
    public var missingRule: String? {
        guard case .decided(let c) = outcome else { return nil }
        let te = c.permissions.filter { v in
            if case .typeEnforcement = v.reason { return true }
            return false
        }.map(\.permission)
        guard !te.isEmpty else { return nil }
        let perms = te.count == 1 ? te[0] : "{ " + te.joined(separator: " ") + " }"
        return "allow \(source.type) \(target.type):\(tclass) \(perms);"
    }
}

/// A label the policy computes rather than checks (a domain's _self label, a channel's label), shown as a step.
public struct XenComputedLabel: Sendable, Hashable {
    /// "web1's _self label".
    public var what: String
    public var label: SecurityContext
    /// How: "type_transition domU_t domU_t:domain" or "no type_transition: the same label".
    public var rule: String
}
