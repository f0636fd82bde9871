import NIOCore
import NIOHTTPTypes

/// A limit on the time a client takes to send a request's head (request line and header fields). A client that
/// opens a connection, or starts the next request on a kept-alive one, and then trickles or stalls gets a 408 and
/// is disconnected, so that a handful of slow clients cannot hold every connection the console has (slowloris).
///
/// The clock starts when the connection opens, and on a kept-alive connection with the first byte of the next
/// request; it stops when the head has been decoded. Hummingbird's idle timeout covers the rest: a kept-alive
/// connection that sends nothing, and a body that stalls.
///
/// Two handlers share one `State`, both on the channel's event loop: `ByteWatcher` sits in front of the HTTP decoder
/// and sees bytes arrive; `HeadWatcher` sits behind it and sees each head decoded and each response finished.
enum HeaderTimeout {
    /// What the two handlers know about the connection.
    final class State {
        let timeout: TimeAmount
        /// Requests whose head was read and whose response has not finished.
        var inFlight = 0
        /// True from the first byte of a request until its head is decoded (and on a fresh connection).
        var waitingForHead = true
        var timer: Scheduled<Void>?
        /// The front handler's context, to answer 408 below the HTTP encoder and close.
        var front: ChannelHandlerContext?

        init(timeout: TimeAmount) { self.timeout = timeout }

        func start() {
            guard timer == nil, let front else { return }
            timer = front.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                timer = nil
                expire()
            }
        }

        func stop() {
            timer?.cancel()
            timer = nil
        }

        func expire() {
            guard waitingForHead, let front else { return }
            let seconds = Double(timeout.nanoseconds) / 1e9
            let body = "the request head (request line and header fields) did not arrive within \(seconds) s; "
                + "send it whole (the limit is svirt serve --header-timeout)\n"
            let text = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
            front.writeAndFlush(NIOAny(front.channel.allocator.buffer(string: text)), promise: nil)
            front.close(promise: nil)
        }
    }

    /// In front of the HTTP decoder: starts the clock when a request's first bytes arrive.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let state: State

        init(state: State) { self.state = state }

        func handlerAdded(context: ChannelHandlerContext) {
            state.front = context
            if context.channel.isActive { state.start() }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            state.stop()
            state.front = nil
        }

        func channelActive(context: ChannelHandlerContext) {
            if state.waitingForHead { state.start() }
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.stop()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if state.inFlight == 0 && !state.waitingForHead {
                state.waitingForHead = true
                state.start()
            }
            context.fireChannelRead(data)
        }
    }

    /// Behind the HTTP decoder: stops the clock when a head has been decoded, and notes when the connection is
    /// between requests again.
    final class HeadWatcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let state: State

        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) {
                state.inFlight += 1
                state.waitingForHead = false
                state.stop()
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data), state.inFlight > 0 {
                state.inFlight -= 1
            }
            context.write(data, promise: promise)
        }
    }
}
