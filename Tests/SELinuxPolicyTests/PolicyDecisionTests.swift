import Foundation
import SELinux
import Testing
@testable import SELinuxPolicy

/// Decisions on the fixture policy (Tests/Fixtures/policy/src/small.conf), each worked out from its rules.
@Suite("decisions and reasons")
struct PolicyDecisionTests {
    let p: PolicyDatabase

    init() throws { p = try loadPolicy("\(fixtureDirectory)/small.33") }

    func check(_ s: String, _ t: String, _ c: String, _ perms: [String], _ policy: PolicyDatabase? = nil) throws -> AccessCheck {
        let db = policy ?? p
        return db.check(source: try db.resolve(s), target: try db.resolve(t), class: c, permissions: perms)
    }

    @Test("a constraint on users denies write while read stays allowed")
    func userConstraint() throws {
        let r = try check("user_u:user_r:user_t:s0", "system_u:object_r:file_t:s0", "file", ["read", "write"])
        #expect(r.result == .constraint)
        #expect(r.permissions[0].reason == .allowed)
        guard case .constraint(let cs) = r.permissions[1].reason else { Issue.record("write: \(r.permissions[1].reason)"); return }
        #expect(cs.map(\.text) == ["constrain file { write relabelto } (u1 == u2 or t1 == can_change_identity);"])
        #expect(cs[0].failedTerms == ["u1 == u2", "t1 == can_change_identity"])
        #expect(!cs[0].isMLS)
    }

    @Test("a dontaudit rule makes a TE denial DONTAUDIT, and the boolean that would allow it is found")
    func dontauditAndBoolean() throws {
        let hidden = try check("user_u:user_r:user_t:s0", "system_u:object_r:secret_t:s0", "file", ["write"])
        #expect(hidden.result == .dontaudit)
        #expect(!hidden.permissions[0].auditedWhenDenied)
        // Same user on both sides: flipping allow_write passes the user constraint too.
        let fixable = try check("user_u:user_r:user_t:s0", "user_u:object_r:secret_t:s0", "file", ["write"])
        #expect(fixable.result == .boolean)
        #expect(fixable.booleans == [BooleanSetting(name: "allow_write", value: true)])
        let on = try p.settingBooleans(["allow_write": true])
        #expect(try check("user_u:user_r:user_t:s0", "user_u:object_r:secret_t:s0", "file", ["write"], on).result == .allow)
        #expect(p.booleanValue("allow_write") == false && on.booleanValue("allow_write") == true)
    }

    @Test("conditional rules follow boolean overrides, in both branches")
    func conditionals() throws {
        // type_transition app_t tmp_t:file file_t sits in `if (allow_exec && !feature_x)`.
        let app = try p.resolve("system_u:system_r:app_t:s0"), tmp = try p.resolve("system_u:object_r:tmp_t:s0")
        #expect(try p.computeCreate(source: app, target: tmp, class: "file").type == "file_t")
        let featureOn = try p.settingBooleans(["feature_x": true])
        // Without the rule, default_type file source gives the creating process's type.
        #expect(try featureOn.computeCreate(source: app, target: tmp, class: "file").type == "app_t")
        // getattr on secret_t is in the false branch of allow_write; write in its true branch.
        let user = "user_u:user_r:user_t:s0", secret = "user_u:object_r:secret_t:s0"
        let off = try p.decide(source: user, target: secret, class: "file")
        #expect(off.allowedPermissions.contains("getattr") && !off.allowedPermissions.contains("write"))
        let on = try p.settingBooleans(["allow_write": true]).decide(source: user, target: secret, class: "file")
        #expect(on.allowedPermissions.contains("write"))
        #expect(throws: PolicyFormatError.self) { try p.settingBooleans(["no_such_boolean": true]) }
    }

