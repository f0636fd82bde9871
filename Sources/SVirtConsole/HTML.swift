import SVirt

/// Server-side HTML: escaping and the page frame. The pages use no JavaScript.
enum HTML {
    /// Escapes text for element content and quoted attribute values (the one escaper the reports use too).
    static func escape(_ s: some StringProtocol) -> String { HTMLText.escape(String(s)) }

    /// A VM name as a path segment (a link, a form action) or a query value: every byte of its UTF-8 that is not
    /// an unreserved ASCII character becomes `%XX`.
    static func pathSegment(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~".unicodeScalars)
        var out = ""
        for b in s.utf8 {
            let scalar = Unicode.Scalar(b)
            if b < 0x80, allowed.contains(scalar) { out.unicodeScalars.append(scalar) } else { out += "%" + String(b, radix: 16, uppercase: true).leftPad(2) }
        }
        return out
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
        header{background:#23395d;color:#fff;padding:.6em 1.2em}header a{color:#fff;margin-right:1.2em;text-decoration:none}
        header strong{margin-right:2em}main{padding:1em 1.2em}
        table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
        th{background:#eef}code,pre,.label{font-family:ui-monospace,monospace;font-size:.92em}
        pre{background:#f0f0f0;padding:.8em;overflow:auto;max-width:100%;white-space:pre-wrap;word-break:break-all}
        form.inline{display:inline}button{margin:0 .2em}.error{color:#a00}.notice{color:#060}
        .state-running{color:#060;font-weight:bold}.state-shut{color:#777}
        td.allow{background:#f4c7c3}td.deny{background:#c8e6c9}td.info{background:#fff3c4}
        """

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) – svirt</title>
        <meta name="viewport" content="width=device-width,initial-scale=1"><style>\(style)</style></head>
        <body><header><strong>svirt console</strong><a href="/">VMs</a><a href="/matrix">Isolation matrix</a><a href="/host">Host</a><a href="/define">Define</a><a href="/login">Sign in</a></header>
        <main>
        \(body)
        </main></body></html>
        """
    }

    /// A table with escaped header cells; `rows` hold HTML already.
    static func table(_ header: [String], _ rows: [[String]], id: String? = nil) -> String {
        var s = "<table\(id.map { " id=\"\(escape($0))\"" } ?? "")>"
        if header.contains(where: { !$0.isEmpty }) {
            s += "<thead><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>"
        }
        s += "<tbody>"
        for r in rows { s += "<tr>" + r.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return s + "</tbody></table>"
    }
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
