import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import NIOCore
import SVirt

/// Checks every request before a route sees it: host, authentication, origin, body size.
struct ConsoleGuard: RouterMiddleware {
    typealias Context = ConsoleContext
    let server: ConsoleServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let isAPI = path == ConsoleAPI.prefix || path.hasPrefix(ConsoleAPI.prefix + "/")
        func fail(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
            isAPI ? ConsoleResponse.jsonError(status, message, headers: headers)
                  : ConsoleResponse.htmlError(status, message, headers: headers)
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
            if server.listen.isLoopback && path != "/login" && !hasSession(request), let problem = peerProblem(context) {
                return fail(.forbidden, problem)
            }
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

    /// Why a loopback form may not act without signing in: it comes from another user's process (any local user
    /// can reach a loopback port and read a page's CSRF token), or its user cannot be told. Nil when the client
    /// runs as the console's own user.
    func peerProblem(_ context: Context) -> String? {
        let me = geteuid()
        guard let client = context.remoteAddress?.port, let server = context.localAddress?.port,
              let uid = LoopbackPeer.uid(clientPort: client, serverPort: server) else {
            return "cannot tell which local user sent this form; sign in at /login with the console's token first"
        }
        if uid == me { return nil }
        return "this form comes from a process of uid \(uid), and the console runs as uid \(me): "
            + "sign in at /login with the console's token first"
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