    @Test("typebounds take away what the bounding type may not do")
    func bounds() throws {
        // child_t is exempt from the MLS read constraint, its bounding type app_t is not.
        let r = try check("user_u:user_r:child_t:s0", "system_u:object_r:file_t:s0:c1", "file", ["read"])
        #expect(r.result == .bounds)
        #expect(r.permissions[0].reason == .bounds(boundingType: "app_t"))
        #expect(try check("user_u:user_r:child_t:s0:c1", "system_u:object_r:file_t:s0:c1", "file", ["read"]).result == .allow)
    }

    @Test("a role change without a role allow rule is RBAC")
    func rbac() throws {
        let r = try check("system_u:system_r:kernel_t:s0", "admin_u:admin_r:admin_t:s0", "process", ["transition"])
        #expect(r.result == .rbac)
        #expect(r.permissions[0].reason == .rbac(sourceRole: "system_r", targetRole: "admin_r"))
        #expect(try check("system_u:system_r:kernel_t:s0", "system_u:user_r:user_t:s0", "process", ["transition"]).result == .allow)
    }

    @Test("permissive types are flagged, unknown classes follow handle_unknown")
    func permissiveAndUnknown() throws {
        let d = try p.decide(source: "admin_u:admin_r:admin_t:s0", target: "system_u:object_r:file_t:s0", class: "file")
        #expect(d.permissive)
        #expect(p.isPermissive(type: "admin_t") && !p.isPermissive(type: "user_t"))
        let u = try p.decide(source: "user_u:user_r:user_t:s0", target: "system_u:object_r:file_t:s0", class: "no_such_class")
        #expect(u.allowed == .none)
        let r = try check("user_u:user_r:user_t:s0", "system_u:object_r:file_t:s0", "file", ["read", "fly"])
        #expect(r.permissions[1].reason == .unknown(.deny) && !r.allowed)
    }

    @Test("context validity says which rule a context breaks")
    func validity() throws {
        func v(_ s: String) throws -> ContextProblem? { p.validity(of: try SecurityContext(parsing: s)) }
        #expect(try v("user_u:user_r:user_t:s0") == nil)
        #expect(try v("user_u:admin_r:admin_t:s0") == .roleNotAuthorized(user: "user_u", role: "admin_r"))
        #expect(try v("user_u:user_r:admin_t:s0") == .typeNotInRole(role: "user_r", type: "admin_t"))
        #expect(try v("user_u:user_r:user_t:s0:c6") == .rangeOutsideUser(range: "s0:c6", user: "user_u", userRange: "s0-s0:c0.c5"))
        #expect(try v("user_u:user_r:user_t:s2") == .unknownSensitivity("s2"))
        #expect(try v("user_u:user_r:user_t:s0:c9") == .unknownCategory("c9"))
        #expect(try v("user_u:user_r:domain:s0") == .typeIsAttribute("domain"))
        #expect(try v("nobody:user_r:user_t:s0") == .unknownUser("nobody"))
        #expect(try v("user_u:user_r:user_t") == .missingRange)
        #expect(try v("system_u:object_r:public_t:s1:c7") == nil, "aliases and object_r contexts")
        #expect(throws: PolicyFormatError.self) { try p.resolve("user_u:admin_r:admin_t:s0") }
    }

