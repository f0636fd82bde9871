import Foundation
import Glibc

/// Chromium from Debian's package, headless, driven over the DevTools protocol through
/// `--remote-debugging-pipe`: commands go in on fd 3 and answers come out on fd 4, one JSON message per
/// NUL-terminated record. Clicks are real mouse events (`Input.dispatchMouseEvent`) at the element's centre.
final class HeadlessChromium {
    static let executable = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let pid: pid_t
    private let commands: Int32
    private let answers: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1
    private var session: String?
    let profile: String
    let log: String

    init(scratch: String) throws {
        guard let exe = Self.executable else { throw ConsoleTestError("chromium is not installed (apt-get install chromium)") }
        profile = "\(scratch)/chromium-profile"
        log = "\(scratch)/chromium.log"
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        var toChrome: [Int32] = [0, 0], fromChrome: [Int32] = [0, 0]
        guard pipe(&toChrome) == 0, pipe(&fromChrome) == 0 else { throw POSIXError(.EMFILE) }
        // Close-on-exec everywhere: chromium gets its ends only as fds 3 and 4 (dup2 clears the flag there).
        for fd in toChrome + fromChrome { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, toChrome[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromChrome[1], 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so that every helper process it starts can be killed at the end.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
                    "--remote-debugging-pipe", "--user-data-dir=\(profile)", "--window-size=1400,900", "about:blank"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, exe, &actions, &attributes, &argv, environ)
        Glibc.close(toChrome[0])
        Glibc.close(fromChrome[1])
        guard rc == 0 else {
            Glibc.close(toChrome[1])
            Glibc.close(fromChrome[0])
            throw ConsoleTestError("cannot start \(exe): \(String(cString: strerror(rc)))")
        }
        pid = child
        commands = toChrome[1]
        answers = fromChrome[0]
    }

    deinit { shutdown() }

    private var closed = false

    /// Kills chromium's process group and reaps it.
    func shutdown() {
        if closed { return }
        closed = true
        _ = try? call("Browser.close", session: false, timeout: 5)
        Glibc.close(commands)
        Glibc.close(answers)
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    // MARK: The protocol

    private func write(_ message: [String: Any]) throws {
        var data = Array(try JSONSerialization.data(withJSONObject: message))
        data.append(0)
        var off = 0
        while off < data.count {
            let n = data[off...].withUnsafeBytes { Glibc.write(commands, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ConsoleTestError("chromium closed its DevTools pipe (see \(log))") }
            off += n
        }
    }

    private func readMessage(until deadline: Date) throws -> [String: Any] {
        while true {
            if let end = buffer.firstIndex(of: 0) {
                let record = Array(buffer[..<end])
                buffer.removeSubrange(...end)
                return (try JSONSerialization.jsonObject(with: Data(record)) as? [String: Any]) ?? [:]
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ConsoleTestError("chromium did not answer in time") }
            var p = pollfd(fd: answers, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 5) * 1000))
            if r == 0 { continue }
            guard r > 0 else { if errno == EINTR { continue }; throw POSIXError(.EIO) }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(answers, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ConsoleTestError("chromium closed its DevTools pipe (see \(log))") }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Sends a command (to the page's session unless `session` is false) and returns its result.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], session useSession: Bool = true, timeout: TimeInterval = 30) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if useSession, let session { message["sessionId"] = session }
        try write(message)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let m = try readMessage(until: deadline)
            guard m["id"] as? Int == id else { continue }  // events and other answers
            if let error = m["error"] as? [String: Any] {
                throw ConsoleTestError("\(method): \(error["message"] ?? error)")
            }
            return m["result"] as? [String: Any] ?? [:]
        }
    }

    /// Attaches to the page target and sets the viewport.
    func openPage() throws {
        let targets = try call("Target.getTargets", session: false)
        let infos = targets["targetInfos"] as? [[String: Any]] ?? []
        var target = infos.first { $0["type"] as? String == "page" }?["targetId"] as? String
        if target == nil {
            target = try call("Target.createTarget", ["url": "about:blank"], session: false)["targetId"] as? String
        }
        guard let target else { throw ConsoleTestError("chromium has no page target") }
        let attached = try call("Target.attachToTarget", ["targetId": target, "flatten": true], session: false)
        guard let s = attached["sessionId"] as? String else { throw ConsoleTestError("cannot attach to the page") }
        session = s
        try call("Page.enable")
        try call("Runtime.enable")
        try call("Emulation.setDeviceMetricsOverride", ["width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false])
    }

    func navigate(_ url: String) throws {
        try call("Page.navigate", ["url": url])
    }

    /// Evaluates JavaScript in the page and returns its value.
    func evaluate(_ expression: String) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        if let exception = r["exceptionDetails"] as? [String: Any] {
            throw ConsoleTestError("\(expression): \(exception["text"] ?? exception)")
        }
        return (r["result"] as? [String: Any])?["value"]
    }

    /// Waits until `condition` (JavaScript) is true; errors while a page loads count as not yet.
    func wait(for condition: String, timeout: TimeInterval = 60, _ what: String) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            do {
                if try evaluate("document.readyState === 'complete' && !!(\(condition))") as? Bool == true { return }
            } catch { last = "\(error)" }
            usleep(100_000)
        }
        let page = (try? evaluate("location.href + '\\n' + document.body.innerText")) as? String ?? last
        throw ConsoleTestError("timed out waiting for \(what); the page shows:\n\(page)")
    }

    /// Clicks the element `selector` with the mouse, as a user would: scrolled into view, pressed and released at
    /// its centre.
    func click(_ selector: String) throws {
        let json = Self.jsString(selector)
        let box = try evaluate("""
            (() => { const e = document.querySelector(\(json)); if (!e) return null;
                     e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();
                     return [r.left + r.width / 2, r.top + r.height / 2]; })()
            """)
        guard let xy = box as? [Double], xy.count == 2 else { throw ConsoleTestError("no element \(selector) on the page") }
        for type in ["mousePressed", "mouseReleased"] {
            try call("Input.dispatchMouseEvent", ["type": type, "x": xy[0], "y": xy[1], "button": "left", "clickCount": 1])
        }
    }

    /// `s` as a JavaScript string literal.
    static func jsString(_ s: String) -> String {
        (try? JSONSerialization.data(withJSONObject: s, options: .fragmentsAllowed)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    /// A PNG of the viewport.
    func screenshot() throws -> Data {
        let r = try call("Page.captureScreenshot", ["format": "png"])
        guard let b64 = r["data"] as? String, let data = Data(base64Encoded: b64) else { throw ConsoleTestError("no screenshot data") }
        return data
    }
}
