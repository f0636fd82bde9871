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
/// - request bodies over `bodyLimit` are refused (413); domain XML goes through `DomainDefinition`, the CLI's
///   hardened reader;
/// - every API call needs the bearer token (`Authorization: Bearer`), on loopback too;
/// - every page that changes state needs the token or the session cookie `/login` gives for it, a form's `Origin`
///   (else `Referer`) must be this console, and its CSRF field this process's token; off loopback, reading a page
///   needs the session too;
/// - domain XML shown without the token or a session leaves out its secrets (`DomainXMLSecrets`).
///
/// Connections are closed when a request's head takes longer than `headerTimeout` to arrive (`HeaderTimeout`), and
/// when they stay idle for `idleTimeout`.
public struct ConsoleServer: Sendable {
    public var listen: ListenAddress
    public var token: String
    public var backend: ConsoleBackend
    public var bodyLimit: Int
    /// How long a connection may stay idle (between requests, or stalled in a body) before it is closed.
    public var idleTimeout: Duration
    /// How long a client may take to send a request's line and header fields.
    public var headerTimeout: Duration

    public static let defaultIdleTimeout = Duration.seconds(60)
    public static let defaultHeaderTimeout = Duration.seconds(10)

    /// Random per process: the value of CSRF form fields, and of the session cookie off loopback.
    let csrfToken: String
    let sessionSecret: String

    public init(listen: ListenAddress = .default, token: String, backend: ConsoleBackend, bodyLimit: Int = 1 << 20,
                idleTimeout: Duration = defaultIdleTimeout, headerTimeout: Duration = defaultHeaderTimeout) {
        self.listen = listen
        self.token = token
        self.backend = backend
        self.bodyLimit = bodyLimit
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        csrfToken = ConsoleToken.generate()
        sessionSecret = ConsoleToken.generate()
    }

    /// True when reading a page needs the token or a session too (not listening on loopback).
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
            server: ConsoleHTTPChannel.builder(idleTimeout: idleTimeout, headerTimeout: headerTimeout),
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
