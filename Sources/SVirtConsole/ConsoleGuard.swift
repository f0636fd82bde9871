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
            guard ConsoleHeaders.isLoopbackAuthority(request.head.authority) else {
                return fail(.forbidden, "this console listens on \(server.listen) and answers only to a loopback Host "
                            + "(127.0.0.1, localhost, [::1]); the request named '\(request.head.authority ?? "")'")
            }
        }

        if let length = ConsoleHeaders.declaredLength(request.headers[.contentLength]), length > server.bodyLimit {
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
        ConsoleHeaders.bearerToken(authorization: request.headers[.authorization])
    }

    func hasSession(_ request: Request) -> Bool {
        ConsoleHeaders.hasSession(cookies: request.headers[values: .cookie], secret: server.sessionSecret)
    }

    /// Why a form POST's origin is not this console, or nil when it is.
    func originProblem(_ request: Request) -> String? {
        ConsoleHeaders.originProblem(authority: request.head.authority, origin: request.headers[.origin],
                                     referer: request.headers[.referer])
    }
}
