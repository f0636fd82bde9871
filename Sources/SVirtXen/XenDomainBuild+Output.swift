import SELinux
import SELinuxPolicy

extension XenDomainBuild {
    /// The JSON shape of a build.
    public struct Report: Sendable, Codable {
        public struct Label: Sendable, Codable {
            public var key: String
            public var context: String
            public var line: Int?
            public var role: String
            public var valid: Bool
            public var problems: [String]
        }
        public struct Step: Sendable, Codable {
            public var kind: String
            public var check: XenCheck.Report?
            public var what: String?
            public var label: String?
            public var rule: String?
            public var note: String?
        }
        public var file: String
        public var domain: String
        public var type: String
        public var policy: String
        public var xenRelease: String
        public var labels: [Label]
        public var steps: [Step]
        public var notes: [String]
        public var allowed: Bool
        public var runningLabel: String
        public var deviceModelLabel: String?
    }

    public func report(policy source: String, release: XenRelease) -> Report {
        Report(file: configuration.file, domain: configuration.name, type: configuration.type, policy: source,
               xenRelease: release.rawValue,
               labels: labels.map {
                   Report.Label(key: $0.key, context: $0.context.description, line: $0.line, role: $0.role, valid: $0.valid,
                                problems: $0.problems.map { "\($0.component): \($0.problem)" })
               },
               steps: steps.map { s in
                   switch s {
                   case .check(let c): return Report.Step(kind: "check", check: c.report)
                   case .computed(let l): return Report.Step(kind: "label", what: l.what, label: l.label.description, rule: l.rule)
                   case .note(let n): return Report.Step(kind: "note", note: n)
                   }
               },
               notes: configuration.notes, allowed: allowed, runningLabel: domain.label.description,
               deviceModelLabel: deviceModel?.label.description)
    }

    /// One line per permission checked and per computed label, for golden files:
    /// `STEP;SOURCE;TARGET;CLASS;PERMISSION;allowed|denied` and `=WHAT;LABEL`.
    public var stepLines: [String] {
        var out: [String] = []
        for s in steps {
            switch s {
            case .check(let c):
                for v in c.verdicts {
                    out.append("\(c.step);\(c.source);\(c.target);\(c.tclass);\(v.permission);\(v.allowed ? "allowed" : "denied")")
                }
            case .computed(let l): out.append("=\(l.what);\(l.label)")
            case .note: break
            }
        }
        return out
    }

    /// The build as text: the labels, each step with its verdict and reasons, and the result.
    public func text(policy source: String, release: XenRelease, assumed: Bool) -> String {
        var out: [String] = []
        out.append("config:  \(configuration.file)")
        out.append("domain:  \(configuration.name) (\(configuration.type)\(configuration.stubDomain ? ", stub device model" : ""))")
        out.append("policy:  \(source) (\(release)\(assumed ? " assumed" : ""))")
        for n in configuration.notes { out.append("note:    \(n)") }
        out.append("labels:")
        for l in labels {
            let at = l.line.map { " (line \($0))" } ?? ""
            out.append("  \(l.role): \(l.context)  [\(l.key)\(at)]  \(l.valid ? "valid" : "NOT VALID")")
            for p in l.problems { out.append("      \(p.component): \(p.problem)") }
        }
        out.append("steps:")
        var n = 0
        for s in steps {
            switch s {
            case .check(let c):
                n += 1
                let perms = c.permissions.count == 1 ? c.permissions[0] : "{ " + c.permissions.joined(separator: " ") + " }"
                out.append(String(format: "%3d. ", n) + "\(c.step): \(c.subject)  \(c.tclass) \(perms)  "
                           + (c.allowed ? "allowed" : "DENIED"))
                out.append("       \(c.source) → \(c.target)" + (c.targetNote.map { "  (\($0))" } ?? ""))
                out.append("       hook: \(c.hook)")
                for v in c.verdicts where !v.allowed { out.append("       \(v.permission): \(v.reason)") }
                if let rule = c.missingRule { out.append("       fix: \(rule)") }
            case .computed(let l):
                out.append("     = \(l.what): \(l.label)  (\(l.rule))")
            case .note(let note):
                out.append("     ! \(note)")
            }
        }
        let checks = self.checks
        let failed = checks.filter { !$0.allowed }
        if allowed {
            out.append("result:  allowed: every label is valid and all \(checks.count) checks pass")
        } else if labels.contains(where: { !$0.valid }) {
            out.append("result:  DENIED: a label is not valid in this policy; xl create stops at FLASK_CONTEXT_TO_SID")
        } else {
            out.append("result:  DENIED: \(failed.count) of \(checks.count) checks fail; the first is '\(failed[0].step)'")
        }
        return out.joined(separator: "\n")
    }
}
