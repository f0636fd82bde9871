import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import SVirtLinux
import SVirtTestSupport
import Testing

let isRoot = getuid() == 0

/// The `svirt` executable built next to this test bundle.
let svirtBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("svirt").path
}()

func requireSVirt() throws {
    try #require(FileManager.default.isExecutableFile(atPath: svirtBinary), "build svirt first (swift build): \(svirtBinary)")
}

/// A fresh scratch directory that the unprivileged QEMU user can search, removed on deinit.
final class Scratch: Sendable {
    let path: String
    var state: String { "\(path)/state" }

    init(_ prefix: String) throws {
        path = try temporaryDirectory(prefix: prefix)
        chmod(path, 0o755)
        try FileManager.default.createDirectory(atPath: "\(path)/state", withIntermediateDirectories: true)
    }

    deinit {
        // Stop whatever a failed test left running, then remove the files.
        if let list = try? runSVirt(["list", "--json", "--state-dir", state]),
           let rows = try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] {
            for r in rows { if let n = r["name"] as? String { _ = try? runSVirt(["destroy", n, "--state-dir", state]) } }
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A 16 MiB raw image carrying `label`.
    func image(_ name: String, label: String = "system_u:object_r:virt_image_t:s0") throws -> String {
        let p = "\(path)/\(name)"
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        ftruncate(fd, 16 << 20)
        close(fd)
        if isRoot { try ExtendedAttributes.set("security.selinux", value: Array(label.utf8) + [0], path: p) }
        return p
    }

    static func xml(_ name: String, disk: String) -> String {
        """
        <domain type='kvm'>
          <name>\(name)</name>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/>
              <source file='\(disk)'/>
              <target dev='vda' bus='virtio'/>
            </disk>
          </devices>
        </domain>
        """
    }

    /// Defines `name` with one disk through `svirt define`.
    func define(_ name: String, disk: String) throws {
        let file = "\(path)/\(name).xml"
        try Self.xml(name, disk: disk).write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runSVirt(["define", file, "--state-dir", state])
        try #require(r.status == 0, "svirt define: \(r.stderr)")
    }

    /// `svirt list --all --json` rows by name.
    func list() throws -> [String: [String: Any]] {
        let r = try runSVirt(["list", "--all", "--json", "--state-dir", state])
        let rows = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
        return Dictionary(rows.compactMap { r in (r["name"] as? String).map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
    }
}

struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `svirt` and waits; output goes through files so no pipe can fill.
@discardableResult
func runSVirt(_ args: [String]) throws -> CLIResult {
    let dir = NSTemporaryDirectory() + "svirt-console-cli-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = FileManager.default.createFile(atPath: "\(dir)/out", contents: nil)
    _ = FileManager.default.createFile(atPath: "\(dir)/err", contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: svirtBinary)
    p.arguments = args
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/err"))
    try p.run()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus,
                     stdout: String(decoding: FileManager.default.contents(atPath: "\(dir)/out") ?? Data(), as: UTF8.self),
                     stderr: String(decoding: FileManager.default.contents(atPath: "\(dir)/err") ?? Data(), as: UTF8.self))
}

/// A real `svirt serve` on a free port (`--listen ADDR:0`), stopped on `stop()` or deinit.
final class ConsoleProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let output: String
    let tokenFile: String

    /// Starts the console and waits (at most 30 s) for the line that names its port.
    init(state: String, listen: String = "127.0.0.1:0", extra: [String] = []) throws {
        output = "\(state)/../serve-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: svirtBinary)
        var args = ["serve", "--state-dir", state, "--listen", listen] + extra
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") && isRoot && !extra.contains("--stand-in") {
            args.append("--stand-in")
        }
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var found: Int?
        var tokenPath: String?
        while Date() < deadline, process.isRunning {
            let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("svirt console listening on http://") }),
               let tokenLine = text.split(separator: "\n").first(where: { $0.hasPrefix("token file: ") }) {
                let address = line.dropFirst("svirt console listening on http://".count).prefix { $0 != "/" }
                found = address.split(separator: ":").last.flatMap { Int($0) }
                tokenPath = String(tokenLine.dropFirst("token file: ".count).split(separator: " ")[0])
                break
            }
            usleep(50_000)
        }
        guard let found, let tokenPath else {
            let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            if process.isRunning { process.terminate() }
            throw ConsoleTestError("svirt serve did not say where it listens within 30 s: \(text)")
        }
        port = found
        tokenFile = tokenPath
    }

    var base: String { "http://127.0.0.1:\(port)" }

    var token: String {
        String(decoding: FileManager.default.contents(atPath: tokenFile) ?? Data(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SIGTERM, then SIGKILL after 5 s.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

struct ConsoleTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An HTTP answer.
struct HTTPAnswer {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    var errorMessage: String? { (json as? [String: Any])?["error"] as? String }
}

/// HTTP over AsyncHTTPClient, never following redirects.
struct HTTP {
    static func request(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                        streamed: Bool = false) async throws -> HTTPAnswer {
        let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(120))))
        do {
            var req = HTTPClientRequest(url: url)
            req.method = method
            for (k, v) in headers { req.headers.add(name: k, value: v) }
            if let body {
                if streamed {
                    // No Content-Length: the server must stop reading at its limit.
                    let chunks = stride(from: 0, to: body.count, by: 64 << 10).map { ByteBuffer(bytes: body[$0..<min($0 + (64 << 10), body.count)]) }
                    req.body = .stream(chunks.async, length: .unknown)
                } else {
                    req.body = .bytes(body)
                }
            }
            let res = try await client.execute(req, timeout: .seconds(120))
            let buf = try await res.body.collect(upTo: 16 << 20)
            let answer = HTTPAnswer(status: Int(res.status.code), headers: res.headers, body: String(buffer: buf))
            try await client.shutdown()
            return answer
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

extension Array where Element: Sendable {
    /// The elements as an AsyncSequence.
    var async: AsyncStream<Element> {
        AsyncStream { c in
            for e in self { c.yield(e) }
            c.finish()
        }
    }
}

extension ConsoleProcess {
    /// The CSRF token the console's forms carry (from the login page, which needs no session).
    func csrf() async throws -> String {
        let page = try await HTTP.request(.GET, base + "/login")
        let marker = "name=\"csrf\" value=\""
        let start = try #require(page.body.range(of: marker), "the login page has a CSRF field")
        return String(page.body[start.upperBound...].prefix { $0 != "\"" })
    }

    /// Signs in at /login with the token, as a browser would; the `Cookie` header value of the session.
    func signIn() async throws -> String {
        let csrf = try await csrf()
        let r = try await HTTP.request(.POST, base + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", base)],
                                       body: Array("csrf=\(csrf)&token=\(token)".utf8))
        try #require(r.status == 303, "signing in: \(r.status) \(r.body)")
        return try #require(r.headers.first(name: "Set-Cookie")?.split(separator: ";").first.map(String.init))
    }

    var auth: (String, String) { ("Authorization", "Bearer \(token)") }
}

/// A VM name as a URL path segment: every byte that is not unreserved as %XX.
func pathSegment(_ name: String) -> String {
    var allowed = CharacterSet()
    allowed.insert(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
    return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

/// A raw TCP connection to the console, for what an HTTP client will not send: malformed paths, half a request line,
/// a stall.
final class RawConnection {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            close(fd)
            throw ConsoleTestError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ConsoleTestError("send failed: errno \(errno)") }
            sent += n
        }
    }

    /// Reads until the server closes the connection or `timeout` seconds pass: what arrived, and whether it closed.
    func read(timeout: Double, until done: ((String) -> Bool)? = nil) -> (text: String, closed: Bool) {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return (String(decoding: out, as: UTF8.self), false) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(left * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (String(decoding: out, as: UTF8.self), true) }
            out.append(contentsOf: buffer[..<n])
            if let done, done(String(decoding: out, as: UTF8.self)) { return (String(decoding: out, as: UTF8.self), false) }
        }
    }

    /// One request on a fresh connection: the status line's code and the whole answer.
    static func request(port: Int, _ text: String, timeout: Double = 30) throws -> (status: Int?, text: String) {
        let c = try RawConnection(port: port)
        try c.send(text)
        let answer = c.read(timeout: timeout).text
        let status = answer.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
        return (status, answer)
    }
}
