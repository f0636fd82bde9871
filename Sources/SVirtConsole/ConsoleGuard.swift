import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SVirt

/// Checks every request before a route sees it: host, body size, authentication, origin. It records the caller's
/// credential in the context, where the pages look to decide whether to show secrets.
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
        let credential: Context.Credential? = bearer == true ? .token : hasSession(request) ? .session : nil
        var context = context
        context.credential = credential

        // The API: the bearer token, always. The session cookie is not accepted: the API checks no Origin and no
        // CSRF field, and a cookie rides along with requests other pages make.
        if isAPI {
            guard credential == .token else {
                return fail(.unauthorized, "every API call needs the bearer token: send 'Authorization: Bearer TOKEN' with the "
                            + "token from the console's token file (--token-file)",
                            headers: [.wwwAuthenticate: "Bearer realm=\"svirt\""])
            }
            return try await next(request, context)
        }

        // Pages. A form from another site is refused first (its Origin, else Referer, is not this console); the
        // handler then checks the form's CSRF field.
        if changesState && credential != .token, let problem = originProblem(request) {
            return fail(.forbidden, problem)
        }
        // Anything that changes state needs the token or the session, on loopback too: every local user and every
        // web page can reach a loopback port, and which user is on the other end of a loopback connection cannot be
        // told reliably from the kernel's socket tables. Off loopback, reading needs them as well.
        if credential == nil && path != "/login" {
            if changesState {
                return fail(.unauthorized, "sign in at /login with the console's token (from its token file) first: "
                            + "changes from the console need the token or the session it gives")
            }
            if server.tokenRequiredEverywhere {
                return Response(status: .seeOther, headers: [.location: "/login"])
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

    /// The host part of a `Host` value (`127.0.0.1:8080`, `[::1]:8080`, `localhost`).
    static func hostName(_ authority: String) -> String? {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
    }
}
