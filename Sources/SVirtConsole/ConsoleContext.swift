import Hummingbird
import NIOCore

/// The request context: Hummingbird's core storage plus the connection's two addresses, which the guard needs to
/// find the local process (and so the user) on the other end of a loopback connection.
struct ConsoleContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    let localAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        localAddress = source.channel.localAddress
    }

    /// The most a route reads when Hummingbird decodes a body itself (the console reads bodies with its own limit).
    var maxUploadSize: Int { 1 << 20 }
}
