import Foundation
import Hummingbird
import Logging
import NIOCore
import SVirt
import SVirtLinux
import Synchronization

/// `svirt serve`: the web console and its JSON API over one Hummingbird router.
///
/// Security, in the order a request meets it (`ConsoleGuard`):
/// - listening on a loopback address, the `Host` header must name a loopback host (a DNS-rebound name would let
///   another site's pages read this one);
/// - on any other address every request needs the bearer token (`Authorization: Bearer`), or, for pages, the
///   session cookie that `/login` gives for the token;
/// - state-changing API calls always need the bearer token, on loopback too;
/// - state-changing forms need an `Origin` (else `Referer`) of this console and the per-process CSRF token, and on
///   loopback a client process of the console's own uid (`LoopbackPeer`) or the `/login` session;
/// - request bodies over `bodyLimit` are refused (413); domain XML goes through `DomainDefinition`, the CLI's
///   hardened reader.
public struct ConsoleServer: Sendable {
    public var listen: ListenAddress
    public var token: String
    public var backend: ConsoleBackend
    public var bodyLimit: Int

    /// Random per process: the value of CSRF form fields, and of the session cookie off loopback.
    let csrfToken: String
    let sessionSecret: String

    public init(listen: ListenAddress = .default, token: String, backend: ConsoleBackend, bodyLimit: Int = 1 << 20) {
        self.listen = listen
        self.token = token
        self.backend = backend
        self.bodyLimit = bodyLimit
        csrfToken = ConsoleToken.generate()
        sessionSecret = ConsoleToken.generate()
    }

    /// True when the token is needed for everything (not listening on loopback).
    public var tokenRequiredEverywhere: Bool { !listen.isLoopback }

    /// The router with every page and API route behind the guard.
    func makeRouter() -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: ConsoleGuard(server: self))
        ConsolePages.register(on: router, server: self)
        for route in ConsoleAPI.routes {
            router.on(RouterPath(ConsoleAPI.prefix + route.path), method: route.method) { request, context in
                await ConsoleAPI.respond(route, request: request, context: context, server: self)
            }
        }
        return router
    }

    /// Serves until SIGTERM or SIGINT. `onListening` gets the address actually bound (port 0 asks for a free one).
    public func run(onListening: @escaping @Sendable (ListenAddress) -> Void) async throws {
        var logger = Logger(label: "svirt.console")
        logger.logLevel = .warning
        let listening = Mutex(false)
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "svirt"),
            onServerRunning: { channel in
                listening.withLock { $0 = true }
                let port = channel.localAddress?.port ?? listen.port
                onListening(ListenAddress(host: listen.host, port: port))
            },
            logger: logger)
        do {
            try await app.runService()
        } catch where !listening.withLock({ $0 }) {
            throw SVirtError(.configuration, "cannot listen on \(listen): \(error); give a free address and port with --listen "
                             + "(port 0 picks a free one)", cause: error)
        }
    }
}
