import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy

/// `svirt policy check`: may SCON do PERM... to TCON of CLASS, and why not.
struct PolicyCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Decide SCON TCON CLASS PERM... like security_compute_av, with a reason per permission.",
        discussion: """
            Exits 0 when every permission is allowed and 1 when one is denied. With --batch, reads one query per \
            line (SCON TCON CLASS PERM...) and prints RESULT<TAB>query, RESULT being ALLOW, DONTAUDIT, TERULE, \
            BOOLEAN, CONSTRAINT, RBAC or BOUNDS in audit2why's order (TE first, then constraint, RBAC, bounds).
            """)

    @OptionGroup var options: PolicyOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("Read queries from FILE, one per line ('-' for standard input).", valueName: "FILE"))
    var batch: String?

    @Argument(help: ArgumentHelp("Source context, target context, class and permissions.", valueName: "SCON TCON CLASS PERM"))
    var query: [String] = []

    func validate() throws {
        if batch == nil, query.count < 4 {
            throw ValidationError("give SCON TCON CLASS PERM..., e.g. system_u:system_r:svirt_t:s0:c1,c2 "
                                  + "system_u:object_r:svirt_image_t:s0:c1,c2 file read write; or --batch FILE")
        }
        if batch != nil, !query.isEmpty { throw ValidationError("give either a query or --batch FILE, not both") }
    }

    func run() async throws {
        let (policy, source) = try options.load()
        if let batch { try runBatch(policy, batch); return }
        let s = try resolveContext(query[0], in: policy, role: "source")
        let t = try resolveContext(query[1], in: policy, role: "target")
        let result = policy.check(source: s, target: t, class: query[2], permissions: Array(query[3...]))
        if json {
            try printJSON(CheckJSON(result, policy: source))
        } else {
            print(Self.text(result, policy: source))
        }
        if !result.allowed { throw ExitCode(1) }
    }

    func runBatch(_ policy: PolicyDatabase, _ path: String) throws {
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read batch file '\(path)': no such file or not readable")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        var contexts: [String: PolicyContext] = [:]
        var failures = 0
        var out = ""
        for (n, raw) in text.textLines().enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let query = words.joined(separator: " ")
            guard words.count >= 4 else {
                out += "ERROR\t\(query)\tline \(n + 1): write SCON TCON CLASS PERM...\n"
                failures += 1
                continue
            }
            do {
                func ctx(_ s: String) throws -> PolicyContext {
                    if let c = contexts[s] { return c }
                    let c = try policy.resolve(s)
                    contexts[s] = c
                    return c
                }
                let r = policy.check(source: try ctx(words[0]), target: try ctx(words[1]), class: words[2],
                                     permissions: Array(words[3...]))
                out += "\(r.result.rawValue)\t\(query)\n"
            } catch let e as PolicyFormatError {
                out += "ERROR\t\(query)\tline \(n + 1): \(e.section): \(e.found)\n"
                failures += 1
            }
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        if failures > 0 {
            printError("svirt policy check: \(failures) queries could not be read (see the ERROR lines)")
            throw ExitCode(2)
        }
    }

    static func text(_ r: AccessCheck, policy: String) -> String {
        var lines = [
            "policy:  \(policy)",
            "source:  \(r.source)",
            "target:  \(r.target)",
            "class:   \(r.tclass)",
            "result:  \(r.result.rawValue)",
        ]
        if r.decision?.permissive == true { lines.append("note:    the source type is permissive: denials are only logged") }
        if !r.booleans.isEmpty {
            lines.append("fix:     " + r.booleans.map { "setsebool -P \($0.name) \($0.value ? "on" : "off")" }.joined(separator: "  or  "))
        }
        let width = r.permissions.map(\.permission.count).max() ?? 0
        for v in r.permissions {
            let name = v.permission.padding(toLength: width, withPad: " ", startingAt: 0)
            var line = "  \(name)  \(v.allowed ? "allowed" : "denied ")  "
            switch v.reason {
            case .allowed: line += v.auditedWhenAllowed ? "allow rule (auditallow: logged)" : "allow rule"
            case .constraint(let cs):
                line += "constraint"
                for c in cs {
                    line += "\n      \(c.text)"
                    if !c.failedTerms.isEmpty { line += "\n      false: " + c.failedTerms.joined(separator: ", ") }
                }
            default:
                line += v.reason.description
                if !v.allowed, !v.auditedWhenDenied { line += " (dontaudit: not logged)" }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// The JSON shape of one check.
struct CheckJSON: Codable {
    struct Permission: Codable {
        var permission: String
        var allowed: Bool
        var reason: String
        var detail: String
        var booleans: [BooleanSetting]?
        var constraints: [ConstraintFailure]?
        var auditedWhenDenied: Bool
    }
    var policy: String
    var source: String
    var target: String
    var tclass: String
    var result: String
    var allowed: Bool
    var allowedPermissions: [String]?
    var booleans: [BooleanSetting]
    var constraints: [ConstraintFailure]
    var permissions: [Permission]

    init(_ r: AccessCheck, policy: String) {
        self.policy = policy
        source = r.source.description
        target = r.target.description
        tclass = r.tclass
        result = r.result.rawValue
        allowed = r.allowed
        allowedPermissions = r.decision?.allowedPermissions
        booleans = r.booleans
        constraints = r.constraints
        permissions = r.permissions.map { v in
            var p = Permission(permission: v.permission, allowed: v.allowed, reason: "", detail: v.reason.description,
                               auditedWhenDenied: v.auditedWhenDenied)
            switch v.reason {
            case .allowed: p.reason = "allowed"
            case .typeEnforcement: p.reason = "te"
            case .boolean(let b): p.reason = "boolean"; p.booleans = b
            case .constraint(let c): p.reason = "constraint"; p.constraints = c
            case .rbac: p.reason = "rbac"
            case .bounds: p.reason = "bounds"
            case .unknown: p.reason = "unknown"
            }
            return p
        }
    }
}
