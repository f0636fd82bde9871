import Glibc
import SVirt

/// A failure talking to a QEMU monitor: a command error QEMU returned (its class and text, verbatim), or the
/// connection (refused, closed, timed out, not speaking QMP).
public struct QMPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// QEMU answered the command with an error.
        case command
        /// No answer before the deadline.
        case timeout
        /// The monitor closed the connection (QEMU exited).
        case disconnected
        /// Cannot connect to the socket.
        case connect
        /// What came back is not QMP.
        case protocolError = "protocol"
    }

    public var kind: Kind
    /// QEMU's error class (`GenericError`, `CommandNotFound`, ...) for `.command`.
    public var errorClass: String?
    /// For `.command`, QEMU's `desc` verbatim; otherwise what went wrong.
    public var message: String

    public init(_ kind: Kind, _ message: String, errorClass: String? = nil) {
        self.kind = kind
        self.message = message
        self.errorClass = errorClass
    }

    public var description: String { message }
}

/// The greeting a QMP server sends first.
public struct QMPGreeting: Sendable, Hashable {
    public var major: Int64, minor: Int64, micro: Int64
    /// The distribution's package string ("Debian 1:7.2+dfsg-7+deb12u18+b3").
    public var package: String
    public var capabilities: [String]

    public var version: String { "\(major).\(minor).\(micro)" }
}

/// An asynchronous event from the monitor (`SHUTDOWN`, `POWERDOWN`, `STOP`...).
public struct QMPEvent: Sendable, Hashable {
    public var name: String
    public var data: JSONValue
    /// Seconds since the epoch, as QEMU stamped it.
    public var timestamp: Double
}

/// Splits a byte stream into top-level JSON objects (QMP frames messages by their own braces; QEMU also ends
/// each with CRLF, but does not require clients to).
struct JSONStreamSplitter {
    private var buffer: [UInt8] = []
    private var depth = 0, inString = false, escaped = false, scanned = 0, start: Int?
    /// Refuse a single message above this size (a broken or hostile peer).
    static let maximum = 16 << 20

    mutating func append(_ bytes: [UInt8]) throws -> [[UInt8]] {
        buffer += bytes
        var out: [[UInt8]] = []
        while scanned < buffer.count {
            let b = buffer[scanned]
            if inString {
                if escaped { escaped = false } else if b == 0x5c { escaped = true } else if b == 0x22 { inString = false }
            } else if b == 0x22 {
                inString = true
            } else if b == 0x7b || b == 0x5b {  // { [
                if depth == 0 { start = scanned }
                depth += 1
            } else if b == 0x7d || b == 0x5d {  // } ]
                depth -= 1
                if depth == 0, let s = start {
                    out.append(Array(buffer[s...scanned]))
                    start = nil
                } else if depth < 0 {
                    throw QMPError(.protocolError, "unbalanced JSON from the monitor")
                }
            } else if depth == 0 && !(b == 0x20 || b == 0x0a || b == 0x0d || b == 0x09) {
                throw QMPError(.protocolError, "the monitor sent bytes outside a JSON object")
            }
            scanned += 1
        }
        // Drop what is consumed.
        let keep = start ?? scanned
        if keep > 0 {
            buffer.removeFirst(keep)
            scanned -= keep
            if start != nil { start = 0 }
        }
        if buffer.count > Self.maximum { throw QMPError(.protocolError, "a monitor message exceeds \(Self.maximum) bytes") }
        return out
    }
}

/// A client of a QEMU monitor (QMP) on a unix socket. Blocking, with a deadline on every wait; one command in
/// flight at a time. Not for use from several threads.
public final class QMPClient {
    public let path: String
    public let greeting: QMPGreeting
    /// Events received so far and not yet taken with `nextEvent`.
    public private(set) var events: [QMPEvent] = []
    private var fd: Int32
    private var splitter = JSONStreamSplitter()
    private var pending: [JSONValue] = []
    private var nextID: Int64 = 1

    /// Connects, reads the greeting and leaves capabilities negotiation mode (`qmp_capabilities`).
    /// `peerContext`: QEMU's SELinux context, so that the connection is made at its level (`UnixSocket.connect`).
    public static func connect(path: String, timeout: Duration = .seconds(10), peerContext: String? = nil) throws -> QMPClient {
        let fd: Int32
        do {
            fd = try UnixSocket.connect(path: path, peerContext: peerContext)
        } catch let e as SystemCallError {
            throw QMPError(.connect, "cannot connect to the QEMU monitor \(path): \(String(cString: strerror(e.errno)))")
        }
        return try QMPClient(descriptor: fd, path: path, timeout: timeout)
    }

