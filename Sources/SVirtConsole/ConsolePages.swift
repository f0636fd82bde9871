import Foundation
import HTTPTypes
import Hummingbird
import SVirtLinux

/// The console's pages: server-rendered HTML with plain forms, working without JavaScript.
enum ConsolePages {
    static let sessionCookie = ConsoleHeaders.sessionCookie

    static func register(on router: Router<ConsoleContext>, server: ConsoleServer) {
        router.get("/") { request, _ in await page { try await vmList(server, request) } }
        router.get("/vms/{name}") { _, context in
            await page { try await vmPage(server, try name(context), showSecrets: context.credential != nil) }
        }
        for action in ["start", "shutdown", "destroy"] {
            router.post(RouterPath("/vms/{name}/\(action)")) { request, context in
                await page { try await vmAction(server, request, try name(context), action) }
            }
        }
        router.get("/define") { _, _ in await page { definePage(server, xml: "", error: nil) } }
        router.post("/define") { request, _ in await page { try await defineSubmit(server, request) } }
        router.get("/matrix") { _, _ in await page { try await matrixPage(server) } }
        router.get("/host") { _, _ in await page { try await hostPage(server) } }
        router.get("/login") { _, _ in await page { loginPage(server, error: nil) } }
        router.post("/login") { request, _ in await page { try await loginSubmit(server, request) } }
    }

    static func name(_ context: ConsoleContext) throws -> String { try ConsoleRequest.domainName(context) }

    /// Runs a page handler; a failure becomes an HTML error page with its status.
    static func page(_ body: () async throws -> Response) async -> Response {
        do { return try await body() } catch {
            let f = ConsoleFailure(error)
            return ConsoleResponse.htmlError(f.status, f.message)
        }
    }

