import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The console's HTTP/1.1 connections: Hummingbird's `HTTP1Channel` with its idle timeout, and around its HTTP
/// decoder the two handlers of `HeaderTimeout`.
struct ConsoleHTTPChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: Duration
    let headerTimeout: Duration

    /// The server builder `Application` takes.
    static func builder(idleTimeout: Duration, headerTimeout: Duration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            ConsoleHTTPChannel(responder: responder, idleTimeout: idleTimeout, headerTimeout: headerTimeout)
        }
    }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        let (seconds, attoseconds) = d.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let loop = channel.eventLoop
        let watcher: EventLoopFuture<NIOLoopBound<HeaderTimeout.HeadWatcher>> = loop.makeCompletedFuture {
            let state = HeaderTimeout.State(timeout: Self.timeAmount(headerTimeout))
            // First in the pipeline, so it sees the bytes before the HTTP decoder does.
            try channel.pipeline.syncOperations.addHandler(HeaderTimeout.ByteWatcher(state: state))
            return NIOLoopBound(HeaderTimeout.HeadWatcher(state: state), eventLoop: loop)
        }
        return watcher.flatMap { head in
            let http1 = HTTP1Channel(responder: responder, configuration: .init(
                additionalChannelHandlers: [head.value], idleTimeout: Self.timeAmount(idleTimeout)))
            return http1.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }
}
