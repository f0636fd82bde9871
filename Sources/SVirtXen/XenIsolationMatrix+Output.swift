import SELinux
import SELinuxPolicy
import SVirt

extension XenCheck {
    /// The JSON shape of a check.
    public struct Report: Sendable, Codable, Hashable {
        public struct Permission: Sendable, Codable, Hashable {
            public var permission: String
            public var allowed: Bool
            public var reason: String
        }
        public var step: String
        public var hook: String
        public var subject: String
        public var source: String
        public var target: String
        public var targetNote: String?
        public var tclass: String
        public var allowed: Bool
        public var permissions: [Permission]
        public var missingRule: String?
    }

    public var report: Report {
        Report(step: step, hook: hook, subject: subject, source: source.description, target: target.description,
               targetNote: targetNote, tclass: tclass, allowed: allowed,
               permissions: verdicts.map { Report.Permission(permission: $0.permission, allowed: $0.allowed, reason: $0.reason) },
               missingRule: missingRule)
    }

    /// One line per permission: `grant map  web1 → web2  grant { map_read }  allowed`.
    public var lines: [String] {
        let head = "\(step): \(subject) (\(source.type) → \(target.type)\(targetNote.map { ", \($0)" } ?? "")) \(tclass)"
        return [head] + verdicts.map { "    \($0.permission): \($0.allowed ? "allowed" : "denied") — \($0.reason)" }
    }
}

extension XenIsolationMatrix {
    /// The JSON shape of the matrix.
    public struct Report: Sendable, Codable {
        public struct Domain: Sendable, Codable {
            public var name: String
            public var label: String
            public var file: String?
            public var deviceModelOf: String?
            public var targetLabel: String?
        }
        public struct Pair: Sendable, Codable {
            public var source: String
            public var target: String
            public var isolated: Bool
            /// The source is the target's stub device model.
            public var deviceModelOfTarget: Bool
            /// Per access kind: allowed, read-only or denied.
            public var reach: [String: String]
            public var checks: [String: [XenCheck.Report]]
        }
        public var policy: String
        public var xenRelease: String
        public var mls: Bool
        public var domains: [Domain]
        public var pairs: [Pair]
        /// True when no pair is open, a device model reaching its own guest aside.
        public var isolated: Bool
    }

    public func report(policy source: String) -> Report {
        Report(policy: source, xenRelease: policy.release.rawValue, mls: policy.database.isMLS,
               domains: domains.map {
                   Report.Domain(name: $0.name, label: $0.label.description, file: files[$0.name], deviceModelOf: $0.deviceModelOf,
                                 targetLabel: $0.targetLabel?.description)
               },
               pairs: cells.map { c in
                   var reach: [String: String] = [:]
                   var checks: [String: [XenCheck.Report]] = [:]
                   for k in XenAccessKind.allCases {
                       reach[k.rawValue] = c.reach(k).rawValue
                       checks[k.rawValue] = (c.checks[k] ?? []).map(\.report)
                   }
                   return Report.Pair(source: c.source, target: c.target, isolated: c.isolated,
                                      deviceModelOfTarget: c.deviceModelOfTarget, reach: reach, checks: checks)
               },
               isolated: openPairs.isEmpty)
    }

    /// The four-letter code of a cell: G/g grant (g: read-only), E event channel, M/m memory, A Argo; `.` for none.
    public static func code(_ c: Cell) -> String {
        func letter(_ k: XenAccessKind, _ upper: String) -> String {
            switch c.reach(k) {
            case .allowed: return upper
            case .readOnly: return upper.lowercased()
            case .denied: return "."
            }
        }
        return letter(.grant, "G") + letter(.event, "E") + letter(.memory, "M") + letter(.argo, "A")
    }

    public static let legend = "G grant map (g read-only), E event channel, M foreign memory (m read-only), "
        + "A argo send (only when Xen runs Argo: CONFIG_ARGO and argo=1); . denied"