    /// Takes over a connected descriptor (closed with the client).
    public init(descriptor: Int32, path: String, timeout: Duration = .seconds(10)) throws {
        fd = descriptor
        self.path = path
        let deadline = ContinuousClock.now + timeout
        var greetingMessage: JSONValue?
        do {
            greetingMessage = try Self.read(fd: descriptor, splitter: &splitter, pending: &pending, until: deadline, path: path)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        guard let g = greetingMessage?["QMP"], let v = g["version"], let q = v["qemu"],
              let major = q["major"]?.integerValue, let minor = q["minor"]?.integerValue,
              let micro = q["micro"]?.integerValue else {
            Glibc.close(descriptor)
            throw QMPError(.protocolError, "\(path) did not greet with QMP: \(greetingMessage?.json ?? "nothing")")
        }
        var caps: [String] = []
        if case .array(let a)? = g["capabilities"] { caps = a.compactMap(\.stringValue) }
        greeting = QMPGreeting(major: major, minor: minor, micro: micro, package: v["package"]?.stringValue ?? "",
                               capabilities: caps)
        do {
            _ = try execute("qmp_capabilities", timeout: max(deadline - .now, .milliseconds(1)))
        } catch {
            Glibc.close(descriptor)
            fd = -1
            throw error
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Closes the connection.
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Runs `command` and returns its `return` value. A QEMU error is thrown as `QMPError(.command)` with
    /// QEMU's class and text.
    @discardableResult
    public func execute(_ command: String, arguments: JSONValue? = nil, timeout: Duration = .seconds(30)) throws -> JSONValue {
        var message: [String: JSONValue] = ["execute": .string(command)]
        if let arguments { message["arguments"] = arguments }
        let reply = try send(.object(message), timeout: timeout)
        if let error = reply["error"] {
            throw QMPError(.command, error["desc"]?.stringValue ?? error.json, errorClass: error["class"]?.stringValue)
        }
        return reply["return"] ?? .null
    }

    /// Sends one message as given (for `qemu-monitor-command`) and returns the whole reply object, errors
    /// included. An `id` is added to match the reply unless the message carries one.
    public func send(_ message: JSONValue, timeout: Duration = .seconds(30)) throws -> JSONValue {
        guard fd >= 0 else { throw QMPError(.disconnected, "the connection to \(path) is closed") }
        guard var object = message.objectValue, object["execute"] != nil || object["exec-oob"] != nil else {
            throw QMPError(.protocolError, "a QMP command is an object with \"execute\": \(message.json)")
        }
        let id: JSONValue = object["id"] ?? .string("svirt-\(nextID)")
        nextID += 1
        object["id"] = id
        let deadline = ContinuousClock.now + timeout
        do {
            try UnixSocket.writeAll(fd, Array((JSONValue.object(object).json + "\r\n").utf8), until: deadline)
        } catch let e as SystemCallError {
            throw e.errno == ETIMEDOUT ? QMPError(.timeout, "\(path) did not take the command within \(timeout)")
                : QMPError(.disconnected, "the QEMU monitor \(path) closed the connection (\(String(cString: strerror(e.errno))))")
        }
        while true {
            let m = try Self.read(fd: fd, splitter: &splitter, pending: &pending, until: deadline, path: path)
            if let event = Self.event(m) {
                events.append(event)
                continue
            }
            guard m["return"] != nil || m["error"] != nil else {
                throw QMPError(.protocolError, "unexpected message from \(path): \(m.json)")
            }
            // A reply without our id answers something we did not send (a parse error of ours included).
            if m["id"] == nil || m["id"] == id {
                var reply = m.objectValue ?? [:]
                if message["id"] == nil { reply["id"] = nil }
                return .object(reply)
            }
        }
    }

    /// The next event named `name` (any event when nil), waiting until the deadline; nil on timeout.
    public func nextEvent(_ name: String? = nil, timeout: Duration) throws -> QMPEvent? {
        if let i = events.firstIndex(where: { name == nil || $0.name == name }) { return events.remove(at: i) }
        let deadline = ContinuousClock.now + timeout
        while true {
            let m: JSONValue
            do {
                m = try Self.read(fd: fd, splitter: &splitter, pending: &pending, until: deadline, path: path)
            } catch let e as QMPError where e.kind == .timeout {
                return nil
            }
            guard let event = Self.event(m) else { continue }
            if name == nil || event.name == name { return event }
            events.append(event)
        }
    }

    static func event(_ m: JSONValue) -> QMPEvent? {
        guard let name = m["event"]?.stringValue else { return nil }
        let ts = m["timestamp"]
        let seconds = Double(ts?["seconds"]?.integerValue ?? 0) + Double(ts?["microseconds"]?.integerValue ?? 0) / 1e6
        return QMPEvent(name: name, data: m["data"] ?? .null, timestamp: seconds)
    }

    /// The next message, reading as needed.
    static func read(fd: Int32, splitter: inout JSONStreamSplitter, pending: inout [JSONValue],
                     until deadline: ContinuousClock.Instant, path: String) throws -> JSONValue {
        while pending.isEmpty {
            guard fd >= 0 else { throw QMPError(.disconnected, "the connection to \(path) is closed") }
            let chunk: [UInt8]?
            do {
                chunk = try UnixSocket.readSome(fd, until: deadline)
            } catch let e as SystemCallError {
                throw QMPError(.disconnected, "reading from \(path): \(String(cString: strerror(e.errno)))")
            }
            guard let bytes = chunk else { throw QMPError(.timeout, "\(path) did not answer in time") }
            if bytes.isEmpty { throw QMPError(.disconnected, "the QEMU monitor \(path) closed the connection") }
            for frame in try splitter.append(bytes) {
                do {
                    pending.append(try JSONValue.parse(frame))
                } catch {
                    throw QMPError(.protocolError, "\(path) sent invalid JSON: \(String(decoding: frame.prefix(200), as: UTF8.self))")
                }
            }
        }
        return pending.removeFirst()
    }
}
