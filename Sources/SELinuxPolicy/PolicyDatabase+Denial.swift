import SELinux

/// Why one AVC denial happened under a policy, and what would fix it: the audit2why result, a sentence, and the
/// commands or rules that would allow the access.
public struct DenialExplanation: Sendable, Hashable, Codable {
    public var permissions: [String]
    public var source: String
    public var target: String
    public var tclass: String
    /// The object's path or name, when the record gives one.
    public var object: String?
    /// audit2why's result (`BOOLEAN`, `TERULE`, `CONSTRAINT`, ...), `ALLOW` when the policy allows it now,
    /// `INVALID` when the contexts are not valid in the policy, or `UNKNOWN` when the policy has no such class or
    /// permission (a record cut short by a console, or logged under another policy).
    public var result: String
    public var reason: String
    /// `setsebool -P NAME on`, `chcon -t TYPE FILE`, the missing rule, the constraint text.
    public var fixes: [String]
    /// The booleans that would allow it (result `BOOLEAN`), with the value they need.
    public var booleans: [BooleanSetting]

    public init(permissions: [String], source: String, target: String, tclass: String, object: String? = nil,
                result: String = "", reason: String = "", fixes: [String] = [], booleans: [BooleanSetting] = []) {
        self.permissions = permissions
        self.source = source
        self.target = target
        self.tclass = tclass
        self.object = object
        self.result = result
        self.reason = reason
        self.fixes = fixes
        self.booleans = booleans
    }
}

extension PolicyDatabase {
    /// Explains an AVC denial with this policy (and its current boolean values): the reason in audit2why's terms
    /// and the fixes.
    public func explain(denial r: AVCRecord) -> DenialExplanation {
        var e = DenialExplanation(permissions: r.permissions, source: r.source.description, target: r.target.description,
                                  tclass: r.tclass, object: r.objectName)
        let s: PolicyContext, t: PolicyContext
        do {
            s = try resolve(r.source)
            t = try resolve(r.target)
        } catch let err as PolicyFormatError {
            e.result = "INVALID"
            e.reason = "\(err.section): \(err.found); this policy is not the one that logged the denial"
            return e
        } catch {
            e.result = "INVALID"
            e.reason = "\(error)"
            return e
        }
        // A class or permission the policy does not define is reported as such, never decided through
        // handle_unknown: a record cut short by a serial console (`tclass=fi`) would otherwise read as allowed.
        if let unknown = unknownNames(tclass: r.tclass, permissions: r.permissions) {
            e.result = "UNKNOWN"
            e.reason = unknown
            e.fixes = ["read the whole record from the audit log (ausearch -m AVC -i) or the kernel log (dmesg); a record "
                       + "cut short by a console names a class or permission that is only the start of the real one, "
                       + "or explain it with the policy that logged it (--policy)"]
            return e
        }
        let c = check(source: s, target: t, class: r.tclass, permissions: r.permissions)
        e.result = c.result.rawValue
        let file = r.objectName ?? "FILE"
        let denied = c.permissions.filter { !$0.allowed }.map(\.permission)
        switch c.result {
        case .allow:
            e.reason = "this policy allows it now; the denial came from another policy or other boolean values"
        case .boolean:
            e.reason = "no allow rule grants it now, but "
                + (c.booleans.count == 1 ? "the boolean \(c.booleans[0].name) enables one" : "a boolean enables one")
            e.booleans = c.booleans
            e.fixes = c.booleans.map { "setsebool -P \($0.name) \($0.value ? "on" : "off")" }
        case .teRule, .dontaudit:
            e.reason = "no allow rule grants \(r.source.type) { \(denied.joined(separator: " ")) } on \(r.target.type):\(r.tclass)"
                + (c.result == .dontaudit ? " (a dontaudit rule hides it from the log)" : "")
            if r.target.role == "object_r", let better = relabelTarget(c, s: s, t: t) {
                e.fixes = ["chcon -t \(better) \(file)"]
            } else {
                e.fixes = ["the policy needs: allow \(r.source.type) \(r.target.type):\(r.tclass) { \(denied.joined(separator: " ")) };"]
            }
        case .constraint:
            let mls = c.constraints.contains(where: \.isMLS)
            if mls, let sl = r.source.range, let tl = r.target.range, !sl.high.dominates(tl.low) || !sl.high.dominates(tl.high) {
                e.reason = "the MCS categories differ: this process may not touch another VM's files "
                    + "(\(sl) does not dominate \(tl))"
                e.fixes = ["give the file the VM's own level (\(sl.low)) if it belongs to this VM, or share it read-only with "
                           + "virt_content_t:s0; never give one VM another VM's categories"]
            } else {
                e.reason = "a constraint forbids it"
            }
            e.fixes += c.constraints.map { "constraint: \($0.text)" + ($0.failedTerms.isEmpty ? "" : " (false: \($0.failedTerms.joined(separator: ", ")))") }
        case .rbac:
            e.reason = "role \(r.source.role) may not change to role \(r.target.role)"
            e.fixes = ["the policy needs: allow \(r.source.role) \(r.target.role);"]
        case .bounds:
            e.reason = "the type's typebounds parent lacks these permissions"
            for v in c.permissions {
                if case .bounds(let b) = v.reason { e.fixes = ["grant them to the bounding type \(b) first"]; break }
            }
        }
        return e
    }

    /// Why a denial's class or permissions are unknown to this policy, naming them, or nil when the policy
    /// defines them all.
    func unknownNames(tclass: String, permissions: [String]) -> String? {
        guard let c = storage.classByName[tclass], Int(c) >= 1, Int(c) <= storage.permissionByName.count else {
            let known = storage.classByName.keys.filter { $0.hasPrefix(tclass) && $0 != tclass }.sorted()
            return "the class '\(tclass)' is not defined in this policy, so it cannot be decided"
                + (known.isEmpty ? "" : " (it is the start of \(known.prefix(5).map { "'\($0)'" }.joined(separator: ", ")): "
                                      + "the record may have been cut short)")
        }
        let table = storage.permissionByName[Int(c) - 1]
        let missing = permissions.filter { table[$0] == nil }
        guard !missing.isEmpty else { return nil }
        return "the class '\(tclass)' has no permission \(missing.map { "'\($0)'" }.joined(separator: ", ")) in this policy, "
            + "so it cannot be decided"
    }

    /// A type for the object that would allow the whole request, preferring the sVirt image types.
    func relabelTarget(_ c: AccessCheck, s: PolicyContext, t: PolicyContext) -> String? {
        let preferred = ["svirt_image_t", "virt_content_t", "svirt_tmp_t", "svirt_home_t"]
        let others = types.filter { !$0.isAttribute }.map(\.name).sorted()
        let perms = c.permissions.map(\.permission)
        for name in preferred + others where name != t.context.type {
            guard let alt = try? resolve(t.context.with(type: name)) else { continue }
            if check(source: s, target: alt, class: c.tclass, permissions: perms).allowed { return name }
        }
        return nil
    }
}