    @Test("computeCreate applies type, role and range transitions, name transitions and default rules")
    func create() throws {
        let s = "system_u:system_r:user_t:s0", tmp = "system_u:object_r:tmp_t:s0"
        #expect(try p.computeCreate(source: p.resolve(s), target: p.resolve(tmp), class: "file").description
                == "system_u:object_r:shared_t:s1:c1")
        #expect(try p.computeCreate(source: p.resolve(s), target: p.resolve(tmp), class: "file", objectName: "secret.txt").description
                == "system_u:object_r:secret_t:s1:c1")
        // default_user file target: the new file takes the target's user.
        let other = "user_u:object_r:tmp_t:s0"
        #expect(try p.computeCreate(source: p.resolve(s), target: p.resolve(other), class: "file").user == "user_u")
        // A process: type_transition and range_transition on exec_t.
        #expect(try p.computeCreate(source: p.resolve("system_u:system_r:user_t:s0"), target: p.resolve("system_u:object_r:exec_t:s0"),
                                    class: "process").description == "system_u:system_r:app_t:s0-s1:c0.c3")
        // user_r has a role_transition to admin_r for tmp_t files, and admin_r lacks shared_t: not a valid label.
        #expect(throws: PolicyFormatError.self) {
            try p.computeCreate(source: p.resolve("user_u:user_r:user_t:s0"), target: p.resolve(tmp), class: "file")
        }
    }

    @Test("the cache answers like the engine, from many threads at once")
    func cache() async throws {
        let policy = p
        let cache = AccessVectorCache(policy: policy, capacity: 64)
        let contexts = try ["user_u:user_r:user_t:s0", "system_u:object_r:file_t:s0", "system_u:object_r:secret_t:s0:c1",
                            "user_u:user_r:child_t:s0", "system_u:system_r:kernel_t:s0", "admin_u:admin_r:admin_t:s0"]
            .map { try policy.resolve($0) }
        let classes = policy.classes
        await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<2000 {
                        let s = contexts[(i + worker) % contexts.count], t = contexts[(i * 7 + worker) % contexts.count]
                        let c = classes[i % classes.count]
                        let got = cache.accessVectors(source: cache.sid(for: s), target: cache.sid(for: t), classValue: c.value)
                        let want = policy.accessVectors(source: s, target: t, classValue: c.value)
                        if got.allowed != want.allowed || got.auditAllow != want.auditAllow || got.auditDeny != want.auditDeny {
                            wrong += 1
                        }
                    }
                    return wrong
                }
            }
            var total = 0
            for await w in group { total += w }
            #expect(total == 0)
        }
        #expect(cache.sidCount == contexts.count)
        let stats = cache.statistics
        #expect(stats.hits > 0 && stats.hits + stats.misses == 16_000)
        let sid = cache.sid(for: contexts[0])
        #expect(cache.context(for: sid)?.context.type == "user_t")
        #expect(cache.context(for: SecurityID(rawValue: 999)) == nil)
    }

    @Test("a denial cut short (tclass=fi, a partial permission) is UNKNOWN to the policy, naming it, not allowed through handle_unknown")
    func truncatedDenial() throws {
        let p = try loadPolicy("\(fixtureDirectory)/tiny.33")
        #expect(p.handleUnknown == .allow)
        func explain(_ tail: String) throws -> DenialExplanation {
            let line = "type=AVC msg=audit(1.2:3): avc:  denied  { read } for  pid=7 comm=\"qemu\" name=\"d\" "
                + "scontext=sys_u:sys_r:other_t tcontext=sys_u:object_r:data_t \(tail)"
            let r = try #require(try AVCRecord.parse(line))
            return p.explain(denial: r)
        }
        let cut = try explain("tclass=fi")
        #expect(cut.result == "UNKNOWN")
        #expect(cut.reason.contains("the class 'fi' is not defined in this policy"), "\(cut.reason)")
        #expect(cut.reason.contains("'file'") && cut.reason.contains("cut short"))
        #expect(cut.fixes.first?.contains("ausearch") == true)
        let other = try explain("tclass=filesyst")
        #expect(other.result == "UNKNOWN" && other.reason.contains("'filesyst'"))
        // A permission the class does not have is named too.
        let line = "type=AVC msg=audit(1.2:3): avc:  denied  { rea } for  pid=7 comm=\"qemu\" "
            + "scontext=sys_u:sys_r:other_t tcontext=sys_u:object_r:data_t tclass=file permissive=0"
        let perm = p.explain(denial: try #require(try AVCRecord.parse(line)))
        #expect(perm.result == "UNKNOWN")
        #expect(perm.reason.contains("the class 'file' has no permission 'rea'"), "\(perm.reason)")
        // The whole record is decided as before.
        #expect(try explain("tclass=file permissive=0").result == "ALLOW")
    }
}