    /// Why a kind of access is allowed or denied, in one line.
    static func why(_ checks: [XenCheck]) -> String {
        if let denied = checks.first(where: { !$0.allowed }) { return "\(denied.step): \(denied.summary)" }
        return checks.map { "\($0.step) allowed" }.joined(separator: ", ")
    }

    /// The matrix as text: the domains, the grid of codes, and the pairs that are not isolated with the reasons.
    public func text(policy source: String, verbose: Bool = false) -> String {
        var out: [String] = []
        out.append("policy:  \(source) (\(policy.release)\(policy.releaseAssumed ? " assumed" : ""), "
                   + "\(policy.database.isMLS ? "MLS" : "no MLS"))")
        out.append("domains:")
        let nameWidth = max(8, domains.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        for d in domains {
            var line = "  \(pad(d.name, nameWidth))  \(d.label)"
            if let t = d.deviceModelOf { line += "  (device model of \(t)\(d.targetLabel.map { ", _target label \($0)" } ?? ""))" }
            if let f = files[d.name] { line += "  [\(f)]" }
            out.append(line)
        }
        out.append("")
        out.append("matrix (may the row domain reach the column domain): \(Self.legend)")
        var index: [String: Cell] = [:]
        for c in cells { index[c.source + "\u{0}" + c.target] = c }
        let colWidth = max(6, domains.map(\.name.count).max() ?? 0) + 2
        out.append("  " + pad("", nameWidth + 2) + domains.map { pad($0.name, colWidth) }.joined())
        for a in domains {
            var line = "  " + pad(a.name, nameWidth + 2)
            for b in domains {
                let cell = index[a.name + "\u{0}" + b.name]
                line += pad(cell.map(Self.code) ?? "self", colWidth)
            }
            out.append(line)
        }
        out.append("")
        let open = openPairs
        for c in cells where c.deviceModelOfTarget {
            let kinds = [XenAccessKind.grant, .event, .memory].filter { c.reach($0) != .denied }.map(\.title)
            out.append("device model: \(c.source) → \(c.target): \(kinds.isEmpty ? "nothing" : kinds.joined(separator: ", ")) "
                       + "(it acts on its guest through its _target label)")
        }
        if open.isEmpty {
            out.append("isolated: no domain can map another's grants, bind its event channels or map its memory")
        } else {
            out.append("not isolated (\(open.count) of \(cells.count) pairs):")
            for c in open {
                let kinds = [XenAccessKind.grant, .event, .memory].filter { c.reach($0) != .denied }
                    .map { "\($0.title)\(c.reach($0) == .readOnly ? " (read-only)" : "")" }
                out.append("  \(c.source) → \(c.target): \(kinds.joined(separator: ", "))")
            }
        }
        let argo = cells.filter { $0.reach(.argo) == .allowed }
        if !argo.isEmpty {
            out.append("argo: \(argo.count) of \(cells.count) pairs may send Argo messages if Xen runs Argo "
                       + "(built with CONFIG_ARGO, booted with argo=1)")
        }
        if verbose {
            out.append("")
            out.append("checks:")
            for c in cells {
                out.append("  \(c.source) → \(c.target): \(c.isolated ? "isolated" : "not isolated")")
                for k in XenAccessKind.allCases {
                    out.append("    \(k.title): \(c.reach(k).rawValue)")
                    for ch in c.checks[k] ?? [] { out += ch.lines.map { "      " + $0 } }
                }
            }
        }
        return out.joined(separator: "\n")
    }

    /// The matrix as a standalone HTML page: readable without JavaScript, each cell's checks and reasons in its
    /// `title` (shown on hover) and in a details list below the table.
    public func html(policy source: String) -> String {
        let esc = HTMLText.escape
        var index: [String: Cell] = [:]
        for c in cells { index[c.source + "\u{0}" + c.target] = c }
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Xen isolation matrix</title>
        <style>
        body { font-family: sans-serif; margin: 2em; color: #222; }
        table.matrix { border-collapse: collapse; }
        table.matrix th, table.matrix td { border: 1px solid #999; padding: 0.4em 0.7em; text-align: center; }
        table.matrix thead th { background: #eee; }
        table.matrix tbody th { background: #eee; text-align: left; }
        td.isolated { background: #d9f2d9; }
        td.open { background: #f8d0d0; font-weight: bold; }
        td.self { background: #f4f4f4; color: #888; }
        td.model { background: #fdf0c8; }
        td[title] { cursor: help; }
        code { font-size: 0.95em; }
        .allowed { color: #a00; }
        .denied { color: #070; }
        </style>
        </head>
        <body>
        <h1>Xen isolation matrix</h1>

        """
        h += "<p>Policy <code>\(esc(source))</code> (\(esc(policy.release.description))"
            + "\(policy.releaseAssumed ? " assumed" : ""), \(policy.database.isMLS ? "MLS" : "no MLS")). "
            + "May the row domain reach the column domain? Hover over a cell for the checks and reasons.</p>\n"
        h += "<p>\(esc(Self.legend)).</p>\n"
        h += "<table class=\"matrix\">\n<caption>Row domain → column domain</caption>\n<thead><tr><th scope=\"col\">from \\ to</th>"
        for d in domains { h += "<th scope=\"col\" title=\"\(esc(d.label.description))\">\(esc(d.name))</th>" }
        h += "</tr></thead>\n<tbody>\n"
        for a in domains {
            h += "<tr><th scope=\"row\" title=\"\(esc(a.label.description))\">\(esc(a.name))</th>"
            for b in domains {
                guard let c = index[a.name + "\u{0}" + b.name] else {
                    h += "<td class=\"self\" title=\"the same domain\">self</td>"
                    continue
                }
                var tip = ["\(a.name) → \(b.name): \(c.isolated ? "isolated" : "not isolated")"]
                for k in XenAccessKind.allCases {
                    tip.append("\(k.title): \(c.reach(k).rawValue) — \(Self.why(c.checks[k] ?? []))")
                }
                let cls = c.isolated ? "isolated" : c.deviceModelOfTarget ? "model" : "open"
                if c.deviceModelOfTarget { tip.append("(\(a.name) is \(b.name)'s device model: it must reach its guest)") }
                h += "<td class=\"\(cls)\" title=\"\(esc(tip.joined(separator: "\n")))\">"
                    + "<code>\(Self.code(c))</code></td>"
            }
            h += "</tr>\n"
        }
        h += "</tbody>\n</table>\n<h2>Domains</h2>\n<ul>\n"
        for d in domains {
            h += "<li><strong>\(esc(d.name))</strong>: <code>\(esc(d.label.description))</code>"
            if let t = d.deviceModelOf { h += ", device model of \(esc(t))" }
            if let f = files[d.name] { h += " (<code>\(esc(f))</code>)" }
            h += "</li>\n"
        }
        h += "</ul>\n<h2>Checks</h2>\n"
        for c in cells {
            h += "<h3 id=\"\(esc(c.source))-\(esc(c.target))\">\(esc(c.source)) → \(esc(c.target)): "
                + "\(c.isolated ? "isolated" : "not isolated")</h3>\n<ul>\n"
            for k in XenAccessKind.allCases {
                h += "<li>\(esc(k.title)): <span class=\"\(c.reach(k) == .denied ? "denied" : "allowed")\">\(c.reach(k).rawValue)</span>\n<ul>\n"
                for ch in c.checks[k] ?? [] {
                    h += "<li><code>\(esc(ch.source.description)) → \(esc(ch.target.description)) \(esc(ch.tclass))</code> "
                        + "(\(esc(ch.step))\(ch.targetNote.map { "; " + esc($0) } ?? ""))<ul>\n"
                    for v in ch.verdicts {
                        h += "<li><span class=\"\(v.allowed ? "allowed" : "denied")\">\(esc(v.permission)): "
                            + "\(v.allowed ? "allowed" : "denied")</span> — \(esc(v.reason))</li>\n"
                    }
                    h += "</ul></li>\n"
                }
                h += "</ul></li>\n"
            }
            h += "</ul>\n"
        }
        h += "</body>\n</html>\n"
        return h
    }
}
