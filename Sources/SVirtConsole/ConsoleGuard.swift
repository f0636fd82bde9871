import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SVirt

/// Checks every request before a route sees it: host, authentication, origin, body size.
struct ConsoleGuard: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: ConsoleServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let isAPI = path == ConsoleAPI.prefix || path.hasPrefix(ConsoleAPI.prefix + "/")
        func fail(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
            isAPI ? ConsoleResponse.jsonError(status, message, headers: headers)
                  : ConsoleResponse.htmlError(status, message, headers: headers, server: server, request: request)
        }

        // A loopback console answers only to loopback host names: a DNS name rebound to 127.0.0.1 would make
        // another site same-origin with it.
        if server.listen.isLoopback {
            guard let host = request.head.authority.flatMap(Self.hostName), ListenAddress.isLoopbackName(host) else {
                return fail(.forbidden, "this console listens on \(server.listen) and answers only to a loopback Host "
                            + "(127.0.0.1, localhost, [::1]); the request named '\(request.head.authority ?? "")'")
            }
        }

        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > server.bodyLimit {
            return fail(.contentTooLarge, "the request body is \(length) bytes; the console reads at most \(server.bodyLimit)")
        }

        let changesState = request.method != .get && request.method != .head
        let bearer = bearerToken(request).map { ConsoleToken.matches($0, server.token) }
        if bearer == false {
            return fail(.unauthorized, "the bearer token is wrong; it is in the console's token file (--token-file)",
                        headers: [.wwwAuthenticate: "Bearer realm=\"svirt\", error=\"invalid_token\""])
        }
        let hasToken = bearer == true

        if isAPI {
            if (changesState || server.tokenRequiredEverywhere) && !hasToken {
                let why = changesState ? "state-changing API calls need the bearer token"
                                       : "this console listens on \(server.listen), so every request needs the bearer token"
                return fail(.unauthorized, "\(why): send 'Authorization: Bearer TOKEN' with the token from the console's token file",
                            headers: [.wwwAuthenticate: "Bearer realm=\"svirt\""])
            }
            return try await next(request, context)
        }

        // Pages.
        if server.tokenRequiredEverywhere && !hasToken && path != "/login" && !hasSession(request) {
            if request.method == .get {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            return fail(.unauthorized, "sign in first: this console listens on \(server.listen) and needs the token")
        }
        if changesState && !hasToken {
            if let problem = originProblem(request) { return fail(.forbidden, problem) }
        }
        return try await next(request, context)
    }

    /// The token of `Authorization: Bearer TOKEN`.
    func bearerToken(_ request: Request) -> Substring? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].drop { $0 == " " }
    }

    func hasSession(_ request: Request) -> Bool {
        guard let cookie = ConsoleRequest.cookie(request, ConsolePages.sessionCookie) else { return false }
        return ConsoleToken.matches(cookie, server.sessionSecret)
    }

    /// Why a form POST's origin is not this console, or nil when it is. A browser sends `Origin` with every POST;
    /// `Referer` stands in where an older one did not.
    func originProblem(_ request: Request) -> String? {
        let own = request.head.authority.map { "http://\($0)" }
        if let origin = request.headers[.origin] {
            if let own, origin == own { return nil }
            return "cross-origin request refused: Origin '\(origin)' is not this console (\(own ?? "no Host"))"
        }
        if let referer = request.headers[.referer] {
            if let own, referer == own || referer.hasPrefix(own + "/") { return nil }
            return "cross-origin request refused: Referer '\(referer)' is not this console (\(own ?? "no Host"))"
        }
        return "a form must come from this console's own pages: the request has neither Origin nor Referer"
    }

    /// The host part of a `Host` value (`127.0.0.1:8080`, `[::1]:8080`, `localhost`).
    static func hostName(_ authority: String) -> String? {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
    }
}

/// Reading requests: bodies within the limit, forms, cookies.
enum ConsoleRequest {
    /// The body, at most `limit` bytes (more: 413).
    static func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ConsoleFailure(.contentTooLarge, "the request body is larger than \(limit) bytes, the most the console reads")
        }
    }

    /// An `application/x-www-form-urlencoded` body, checked for this process's CSRF token.
    static func form(_ request: Request, server: ConsoleServer) async throws -> [String: String] {
        let buffer = try await body(request, limit: server.bodyLimit)
        let fields = parseForm(String(buffer: buffer))
        guard let csrf = fields["csrf"], ConsoleToken.matches(csrf, server.csrfToken) else {
            throw ConsoleFailure(.forbidden, "the form's CSRF token is missing or stale; reload the page and submit it again")
        }
        return fields
    }

    static func parseForm(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }

    static func cookie(_ request: Request, _ name: String) -> Substring? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name { return kv[1] }
            }
        }
        return nil
    }
}

/// A failure with the HTTP status it gives.
struct ConsoleFailure: Error {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The status and message for any error a handler throws.
    init(_ error: any Error) {
        switch error {
        case let f as ConsoleFailure:
            self = f
        case let e as SVirtError:
            let status: HTTPResponse.Status
            switch e.code {
            case .notFound: status = .notFound
            case .state, .alreadyExists, .levelConflict, .exhausted: status = .conflict
            case .invalidDomain, .configuration, .invalidLevel: status = .badRequest
            case .registryUnavailable: status = .serviceUnavailable
            default: status = .internalServerError
            }
            self.init(status, e.message)
        default:
            self.init(.internalServerError, "\(error)")
        }
    }
}

/// Building responses.
enum ConsoleResponse {
    /// No scripts, no framing, no sniffing, no caching, no referrer to other sites.
    static let securityHeaders: HTTPFields = {
        var h: HTTPFields = [
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
            .cacheControl: "no-store",
        ]
        for (name, value) in [("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY")] {
            if let n = HTTPField.Name(name) { h.append(HTTPField(name: n, value: value)) }
        }
        return h
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(value) else {
            return jsonError(.internalServerError, "cannot encode the answer as JSON")
        }
        return raw(status, "application/json", data)
    }

    struct ErrorBody: Encodable {
        var error: String
        var status: Int
    }

    static func jsonError(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        var r = json(ErrorBody(error: message, status: status.code), status: status)
        r.headers.append(contentsOf: headers)
        return r
    }

    static func raw(_ status: HTTPResponse.Status, _ contentType: String, _ data: some Sequence<UInt8>) -> Response {
        var headers = securityHeaders
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func html(_ status: HTTPResponse.Status = .ok, _ page: String, headers: HTTPFields = [:]) -> Response {
        var r = raw(status, "text/html; charset=utf-8", Array(page.utf8))
        r.headers.append(contentsOf: headers)
        return r
    }

    static func htmlError(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:],
                          server: ConsoleServer, request: Request) -> Response {
        let body = "<h1>\(status.code) \(HTML.escape(status.reasonPhrase))</h1><p class=\"error\">\(HTML.escape(message))</p><p><a href=\"/\">Back to the VM list</a></p>"
        return html(status, HTML.page(title: "\(status.code) \(status.reasonPhrase)", body: body), headers: headers)
    }
}