    static func csrfField(_ server: ConsoleServer) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(server.csrfToken))\">"
    }

    static func actionForm(_ server: ConsoleServer, _ name: String, _ action: String, _ label: String) -> String {
        "<form class=\"inline\" method=\"post\" action=\"/vms/\(HTML.pathSegment(name))/\(action)\">\(csrfField(server))"
            + "<button type=\"submit\" class=\"\(action)\" data-vm=\"\(HTML.escape(name))\">\(label)</button></form>"
    }

    static func actions(_ server: ConsoleServer, _ d: DomainLifecycle.Summary) -> String {
        if d.state == "shut off" { return actionForm(server, d.name, "start", "Start") }
        return actionForm(server, d.name, "shutdown", "Shut down") + actionForm(server, d.name, "destroy", "Destroy")
    }

    static func code(_ s: String?) -> String { s.map { "<code>\(HTML.escape($0))</code>" } ?? "–" }

    // MARK: VM list

    static let notices = ["start": "started", "shutdown": "shut down", "destroy": "destroyed", "define": "defined"]

    static func vmList(_ server: ConsoleServer, _ request: Request) async throws -> Response {
        let vms = try await server.backend.list()
        var body = "<h1>Virtual machines</h1>"
        let q = request.uri.queryParameters
        if let done = q.get("done"), let verb = notices[done], let vm = q.get("vm") {
            body += "<p class=\"notice\" id=\"notice\">Domain ‘\(HTML.escape(vm))’ \(verb).</p>"
        }
        if vms.isEmpty {
            body += "<p>No domains are defined. <a href=\"/define\">Define one</a> or use <code>svirt define FILE.xml</code>.</p>"
        }
        let rows = vms.map { d -> [String] in
            let state = "<span class=\"\(d.state == "running" ? "state-running" : "state-shut")\">\(HTML.escape(d.state))</span>"
            return ["<a href=\"/vms/\(HTML.pathSegment(d.name))\">\(HTML.escape(d.name))</a>", d.id.map(String.init) ?? "–", state,
                    d.pid.map(String.init) ?? "–",
                    "<span class=\"process-label\">\(code(d.label))</span>",
                    "<span class=\"image-label\">\(code(d.imageLabel))</span>",
                    HTML.escape(d.confinement ?? "–"), actions(server, d)]
        }
        if !vms.isEmpty {
            body += HTML.table(["Name", "Id", "State", "PID", "Process label", "Image label", "Confinement", "Actions"], rows, id: "vms")
        }
        body += "<p>The same domains as <code>svirt list --all -Z</code>: the console and the command share the state directory \(code(server.backend.environment.state.path)).</p>"
        return ConsoleResponse.html(.ok, HTML.page(title: "Virtual machines", body: body))
    }

    // MARK: One VM

    /// One VM. Without the token or a session (a loopback console's pages are readable without), the XML's secrets
    /// are left out, as `virsh dumpxml` leaves them out without `--security-info`.
    static func vmPage(_ server: ConsoleServer, _ name: String, showSecrets: Bool) async throws -> Response {
        let p = try await server.backend.domain(name)
        let d = p.domain
        var body = "<h1>\(HTML.escape(d.name))</h1><p>\(actions(server, d))</p>"
        body += HTML.table(["", ""], [
            ["UUID", code(d.uuid)], ["State", HTML.escape(d.state)], ["Id", d.id.map(String.init) ?? "–"],
            ["PID", d.pid.map(String.init) ?? "–"],
            ["Process label", "<span class=\"process-label\">\(code(d.label))</span>\(d.labelSource.map { " (from \(HTML.escape($0)))" } ?? "")"],
            ["Image label", "<span class=\"image-label\">\(code(d.imageLabel))</span>"], ["Level", code(d.level)],
            ["Confinement", HTML.escape(d.confinement ?? "–")], ["Persistent", d.persistent ? "yes" : "no"],
        ], id: "summary")
        body += "<h2>Resources and their labels now</h2>"
        if let e = p.resourcesError {
            body += "<p class=\"error\">\(HTML.escape(e))</p>"
        } else {
            body += HTML.table(["Resource", "Path", "Label now", "Label while running", "Owner"], p.resources.map {
                [HTML.escape($0.resource), code($0.path), code($0.label), code($0.runningLabel), HTML.escape($0.owner ?? "–")]
            }, id: "resources")
        }
        body += "<h2>Denials, explained</h2>" + (await denialsSection(server, d))
        body += "<h2>\(d.state == "shut off" ? "XML (definition)" : "Live XML")</h2>"
        if showSecrets {
            body += "<pre id=\"xml\">\(HTML.escape(p.xml))</pre>"
        } else {
            body += "<p id=\"secrets-hidden\">Without signing in, the XML is shown as <code>virsh dumpxml</code> shows it without "
                + "<code>--security-info</code>: graphics passwords and disk cookies are left out. <a href=\"/login\">Sign in</a> to see them.</p>"
            body += "<pre id=\"xml\">\(HTML.escape(DomainXMLSecrets.redacted(p.xml) ?? DomainXMLSecrets.unreadable))</pre>"
        }
        return ConsoleResponse.html(.ok, HTML.page(title: d.name, body: body))
    }

    static func denialsSection(_ server: ConsoleServer, _ d: DomainLifecycle.Summary) async -> String {
        let report: VMDenialReport
        do { report = try await server.backend.denials(d.name) } catch {
            return "<p class=\"error\">The denials could not be collected: \(HTML.escape(ConsoleFailure(error).message))</p>"
        }
        var s = "<p>Read: \(HTML.escape(report.sources.joined(separator: "; "))). Policy: \(code(report.policy)).</p>"
        if !report.notes.isEmpty { s += "<ul>" + report.notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>" }
        if report.denials.isEmpty { return s + "<p id=\"no-denials\">No denials concern this VM.</p>" }
        s += HTML.table(["Origin", "Time", "Access", "Result", "Why", "Fix"], report.denials.map { den in
            let e = den.explanation
            var access = "\(code(e.source)) → \(code(e.target)) \(HTML.escape(e.tclass)) { \(HTML.escape(e.permissions.joined(separator: " "))) }"
            if let object = den.path ?? e.object { access += "<br>\(code(object))" }
            return [HTML.escape(den.origin), HTML.escape(den.time ?? "–"), "<span title=\"\(HTML.escape(den.text))\">\(access)</span>",
                    HTML.escape(e.result), HTML.escape(e.reason), e.fixes.map(code).joined(separator: "<br>")]
        }, id: "denials")
        return s
    }

    static func vmAction(_ server: ConsoleServer, _ request: Request, _ name: String, _ action: String) async throws -> Response {
        _ = try await ConsoleRequest.form(request, server: server)
        let result: ConsoleBackend.ActionResult
        switch action {
        case "start": result = try await server.backend.start(name)
        case "shutdown": result = try await server.backend.stop(name, mode: .shutdown(timeout: server.backend.shutdownTimeout))
        default: result = try await server.backend.stop(name, mode: .destroy)
        }
        let vm = HTML.pathSegment(result.name)
        return Response(status: .seeOther, headers: [.location: "/?done=\(action)&vm=\(vm)"])
    }

    // MARK: Define

    static func definePage(_ server: ConsoleServer, xml: String, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var body = "<h1>Define a domain</h1>"
        if let error { body += "<p class=\"error\" id=\"error\">\(HTML.escape(error))</p>" }
        body += "<p>libvirt domain XML, read by the same reader as <code>svirt define</code> (no DTD, no entities, at most \(server.bodyLimit) bytes).</p>"
        body += "<form method=\"post\" action=\"/define\">\(csrfField(server))<textarea name=\"xml\" rows=\"24\" cols=\"100\">\(HTML.escape(xml))</textarea><br><button type=\"submit\">Define</button></form>"
        return ConsoleResponse.html(status, HTML.page(title: "Define a domain", body: body))
    }

    static func defineSubmit(_ server: ConsoleServer, _ request: Request) async throws -> Response {
        let form = try await ConsoleRequest.form(request, server: server)
        let xml = form["xml"] ?? ""
        do {
            let r = try await server.backend.define(xml: xml, source: "the submitted XML")
            let vm = HTML.pathSegment(r.name)
            return Response(status: .seeOther, headers: [.location: "/?done=define&vm=\(vm)"])
        } catch {
            let f = ConsoleFailure(error)
            return definePage(server, xml: xml, error: f.message, status: f.status)
        }
    }

    // MARK: Matrix and host

    static func matrixPage(_ server: ConsoleServer) async throws -> Response {
        let m = try await server.backend.matrix()
        var body = "<h1>Isolation matrix</h1><p>Who can touch what, decided by " + code(m.policy) + " one permission at a time "
            + "(the same as <code>svirt check --all</code>). Hover a cell for its permissions and reasons.</p>"
        if m.machines.isEmpty {
            body += "<p>No VMs are defined.</p>"
        } else {
            body += m.htmlFragment()
        }
        if !m.findings.isEmpty {
            body += "<h2>Findings</h2>" + HTML.table(["Severity", "Finding"], m.findings.map {
                ["<strong>\(HTML.escape($0.severity.rawValue))</strong>", HTML.escape($0.message)]
            }, id: "findings")
        }
        if !m.warnings.isEmpty { body += "<ul>" + m.warnings.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>" }
        return ConsoleResponse.html(.ok, HTML.page(title: "Isolation matrix", body: body))
    }

    static func hostPage(_ server: ConsoleServer) async throws -> Response {
        let r = try await server.backend.host()
        var body = "<h1>Host</h1>"
        body += HTML.table(["", ""], [
            ["SELinux", "\(HTML.escape(r.selinux)) (\(HTML.escape(r.selinuxDetail)))"],
            ["Configured mode", HTML.escape(r.configuredMode ?? "–")],
            ["Confinement", "<strong>\(HTML.escape(r.confinement))</strong> (\(HTML.escape(HostReport.explain(r.confinement))))"],
            ["Landlock", r.landlockABI.map { "ABI \($0)" } ?? "unavailable (\(HTML.escape(r.landlockDetail)))"],
            ["Policy type", HTML.escape(r.policyType.map { "\($0) (\(r.policyTypeSource ?? ""))" } ?? "none: built-in defaults")],
            ["Policy", r.policyPath.map { "\(code($0)) (version \(r.policyVersion ?? 0))" } ?? "none on the host: svirt's built-in policy"],
            ["File contexts", code(r.fileContexts)],
            ["Manager context", "\(code(r.managerContext)) (\(HTML.escape(r.managerContextSource)))"],
            ["Category pool", r.categoryPool.map { "\(code($0)), \(r.categoryPairs ?? 0) pairs" } ?? HTML.escape(r.poolError ?? "none")],
            ["KVM", HTML.escape((r.kvmUsable ? "usable" : "not usable") + " (\(r.kvmDetail))")],
            ["Labels", HTML.escape((r.labelsWritable ? "writable" : "not writable") + " (\(r.labelsDetail))")],
            ["State directory", code(r.stateDirectory)],
        ], id: "host")
        body += "<h2>Contexts svirt labels with</h2>"
        body += HTML.table(["Role", "Context", "From"], r.contexts.map { [HTML.escape($0.role), code($0.context), HTML.escape($0.source)] }, id: "contexts")
        if !r.notes.isEmpty { body += "<ul>" + r.notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>" }
        body += "<h2>Booleans</h2>" + (await booleansSection(server))
        return ConsoleResponse.html(.ok, HTML.page(title: "Host", body: body))
    }

    static func booleansSection(_ server: ConsoleServer) async -> String {
        let r: ConsoleBackend.BooleansReport
        do { r = try await server.backend.booleans() } catch {
            return "<p class=\"error\">The booleans could not be read: \(HTML.escape(ConsoleFailure(error).message))</p>"
        }
        var s = "<p>" + (r.selinuxEnabled ? "SELinux is on: the kernel's booleans decide (svirt does not change them; use setsebool -P)."
                                          : "SELinux is off: svirt's boolean store decides (<code>svirt booleans NAME=on|off</code>).")
            + " Policy: \(code(r.policy)).</p>"
        s += HTML.table(["Boolean", "Value", "Default", "From", "Defined by", "What it changes for the VMs"], r.booleans.map { b in
            [code(b.name), b.value ? "on" : "off", b.defaultValue ? "on" : "off", HTML.escape(b.origin.rawValue),
             HTML.escape(b.policy == r.policy ? "host policy" : "built-in policy"),
             b.effects.isEmpty ? "–" : b.effects.map { HTML.escape($0.summary) }.joined(separator: "<br>")]
        }, id: "booleans")
        if !r.warnings.isEmpty { s += "<ul>" + r.warnings.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>" }
        return s
    }

    // MARK: Login (consoles that listen beyond loopback)

    static func loginPage(_ server: ConsoleServer, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var body = "<h1>Sign in</h1>"
        if let error { body += "<p class=\"error\">\(HTML.escape(error))</p>" }
        body += "<p>Give the console's token (from its token file).</p><form method=\"post\" action=\"/login\">\(csrfField(server))"
            + "<input type=\"password\" name=\"token\" size=\"70\" autocomplete=\"off\"> <button type=\"submit\">Sign in</button></form>"
        return ConsoleResponse.html(status, HTML.page(title: "Sign in", body: body))
    }

    static func loginSubmit(_ server: ConsoleServer, _ request: Request) async throws -> Response {
        let form = try await ConsoleRequest.form(request, server: server)
        guard let t = form["token"], ConsoleToken.matches(t, server.token) else {
            return loginPage(server, error: "That is not the console's token.", status: .unauthorized)
        }
        return Response(status: .seeOther, headers: [
            .location: "/",
            .setCookie: "\(sessionCookie)=\(server.sessionSecret); Path=/; HttpOnly; SameSite=Strict",
        ])
    }
}
