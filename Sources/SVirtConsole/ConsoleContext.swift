import Hummingbird

/// The request context: Hummingbird's core storage plus what the guard proved about the caller.
struct ConsoleContext: RequestContext {
    /// How the caller showed it may act: the bearer token, or the session cookie `/login` gives for it.
    enum Credential: Sendable {
        case token
        case session
    }

    var coreContext: CoreRequestContextStorage
    /// Set by `ConsoleGuard`; nil for the requests it lets through without one (the loopback console's pages read
    /// with GET, and `/login`). Secrets in domain XML are shown only when it is set.
    var credential: Credential?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        credential = nil
    }

    /// The most a route reads when Hummingbird decodes a body itself (the console reads bodies with its own limit).
    var maxUploadSize: Int { 1 << 20 }
}
