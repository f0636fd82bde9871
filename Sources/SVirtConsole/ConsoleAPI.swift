import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SVirt
import SVirtLinux

/// The JSON API under `/api/v1`. The route table is the one source for the router and the OpenAPI document,
/// so the document lists exactly the routes that exist.
enum ConsoleAPI {
    static let prefix = "/api/v1"

    struct Route: Sendable {
        enum Operation: String, Sendable {
            case list, get, labels, xml, start, shutdown, destroy, define, matrix, host, booleans, denials, openapi
        }

        var method: HTTPRequest.Method
        /// The path under `/api/v1`, with `{name}` parameters (the router and OpenAPI both read this form).
        var path: String
        var operation: Operation
        var summary: String
        /// The media type of the 200/201 answer.
        var produces: String = "application/json"
        /// The schema of the answer in the OpenAPI document's components.
        var schema: String?
        /// The body it reads, if any.
        var consumes: String?
        var queryParameters: [(name: String, description: String)] = []

        var changesState: Bool { method != .get && method != .head }
    }

    static let routes: [Route] = [
        Route(method: .get, path: "/vms", operation: .list, summary: "Every domain, running or defined (svirt list --all -Z).",
              schema: "DomainList"),
        Route(method: .post, path: "/vms", operation: .define,
              summary: "Define a domain from libvirt domain XML (svirt define), read by svirt's hardened reader.",
              schema: "ActionResult", consumes: "application/xml"),
        Route(method: .get, path: "/vms/{name}", operation: .get,
              summary: "One domain: state, labels, its resources with their labels now, and its XML.", schema: "DomainPage"),
        Route(method: .get, path: "/vms/{name}/labels", operation: .labels,
              summary: "Every resource of the domain with its current label and owner (svirt labels).", schema: "ResourceLabels"),
        Route(method: .get, path: "/vms/{name}/xml", operation: .xml,
              summary: "The live XML of a running domain, else its definition (svirt dumpxml).", produces: "application/xml"),
        Route(method: .post, path: "/vms/{name}/start", operation: .start, summary: "Start the domain (svirt start).",
              schema: "ActionResult"),
        Route(method: .post, path: "/vms/{name}/shutdown", operation: .shutdown,
              summary: "Press the ACPI power button; destroy after the timeout (svirt shutdown).", schema: "ActionResult",
              queryParameters: [("timeout", "Seconds to wait before destroying (default: the console's shutdown timeout).")]),
        Route(method: .post, path: "/vms/{name}/destroy", operation: .destroy,
              summary: "Stop the domain at once and give its labels back (svirt destroy).", schema: "ActionResult"),
        Route(method: .get, path: "/vms/{name}/denials", operation: .denials,
              summary: "The denials that concern the domain, each explained by the policy engine (svirt explain --vm)."),
        Route(method: .get, path: "/matrix", operation: .matrix,
              summary: "The isolation matrix of the host's VMs (svirt check --json)."),
        Route(method: .get, path: "/host", operation: .host, summary: "The host report (svirt host --json).", schema: "HostReport"),
        Route(method: .get, path: "/booleans", operation: .booleans, summary: "The virt booleans and their values (svirt booleans)."),
        Route(method: .get, path: "/openapi.json", operation: .openapi, summary: "This document (OpenAPI 3.0)."),
    ]

    /// Domain XML as a caller may see it: whole with the token (the guard lets no API call through without it),
    /// else without its secrets, or the reason it cannot be shown.
    static func shown(_ xml: String, _ context: ConsoleContext) -> String {
        context.credential != nil ? xml : DomainXMLSecrets.redacted(xml) ?? DomainXMLSecrets.unreadable
    }

    static func respond(_ route: Route, request: Request, context: ConsoleContext, server: ConsoleServer) async -> Response {
        do {
            return try await handle(route, request: request, context: context, server: server)
        } catch {
            let f = ConsoleFailure(error)
            return ConsoleResponse.jsonError(f.status, f.message)
        }
    }

    static func handle(_ route: Route, request: Request, context: ConsoleContext, server: ConsoleServer) async throws -> Response {
        let backend = server.backend
        func name() throws -> String { try ConsoleRequest.domainName(context) }
        switch route.operation {
        case .list:
            return ConsoleResponse.json(try await backend.list())
        case .get:
            var page = try await backend.domain(try name())
            page.xml = shown(page.xml, context)
            return ConsoleResponse.json(page)
        case .labels:
            return ConsoleResponse.json(try await backend.labels(try name()))
        case .xml:
            return ConsoleResponse.raw(.ok, "application/xml; charset=utf-8", Array(shown(try await backend.xml(try name()), context).utf8))
        case .start:
            return ConsoleResponse.json(try await backend.start(try name()))
        case .shutdown:
            var timeout = backend.shutdownTimeout
            if let t = request.uri.queryParameters.get("timeout") {
                guard let s = ConsoleRequest.shutdownSeconds(t) else {
                    throw ConsoleFailure(.badRequest, "timeout '\(t)' is not a number of seconds from 0 to 3600")
                }
                timeout = .seconds(s)
            }
            return ConsoleResponse.json(try await backend.stop(try name(), mode: .shutdown(timeout: timeout)))
        case .destroy:
            return ConsoleResponse.json(try await backend.stop(try name(), mode: .destroy))
        case .define:
            let body = try await ConsoleRequest.body(request, limit: server.bodyLimit)
            guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
                throw ConsoleFailure(.badRequest, "the request body is not UTF-8 text; send the domain XML as UTF-8")
            }
            return ConsoleResponse.json(try await backend.define(xml: text, source: "the request body"), status: .created)
        case .host:
            return ConsoleResponse.json(try await backend.host())
        case .matrix:
            return ConsoleResponse.json(try await backend.matrix())
        case .booleans:
            return ConsoleResponse.json(try await backend.booleans())
        case .denials:
            return ConsoleResponse.json(try await backend.denials(try name()))
        case .openapi:
            return ConsoleResponse.raw(.ok, "application/json", OpenAPIDocument.json(server: server))
        }
    }
}
