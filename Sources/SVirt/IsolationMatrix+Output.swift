extension IsolationMatrix {
    /// A column of the matrix: a resource, or a VM's process.
    public struct Column: Sendable, Hashable {
        /// A resource id (`r1`) or `process:NAME`.
        public var target: String
        /// Short text for a header: the file name, or the VM's name.
        public var heading: String
        /// Who it belongs to: `a`, `shared`, or `process` for a VM's process.
        public var group: String
        /// Everything about it, for a tooltip.
        public var detail: String
    }

    /// The columns in order: each VM's private resources, the shared ones, then the VM processes.
    public var columns: [Column] {
        var out: [Column] = []
        let rows = machines.filter { $0.process != nil }
        for m in machines {
            for r in resources where r.owner == m.name { out.append(column(r)) }
        }
        for r in resources where r.owner == nil { out.append(column(r)) }
        for m in rows {
            out.append(Column(target: "process:\(m.name)", heading: m.name, group: "process",
                              detail: "the process of '\(m.name)'\n\(m.process ?? "")"))
        }
        return out
    }

    func column(_ r: Resource) -> Column {
        let base = r.path.split(separator: "/").last.map(String.init) ?? r.path
        let uses = r.users.map { "\($0.vm): \($0.resource) (\($0.access.rawValue))" }.joined(separator: "\n")
        return Column(target: r.id, heading: base, group: r.owner ?? "shared",
                      detail: "\(r.id) \(r.path)\n\(r.context) [\(r.objectClass)]\n"
                      + (r.owner.map { "private to '\($0)'" } ?? "shared") + "\n" + uses + (r.note.map { "\n" + $0 } ?? ""))
    }

    /// The cells by row VM and target, for drawing the grid without a search per cell.
    func cellTable() -> [String: [String: Cell]] {
        var out: [String: [String: Cell]] = [:]
        for c in cells { out[c.vm, default: [:]][c.target] = c }
        return out
    }

    /// The VMs that have a row (a process label).
    public var rowMachines: [Machine] { machines.filter { $0.process != nil } }

    /// A cell's code: the access it has (`r` read, `w` write or append, `x` execute, `m` map, `a` setattr; for
    /// processes `k` signal, sigkill or sigstop, `p` ptrace), or `.` for none.
    public static func code(_ c: Cell) -> String {
        let a = Set(c.allowed)
        var s = ""
        if c.objectClass == "process" {
            if !a.isDisjoint(with: ["signal", "sigkill", "sigstop"]) { s += "k" }
            if a.contains("ptrace") { s += "p" }
        } else {
            if a.contains("read") { s += "r" }
            if !a.isDisjoint(with: ["write", "append"]) { s += "w" }
            if a.contains("execute") { s += "x" }
            if a.contains("map") { s += "m" }
            if a.contains("setattr") { s += "a" }
        }
        return s.isEmpty ? "." : s
    }

    public static let legend = "r read, w write/append, x execute, m map, a setattr, k signal, p ptrace, . none; "
        + "= own resource with what it needs, ~ shared, ! FAIL"

    /// What a cell's tooltip says: the pair, the relation, what is allowed, what is needed, and each refusal with
    /// the policy's reason (permissions refused for the same reason are listed together).
    public func tooltip(_ c: Cell) -> String { tooltip(c, resources.first { $0.id == c.target }) }

    func tooltip(_ c: Cell, _ resource: Resource?) -> String {
        var lines: [String] = []
        if let r = resource {
            lines.append("\(c.vm) → \(r.path)")
            lines.append("\(r.context) [\(r.objectClass)]")
            switch c.relation {
            case .own: lines.append("own resource")
            case .shared: lines.append("shared resource it uses")
            case .foreign: lines.append("private resource of '\(r.owner ?? "?")'")
            case .unused: lines.append("shared resource it does not use")
            }
        } else {
            lines.append("\(c.vm) → the process of '\(c.target.dropFirst("process:".count))'")
        }
        lines.append("state: \(c.state.rawValue)")
        if !c.needed.isEmpty { lines.append("needs: \(c.needed.joined(separator: " "))") }
        lines.append("allowed: \(c.allowed.isEmpty ? "nothing" : c.allowed.joined(separator: " "))")
        var byReason: [(String, [String])] = []
        for p in c.deniedPermissions {
            let r = p.reason ?? "denied"
            if let i = byReason.firstIndex(where: { $0.0 == r }) { byReason[i].1.append(p.name) } else { byReason.append((r, [p.name])) }
        }
        for (r, names) in byReason { lines.append("denied \(names.joined(separator: " ")): \(r)") }
        return lines.joined(separator: "\n")
    }

    static func marker(_ s: CellState) -> String {
        switch s {
        case .own: return "="
        case .shared: return "~"
        case .denied: return " "
        case .fail: return "!"
        }
    }

    /// The findings and a compact matrix, for a terminal.
    public func text() -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var out: [String] = []
        let bools = booleans.keys.sorted().map { "\($0)=\(booleans[$0] == true ? 1 : 0)" }
        out.append("policy: \(policy)\(bools.isEmpty ? "" : " (booleans: \(bools.joined(separator: " ")))")")
        let width = max(4, machines.map(\.name.count).max() ?? 0)
        out.append("VMs:")
        for m in machines {
            out.append("  \(pad(m.name, width))  \(pad(m.state, 7))  \(pad(m.labelType, 7))  "
                       + "\(m.process ?? "no process label (type none)")\(m.plannedLevel ? "  (planned level)" : "")")
        }
        out.append("resources:")
        for r in resources {
            let uses = r.users.map { "\($0.vm) \($0.resource) \($0.access == .read ? "ro" : "rw")" }.joined(separator: ", ")
            out.append("  \(pad(r.id, 4)) \(r.path)  \(r.context)  \(r.objectClass)  "
                       + "\(r.owner.map { "private to \($0)" } ?? "shared")  [\(uses)]\(r.note.map { "  (\($0))" } ?? "")")
        }
        let rows = rowMachines
        if detail == .findings {
            out.append("")
            out.append("matrix: \(rows.count) VMs by \(resources.count) resources and \(rows.count) processes, "
                       + "\(cells.count + omittedCells) cells from \(decisions) distinct policy decisions; the grid is left "
                       + "out above \(Detail.automaticLimit) VMs (--json, --html or --svg give every cell); "
                       + "\(omittedCells) cells refuse every access and are not kept")
        }
        let cols = detail == .findings ? [] : columns
        let table = detail == .findings ? [:] : cellTable()
        if !rows.isEmpty && detail != .findings {
            out.append("")
            out.append("matrix (what the row VM's process may do to the column): \(Self.legend)")
            let colWidth = max(6, cols.map { $0.group == "process" ? $0.heading.count + 1 : $0.target.count }.max() ?? 0) + 1
            out.append("  " + pad("", width + 2) + cols.map { pad($0.group == "process" ? "@" + $0.heading : $0.target, colWidth) }.joined())
            for m in rows {
                var line = "  " + pad(m.name, width + 2)
                for col in cols {
                    if let c = table[m.name]?[col.target] {
                        line += pad(Self.marker(c.state) + Self.code(c), colWidth)
                    } else {
                        line += pad(" self", colWidth)
                    }
                }
                out.append(line)
            }
            out.append("  (@NAME: the process of NAME)")
        }
        out.append("")
        for w in warnings { out.append("warning: \(w)") }
        if machines.isEmpty {
            out.append("no VMs are defined or running: nothing to check")
        } else if findings.isEmpty {
            out.append("no findings: no VM can reach another VM's resources or process, and each has what it needs")
        }
        for f in findings { out.append("\(f.severity.rawValue) \(f.kind.rawValue): \(f.message)") }
        let fails = findings.filter { $0.severity == .fail }.count
        out.append(fails == 0 ? "result: PASS" : "result: FAIL (\(fails) finding\(fails == 1 ? "" : "s"))")
        return out.joined(separator: "\n")
    }

    /// The `<style>` the fragment needs, scoped to `table.svirt-check`.
    public static let htmlStyle = """
        <style>
        table.svirt-check { border-collapse: collapse; font-family: sans-serif; font-size: 0.9em; }
        table.svirt-check th, table.svirt-check td { border: 1px solid #999; padding: 0.3em 0.6em; text-align: center; }
        table.svirt-check thead th { background: #eee; font-weight: normal; }
        table.svirt-check thead th.group { font-weight: bold; }
        table.svirt-check tbody th { background: #eee; text-align: left; }
        table.svirt-check td.own { background: #cdebc9; }
        table.svirt-check td.shared { background: #cfe0f7; }
        table.svirt-check td.denied { background: #f6f6f6; color: #888; }
        table.svirt-check td.fail { background: #f4a9a9; font-weight: bold; }
        table.svirt-check td.self { background: #ddd; color: #777; }
        table.svirt-check [title] { cursor: help; }
        table.svirt-check small { color: #555; }
        </style>
        """

    /// The matrix as an HTML `<table>` (class `svirt-check`) preceded by its `<style>`, for embedding. Rows are
    /// the VMs, columns their resources and processes. Each cell has `id="cell-ROW-TARGET"` (ROW the row's index
    /// from 0; TARGET the resource id, or `pN` for the process of row N), `data-vm`, `data-target` (resource id or
    /// `process:NAME`), `data-relation`, `data-state`, a class equal to its state (`own`, `shared`, `denied`,
    /// `fail`), and a `title` with the permissions and the policy's reasons. No script is needed.
    public func htmlFragment() -> String {
        let esc = HTMLText.escape
        let cols = columns
        let rows = rowMachines
        let rowIndex = Dictionary(rows.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let table = cellTable()
        let resourceByID = Dictionary(resources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func cellID(_ row: Int, _ target: String) -> String {
            if target.hasPrefix("process:"), let i = rowIndex[String(target.dropFirst("process:".count))] { return "cell-\(row)-p\(i)" }
            return "cell-\(row)-\(target)"
        }
        var h = Self.htmlStyle + "\n<table class=\"svirt-check\">\n<caption>What each VM's process may do to each "
            + "resource and process (hover over a cell for the permissions and the policy's reasons)</caption>\n<thead>\n<tr><th rowspan=\"2\">VM</th>"
        var groups: [(String, Int)] = []
        for c in cols {
            if let last = groups.last, last.0 == c.group { groups[groups.count - 1].1 += 1 } else { groups.append((c.group, 1)) }
        }
        for (g, n) in groups {
            let title = g == "shared" ? "shared resources" : g == "process" ? "VM processes" : "resources of '\(g)'"
            h += "<th class=\"group\" colspan=\"\(n)\" scope=\"colgroup\">\(esc(title))</th>"
        }
        h += "</tr>\n<tr>"
        for c in cols {
            h += "<th scope=\"col\" data-target=\"\(esc(c.target))\" title=\"\(esc(c.detail))\">\(esc(c.heading))"
                + (c.group == "process" ? "" : "<br><small>\(esc(c.target))</small>") + "</th>"
        }
        h += "</tr>\n</thead>\n<tbody>\n"
        for (i, m) in rows.enumerated() {
            h += "<tr><th scope=\"row\" title=\"\(esc(m.process ?? ""))\">\(esc(m.name))<br><small>\(esc(m.range))</small></th>"
            for col in cols {
                guard let c = table[m.name]?[col.target] else {
                    h += "<td id=\"\(esc(cellID(i, col.target)))\" class=\"self\" data-vm=\"\(esc(m.name))\" "
                        + "data-target=\"\(esc(col.target))\" data-state=\"self\" title=\"the VM's own process\">self</td>"
                    continue
                }
                h += "<td id=\"\(esc(cellID(i, col.target)))\" class=\"\(c.state.rawValue)\" data-vm=\"\(esc(m.name))\" "
                    + "data-target=\"\(esc(c.target))\" data-relation=\"\(c.relation.rawValue)\" data-state=\"\(c.state.rawValue)\" "
                    + "title=\"\(esc(tooltip(c, resourceByID[c.target])))\">\(esc(Self.code(c)))</td>"
            }
            h += "</tr>\n"
        }
        h += "</tbody>\n</table>\n"
        return h
    }

    /// A self-contained HTML page: the policy, the VMs, the matrix (`htmlFragment()`), the legend and the
    /// findings. Readable without JavaScript; it has no script.
    public func html() -> String {
        let esc = HTMLText.escape
        var h = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>svirt check</title>
            <style>
            body { font-family: sans-serif; margin: 2em; color: #222; }
            li.fail { color: #a00; }
            li.info { color: #036; }
            span.key { display: inline-block; width: 1.2em; border: 1px solid #999; }
            </style>
            </head>
            <body>
            <h1>svirt check</h1>

            """
        let bools = booleans.keys.sorted().map { "\($0)=\(booleans[$0] == true ? 1 : 0)" }
        h += "<p>Policy <code>\(esc(policy))</code>\(bools.isEmpty ? "" : ", booleans <code>\(esc(bools.joined(separator: " ")))</code>"). "
        let fails = findings.filter { $0.severity == .fail }.count
        h += "<strong id=\"result\" data-result=\"\(fails == 0 ? "pass" : "fail")\">\(fails == 0 ? "PASS" : "FAIL (\(fails))")</strong></p>\n"
        h += "<h2>VMs</h2>\n<ul id=\"vms\">\n"
        for m in machines {
            h += "<li><strong>\(esc(m.name))</strong> (\(esc(m.state)), \(esc(m.labelType))): <code>\(esc(m.process ?? "no process label"))</code>"
                + "\(m.plannedLevel ? " — planned level" : "")</li>\n"
        }
        h += "</ul>\n<h2>Matrix</h2>\n" + htmlFragment()
        h += "<p>Cells: <span class=\"key\" style=\"background:#cdebc9\">&nbsp;</span> own resource with what it needs, "
            + "<span class=\"key\" style=\"background:#cfe0f7\">&nbsp;</span> shared, "
            + "<span class=\"key\" style=\"background:#f6f6f6\">&nbsp;</span> denied, "
            + "<span class=\"key\" style=\"background:#f4a9a9\">&nbsp;</span> FAIL. \(esc(Self.legend)).</p>\n"
        h += "<h2>Findings</h2>\n<ul id=\"findings\">\n"
        if findings.isEmpty { h += "<li>No findings: no VM can reach another VM's resources or process, and each has what it needs.</li>\n" }
        for f in findings {
            h += "<li class=\"\(f.severity == .fail ? "fail" : "info")\" data-kind=\"\(f.kind.rawValue)\">"
                + "<strong>\(f.severity.rawValue)</strong> \(esc(f.kind.rawValue)): \(esc(f.message))</li>\n"
        }
        h += "</ul>\n"
        if !warnings.isEmpty {
            h += "<h2>Warnings</h2>\n<ul>\n" + warnings.map { "<li>\(esc($0))</li>\n" }.joined() + "</ul>\n"
        }
        h += "</body>\n</html>\n"
        return h
    }

    /// The matrix as a standalone SVG image: a grid of coloured cells with each cell's permissions and reasons in
    /// its `<title>` (shown on hover), the column ids on top and a key to them beneath.
    public func svg() -> String {
        let esc = HTMLText.escape
        let cols = columns
        let rows = rowMachines
        let table = cellTable()
        let resourceByID = Dictionary(resources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let cw = 64, ch = 28, left = max(120, (rows.map(\.name.count).max() ?? 0) * 8 + 20), top = 60
        let keyLines = cols.count + 3
        let width = left + cols.count * cw + 20
        let height = top + rows.count * ch + 30 + keyLines * 16
        func fill(_ s: String) -> String {
            switch s {
            case "own": return "#cdebc9"
            case "shared": return "#cfe0f7"
            case "fail": return "#f4a9a9"
            case "self": return "#dddddd"
            default: return "#f6f6f6"
            }
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<title>svirt check: \(esc(policy))</title>\n"
        s += "<text x=\"10\" y=\"20\" font-weight=\"bold\">svirt check — \(esc(policy))</text>\n"
        for (j, col) in cols.enumerated() {
            let x = left + j * cw + cw / 2
            s += "<g><title>\(esc(col.detail))</title><text x=\"\(x)\" y=\"\(top - 8)\" text-anchor=\"middle\">"
                + "\(esc(col.group == "process" ? "@" + col.heading : col.target))</text></g>\n"
        }
        for (i, m) in rows.enumerated() {
            let y = top + i * ch
            s += "<g><title>\(esc(m.process ?? ""))</title><text x=\"10\" y=\"\(y + ch / 2 + 4)\">\(esc(m.name))</text></g>\n"
            for (j, col) in cols.enumerated() {
                let x = left + j * cw
                let c = table[m.name]?[col.target]
                let state = c?.state.rawValue ?? "self"
                let tip = c.map { tooltip($0, resourceByID[$0.target]) } ?? "the VM's own process"
                s += "<g class=\"\(state)\" data-vm=\"\(esc(m.name))\" data-target=\"\(esc(col.target))\"><title>\(esc(tip))</title>"
                    + "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cw)\" height=\"\(ch)\" fill=\"\(fill(state))\" stroke=\"#999\"/>"
                    + "<text x=\"\(x + cw / 2)\" y=\"\(y + ch / 2 + 4)\" text-anchor=\"middle\">\(esc(c.map(Self.code) ?? "self"))</text></g>\n"
            }
        }
        var y = top + rows.count * ch + 24
        s += "<text x=\"10\" y=\"\(y)\">\(esc(Self.legend))</text>\n"
        y += 16
        s += "<text x=\"10\" y=\"\(y)\">green own, blue shared, grey denied, red FAIL</text>\n"
        for col in cols {
            y += 16
            let line = col.group == "process" ? "@\(col.heading): the process of '\(col.heading)'"
                : col.detail.split(separator: "\n").prefix(3).joined(separator: "  ")
            s += "<text x=\"10\" y=\"\(y)\">\(esc(line))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
