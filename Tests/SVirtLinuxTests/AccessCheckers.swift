import Foundation
import SELinux
import SVirt
import SVirtLinux

/// The access checkers the preflight tests run against. libsepol (through audit2why) is the reference; when
/// svirt's policy engine is wired in, it is added here and every preflight test runs against it too.
enum AccessCheckers {
    static let debianPolicy = "/etc/selinux/default/policy/policy.33"

    static var all: [NamedChecker] {
        var out: [NamedChecker] = []
        if let policy = try? HostSELinuxConfiguration.load(root: "/etc/selinux"), policy.policyPath == debianPolicy {
            out.append(NamedChecker(name: "svirt's policy engine", checker: HostPolicyAccessChecker(policy)))
        }
        out.append(NamedChecker(name: "svirt's built-in policy", checker: BuiltInChecker()))
        if Audit2WhyChecker.available { out.append(NamedChecker(name: "libsepol (audit2why)", checker: Audit2WhyChecker(policy: debianPolicy))) }
        return out
    }
}

struct NamedChecker: Sendable, CustomStringConvertible {
    var name: String
    var checker: any AccessChecker
    var description: String { name }
}

/// svirt's engine over the built-in sVirt policy, for hosts without a policy.
struct BuiltInChecker: AccessChecker {
    func check(source: SecurityContext, target: SecurityContext, objectClass: String, permissions: [String]) throws -> AccessDecision {
        try PolicyAccessChecker.builtIn().check(source: source, target: target, objectClass: objectClass, permissions: permissions)
    }
}

/// libsepol's answers through the system python3-selinux bindings, as an oracle for tests.
struct Audit2WhyChecker: AccessChecker {
    var policy: String

    static var available: Bool {
        FileManager.default.fileExists(atPath: "/usr/bin/python3") && FileManager.default.fileExists(atPath: AccessCheckers.debianPolicy)
            && ((try? run("/usr/bin/python3", ["-c", "import selinux.audit2why"]).status) == 0)
    }

    func check(source: SecurityContext, target: SecurityContext, objectClass: String, permissions: [String]) throws -> AccessDecision {
        let script = """
        import sys, selinux.audit2why as a
        a.init(sys.argv[1])
        rc, data = a.analyze(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(','))
        if rc == a.BOOLEAN:
            print(rc); print(','.join(name for name, value in data))
        else:
            print(rc); print(data or '')
        """
        let r = try run("/usr/bin/python3", ["-c", script, policy, source.description, target.description, objectClass,
                                              permissions.joined(separator: ",")])
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard r.status == 0, let code = lines.first.flatMap({ Int($0) }) else {
            throw SVirtError(.policy, "audit2why failed: \(r.err)")
        }
        let rest = lines.dropFirst().joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        switch code {
        case 0: return .allowed
        case 2: return .denied(Denial(kind: .typeEnforcement))
        case 3: return .denied(Denial(kind: .boolean, booleans: rest.split(separator: ",").map(String.init)))
        case 4: return .denied(Denial(kind: .constraint, detail: rest))
        case 5: return .denied(Denial(kind: .rbac, detail: rest))
        case 6: return .denied(Denial(kind: .bounds, detail: rest))
        default: return .denied(Denial(kind: .other, detail: "audit2why code \(code) \(rest)"))
        }
    }
}
