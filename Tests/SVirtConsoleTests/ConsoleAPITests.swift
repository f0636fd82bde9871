import Foundation
import Glibc
import NIOHTTP1
import SVirt
import SVirtConsole
import Testing

/// The console's API and security over real HTTP, against the real `svirt serve` on a free port.
@Suite("svirt serve: API and security", .serialized)
struct ConsoleAPITests {
    @Test("the token file is made on first start with mode 0600 and 32 random bytes, kept across restarts, and refused when others can read it")
    func tokenFile() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-token")
        let first = try ConsoleProcess(state: dir.state)
        let path = "\(dir.state)/console.token"
        #expect(first.tokenFile == path)
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let token = first.token
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit), "\(token)")
        first.stop()

        let second = try ConsoleProcess(state: dir.state)
        #expect(second.token == token, "a restart keeps the token")
        second.stop()

        let other = "\(dir.path)/other.token"
        let third = try ConsoleProcess(state: dir.state, extra: ["--token-file", other])
        #expect(third.tokenFile == other)
        #expect(third.token != token && third.token.count == 64)
        #expect(stat(other, &st) == 0 && st.st_mode & 0o777 == 0o600)
        third.stop()

        chmod(path, 0o644)
        let r = try runSVirt(["serve", "--state-dir", dir.state, "--listen", "127.0.0.1:0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("chmod 600 \(path)"), "\(r.stderr)")
    }

    @Test("every API call without the bearer token gets 401, reads on loopback included; a wrong token 401, the right one passes")
    func noToken() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-auth")
        let console = try ConsoleProcess(state: dir.state)
        let xml = Array(Scratch.xml("authvm", disk: "\(dir.path)/none.img").utf8)

        let none = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [("Content-Type", "application/xml")], body: xml)
        #expect(none.status == 401)
        #expect(none.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
        #expect(none.errorMessage?.contains("bearer token") == true, "\(none.body)")
        for action in ["start", "shutdown", "destroy"] {
            #expect(try await HTTP.request(.POST, console.base + "/api/v1/vms/authvm/\(action)").status == 401)
        }
        let wrong = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [("Authorization", "Bearer " + String(repeating: "0", count: 64))], body: xml)
        #expect(wrong.status == 401)
        #expect(try runSVirt(["list", "--all", "--json", "--state-dir", dir.state]).stdout.contains("authvm") == false,
                "nothing was defined without the token")

        for path in ["/vms", "/vms/authvm", "/vms/authvm/xml", "/host", "/matrix", "/booleans", "/openapi.json"] {
            let read = try await HTTP.request(.GET, console.base + "/api/v1" + path)
            #expect(read.status == 401, "GET \(path) without the token")
            #expect(read.errorMessage?.contains("every API call needs the bearer token") == true, "\(read.body)")
        }
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/vms", headers: [console.auth]).status == 200)

        let right = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [("Authorization", "Bearer \(console.token)")], body: xml)
        #expect(right.status == 201, "\(right.body)")
        #expect(try dir.list()["authvm"]?["state"] as? String == "shut off", "the console's define shows in svirt list")
    }

    @Test("a form posted with another site's Origin gets 403, signed in or not, as does one without the CSRF token; a signed-in same-origin form passes both checks")
    func wrongOrigin() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-origin")
        let console = try ConsoleProcess(state: dir.state)
        let token = try await console.csrf()
        let form = Array("csrf=\(token)".utf8)
        let session = ("Cookie", try await console.signIn())
        let type = ("Content-Type", "application/x-www-form-urlencoded")

        let evilSignedIn = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type, session, ("Origin", "http://evil.example")], body: form)
        #expect(evilSignedIn.status == 403)

        let evil = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type, ("Origin", "http://evil.example")], body: form)
        #expect(evil.status == 403)
        #expect(evil.body.contains("cross-origin request refused"), "\(evil.body)")
        let evilReferer = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type, ("Referer", "http://evil.example/x")], body: form)
        #expect(evilReferer.status == 403)
        let neither = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type], body: form)
        #expect(neither.status == 403)
        let noCSRF = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type, session, ("Origin", console.base)], body: Array("csrf=x".utf8))
        #expect(noCSRF.status == 403)
        #expect(noCSRF.body.contains("CSRF token"), "\(noCSRF.body)")
        // Both checks pass: the request reaches the domain lookup.
        let same = try await HTTP.request(.POST, console.base + "/vms/vm1/start", headers: [type, session, ("Origin", console.base)], body: form)
        #expect(same.status == 404, "\(same.body)")
        #expect(same.body.contains("failed to get domain"))
    }

    @Test("a body over 1 MiB gets 413, with a Content-Length and streamed without one")
    func oversized() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-size")
        let console = try ConsoleProcess(state: dir.state)
        let auth = ("Authorization", "Bearer \(console.token)")
        let big = Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 1)
        let r = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [auth], body: big)
        #expect(r.status == 413)
        #expect(r.errorMessage?.contains("1048576") == true, "\(r.body)")
        let streamed = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [auth], body: big, streamed: true)
        #expect(streamed.status == 413, "\(streamed.body)")
        // Just under the limit is read (and then refused as XML).
        let under = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [auth], body: Array(big.dropLast(2)))
        #expect(under.status == 400)
    }

    @Test("malformed XML gets 400 with the message of svirt's XML reader, and a DOCTYPE is refused the same way",
          arguments: ["<domain><name>x</nam></domain>", "<domain type='kvm'><name>x", "<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/shadow'>]><domain>&e;</domain>", "not xml"])
    func malformed(xml: String) async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-xml")
        let console = try ConsoleProcess(state: dir.state)
        let r = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [("Authorization", "Bearer \(console.token)")], body: Array(xml.utf8))
        #expect(r.status == 400)
        var expected = ""
        do { _ = try DomainDefinition(xml: xml, source: "the request body") } catch let e as SVirtError { expected = e.message }
        #expect(!expected.isEmpty)
        #expect(r.errorMessage == expected)
    }

    @Test("the define page's form defines a domain (303 to the list, seen by svirt list) and shows the reader's message on malformed XML")
    func defineForm() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-define")
        let console = try ConsoleProcess(state: dir.state)
        let token = try await console.csrf()
        let session = ("Cookie", try await console.signIn())
        let type = ("Content-Type", "application/x-www-form-urlencoded")
        func form(_ xml: String) -> [UInt8] {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return Array("csrf=\(token)&xml=\(xml.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")".utf8)
        }
        let good = try await HTTP.request(.POST, console.base + "/define", headers: [type, session, ("Origin", console.base)],
                                          body: form(Scratch.xml("formvm", disk: "\(dir.path)/f.img")))
        #expect(good.status == 303, "\(good.body)")
        #expect(good.headers.first(name: "Location") == "/?done=define&vm=formvm")
        #expect(try dir.list()["formvm"]?["state"] as? String == "shut off")
        let bad = try await HTTP.request(.POST, console.base + "/define", headers: [type, session, ("Origin", console.base)], body: form("<domain><name>x</nam>"))
        #expect(bad.status == 400)
        var expected = ""
        do { _ = try DomainDefinition(xml: "<domain><name>x</nam>", source: "the submitted XML") } catch let e as SVirtError { expected = e.message }
        #expect(bad.body.contains(expected.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "'", with: "&#39;")), "\(bad.body)")
        #expect(bad.body.contains("&lt;domain&gt;&lt;name&gt;x&lt;/nam&gt;"), "the form keeps what was typed")
    }

    @Test("a --listen that is not ADDR:PORT is a usage error naming the fix", arguments: ["nonsense", "1.2.3.4:99999", "::1:80", ":80"])
    func badListen(listen: String) throws {
        try requireSVirt()
        let r = try runSVirt(["serve", "--listen", listen, "--state-dir", "/nonexistent-svirt-state"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--listen '\(listen)'") && r.stderr.contains("ADDR:PORT"), "\(r.stderr)")
    }

    @Test("a port in use is an error that names the address and the fix")
    func portInUse() throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-busy")
        let console = try ConsoleProcess(state: dir.state)
        let r = try runSVirt(["serve", "--listen", "127.0.0.1:\(console.port)", "--state-dir", dir.state])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: cannot listen on 127.0.0.1:\(console.port): ") && r.stderr.contains("--listen"), "\(r.stderr)")
    }

    @Test("on loopback, a same-origin form with the CSRF token but without the token or a session is refused (401, sign in at /login), even from the console's own user")
    func formWithoutSession() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-nosession")
        let console = try ConsoleProcess(state: dir.state)
        let csrf = try await console.csrf()
        let type = ("Content-Type", "application/x-www-form-urlencoded")
        for path in ["/vms/nosuchvm/start", "/vms/nosuchvm/shutdown", "/vms/nosuchvm/destroy", "/define"] {
            let r = try await HTTP.request(.POST, console.base + path, headers: [type, ("Origin", console.base)],
                                           body: Array("csrf=\(csrf)&xml=%3Cdomain%2F%3E".utf8))
            #expect(r.status == 401, "\(path): \(r.status) \(r.body.prefix(300))")
            #expect(r.body.contains("sign in at /login"), "\(r.body)")
        }
        // The token (bearer) or the session lets the same form through to the domain lookup.
        let session = try await console.signIn()
        for extra in [("Cookie", session), console.auth] {
            let r = try await HTTP.request(.POST, console.base + "/vms/nosuchvm/start", headers: [type, extra, ("Origin", console.base)],
                                           body: Array("csrf=\(csrf)".utf8))
            #expect(r.status == 404, "\(r.body)")
        }
        // Reading the pages on loopback still needs neither.
        #expect(try await HTTP.request(.GET, console.base + "/").status == 200)
    }

    @Test("another user's client bound to 127.0.0.2:<console port> (which the old uid rule mistook for the console's own socket) is refused until it signs in",
          .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
                   && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs root, setpriv and python3"))
    func otherUserSamePort() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-peer")
        let console = try ConsoleProcess(state: dir.state)
        // One kept-alive connection from 127.0.0.2 with the console's own port number, as uid 65534.
        let script = """
            import sys, http.client, re
            port, token = int(sys.argv[1]), sys.argv[2]
            base = "http://127.0.0.1:%d" % port
            conn = http.client.HTTPConnection("127.0.0.1", port, source_address=("127.0.0.2", port), timeout=30)
            def request(method, path, body=None, cookie=None):
                headers = {"Origin": base, "Content-Type": "application/x-www-form-urlencoded"}
                if cookie: headers["Cookie"] = cookie
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                return r.status, r.getheader("Set-Cookie") or "", r.read().decode()
            _, _, page = request("GET", "/login")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
            s1, _, b1 = request("POST", "/vms/nosuchvm/start", "csrf=" + csrf)
            s2, cookie, _ = request("POST", "/login", "csrf=" + csrf + "&token=" + token)
            s3, _, b3 = request("POST", "/vms/nosuchvm/start", "csrf=" + csrf, cookie.split(";")[0])
            print(s1, s2, s3)
            print(conn.sock.getsockname())
            print(b1)
            """
        let path = "\(dir.path)/peer.py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", path, String(console.port), console.token]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let lines = text.split(separator: "\n")
        #expect(lines.first == "401 303 404", "\(text)")
        #expect(lines.dropFirst().first == "('127.0.0.2', \(console.port))", "the client really used the console's port: \(text)")
        #expect(text.contains("sign in at /login"), "\(text)")
    }

    @Test("listening beyond loopback, every request needs the token: API reads get 401, pages send to /login, the token signs in")
    func nonLoopback() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-wide")
        let console = try ConsoleProcess(state: dir.state, listen: "0.0.0.0:0")
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/vms").status == 401)
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/host").status == 401)
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/vms", headers: [("Authorization", "Bearer \(console.token)")]).status == 200)
        let page = try await HTTP.request(.GET, console.base + "/")
        #expect(page.status == 303)
        #expect(page.headers.first(name: "Location") == "/login")
        let login = try await HTTP.request(.GET, console.base + "/login")
        let csrfStart = try #require(login.body.range(of: "name=\"csrf\" value=\""))
        let csrf = String(login.body[csrfStart.upperBound...].prefix { $0 != "\"" })
        let type = ("Content-Type", "application/x-www-form-urlencoded")
        let bad = try await HTTP.request(.POST, console.base + "/login", headers: [type, ("Origin", console.base)], body: Array("csrf=\(csrf)&token=nope".utf8))
        #expect(bad.status == 401)
        let good = try await HTTP.request(.POST, console.base + "/login", headers: [type, ("Origin", console.base)],
                                          body: Array("csrf=\(csrf)&token=\(console.token)".utf8))
        #expect(good.status == 303)
        let cookie = try #require(good.headers.first(name: "Set-Cookie")?.split(separator: ";").first.map(String.init))
        #expect(good.headers.first(name: "Set-Cookie")?.contains("HttpOnly") == true)
        let signedIn = try await HTTP.request(.GET, console.base + "/", headers: [("Cookie", cookie)])
        #expect(signedIn.status == 200)
        #expect(signedIn.body.contains("Virtual machines"))
        #expect(try await HTTP.request(.POST, console.base + "/vms/x/destroy", headers: [type, ("Origin", console.base)],
                                       body: Array("csrf=\(csrf)".utf8)).status == 401, "a form without the session is refused")
        // The page cookie is not an API credential.
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/vms", headers: [("Cookie", cookie)]).status == 401)
        #expect(try await HTTP.request(.POST, console.base + "/api/v1/vms/x/destroy", headers: [("Cookie", cookie)]).status == 401)
    }

    @Test("a loopback console refuses a Host that is not a loopback name (DNS rebinding)")
    func rebinding() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-host")
        let console = try ConsoleProcess(state: dir.state)
        let r = try await HTTP.request(.GET, console.base + "/api/v1/vms", headers: [("Host", "rebind.example:\(console.port)")])
        #expect(r.status == 403)
        #expect(try await HTTP.request(.GET, console.base + "/", headers: [("Host", "localhost:\(console.port)")]).status == 200)
    }

    @Test("the OpenAPI document lists every API route, and each listed route answers")
    func openAPI() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-openapi")
        let console = try ConsoleProcess(state: dir.state)
        #expect(try await HTTP.request(.GET, console.base + "/api/v1/openapi.json").status == 401)
        let r = try await HTTP.request(.GET, console.base + "/api/v1/openapi.json", headers: [console.auth])
        #expect(r.status == 200)
        let doc = try #require(r.json as? [String: Any])
        #expect((doc["openapi"] as? String)?.hasPrefix("3.") == true)
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var operations: [String] = []
        for (path, methods) in paths { for m in methods.keys { operations.append("\(m.uppercased()) \(path)") } }
        #expect(Set(operations) == [
            "GET /vms", "POST /vms", "GET /vms/{name}", "GET /vms/{name}/labels", "GET /vms/{name}/xml",
            "POST /vms/{name}/start", "POST /vms/{name}/shutdown", "POST /vms/{name}/destroy", "GET /vms/{name}/denials",
            "GET /matrix", "GET /host", "GET /booleans", "GET /openapi.json",
        ])
        // Every listed route exists: a missing domain is a 404 from the handler (JSON), never the router's.
        let auth = ("Authorization", "Bearer \(console.token)")
        for op in operations {
            let parts = op.split(separator: " ")
            let url = console.base + "/api/v1" + parts[1].replacingOccurrences(of: "{name}", with: "nosuchvm")
            let answer = try await HTTP.request(parts[0] == "GET" ? .GET : .POST, url, headers: [auth],
                                                body: op == "POST /vms" ? Array("<x/>".utf8) : nil)
            #expect(answer.errorMessage != nil || answer.status == 200, "\(op): \(answer.status) \(answer.body.prefix(200))")
            #expect(answer.status != 405)
        }
    }
}

@Suite("svirt serve: the lifecycle over the API", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct ConsoleLifecycleAPITests {
    @Test("slow shutdowns (guests that ignore the power button) do not hold the console: a read sent after them is answered first")
    func slowShutdowns() async throws {
        try requireSVirt()
        try #require(hasQEMU, "a guest with no OS that ignores ACPI needs QEMU (CI installs qemu-system-x86)")
        let dir = try Scratch("svirt-console-slow")
        let names = ["slow1", "slow2", "slow3"]
        for n in names { try dir.define(n, disk: try dir.image("\(n).img")) }
        let console = try ConsoleProcess(state: dir.state)
        let auth = ("Authorization", "Bearer \(console.token)")
        for n in names {
            let r = try await HTTP.request(.POST, console.base + "/api/v1/vms/\(n)/start", headers: [auth])
            try #require(r.status == 200, "\(r.body)")
        }
        #expect(Set(try dir.list().filter { $0.value["state"] as? String == "running" }.keys) == Set(names))

        let clock = ContinuousClock()
        let readLatency = LatencyBox()
        let results = try await withThrowingTaskGroup(of: (String, ContinuousClock.Instant, Int).self) { group in
            for n in names {
                group.addTask {
                    let r = try await HTTP.request(.POST, console.base + "/api/v1/vms/\(n)/shutdown?timeout=15", headers: [auth])
                    return (n, clock.now, r.status)
                }
            }
            group.addTask {
                // On a thread of its own, timed there: the test process's cooperative threads may be held by other
                // suites running alongside (a late wake-up there once made this read look late). Sent well inside the
                // 15 s the shutdowns wait.
                try await withCheckedThrowingContinuation { (done: CheckedContinuation<(String, ContinuousClock.Instant, Int), any Error>) in
                    Thread.detachNewThread {
                        Thread.sleep(forTimeInterval: 1)
                        let sent = clock.now
                        do {
                            let r = try RawConnection.request(port: console.port, "GET /api/v1/vms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                              + "Authorization: Bearer \(console.token)\r\nConnection: close\r\n\r\n")
                            let answered = clock.now
                            readLatency.set(answered - sent)
                            done.resume(returning: ("read", answered, r.status ?? 0))
                        } catch {
                            done.resume(throwing: error)
                        }
                    }
                }
            }
            var out: [(String, ContinuousClock.Instant, Int)] = []
            for try await r in group { out.append(r) }
            return out
        }
        let read = try #require(results.first { $0.0 == "read" })
        #expect(read.2 == 200)
        let latency = readLatency.get()
        #expect(latency < .seconds(10), "the read took \(latency) while the shutdowns waited")
        for r in results where r.0 != "read" {
            #expect(r.2 == 200)
            #expect(read.1 < r.1, "the read was answered before the shutdown of \(r.0) ended")
        }
        #expect(try dir.list().values.allSatisfy { $0["state"] as? String == "shut off" }, "every guest was destroyed after the timeout")
    }

    @Test("a start and a destroy of one VM sent at once: one of them is refused as busy or not running, never a 500, and no QEMU is left without a record")
    func startDestroyRace() async throws {
        try requireSVirt()
        try #require(hasQEMU, "the race needs a start that takes a while: real QEMU")
        let dir = try Scratch("svirt-console-race")
        let image = try dir.image("race.img")
        try dir.define("race", disk: image)
        let console = try ConsoleProcess(state: dir.state)
        let auth = ("Authorization", "Bearer \(console.token)")
        var statuses: [Int: Int] = [:]
        for round in 0..<8 {
            let answers = try await withThrowingTaskGroup(of: (String, Int, String).self) { group in
                group.addTask {
                    let r = try await HTTP.request(.POST, console.base + "/api/v1/vms/race/start", headers: [auth])
                    return ("start", r.status, String(r.body.prefix(300)))
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(10 * (round % 4)))
                    let r = try await HTTP.request(.POST, console.base + "/api/v1/vms/race/destroy", headers: [auth])
                    return ("destroy", r.status, String(r.body.prefix(300)))
                }
                var out: [(String, Int, String)] = []
                for try await a in group { out.append(a) }
                return out
            }
            for (op, status, body) in answers {
                statuses[status, default: 0] += 1
                #expect([200, 404, 409].contains(status), "round \(round): \(op) answered \(status): \(body)")
            }
            // Whatever happened, the registry and the host agree: a running VM is stopped by the next destroy.
            _ = try runSVirt(["destroy", "race", "--state-dir", dir.state])
            #expect(try dir.list()["race"]?["state"] as? String == "shut off", "round \(round)")
        }
        console.stop()
        // No QEMU of this state directory outlives its record.
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap(Int32.init) ?? []
        let orphans = pids.filter { pid in
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmd, as: UTF8.self).contains(dir.state)
        }
        #expect(orphans.isEmpty, "QEMU processes left with no record: \(orphans)")
        let levels = try runSVirt(["mcs", "list", "--json", "--state-dir", dir.state])
        #expect(!levels.stdout.contains("\"race\""), "a level is left: \(levels.stdout)")
        print("start/destroy race, answers by status: \(statuses)")
    }

    @Test("every read of the API answers what the matching svirt command prints: list, labels, XML, host, booleans, matrix, denials")
    func sameAsCLI() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-same")
        try dir.define("runvm", disk: try dir.image("run.img"))
        try dir.define("offvm", disk: try dir.image("off.img"))
        let started = try runSVirt(["start", "runvm", "--state-dir", dir.state] + (hasQEMU ? [] : ["--stand-in"]))
        try #require(started.status == 0, "\(started.stderr)")
        let console = try ConsoleProcess(state: dir.state)
        /// `extract` takes the part of the API's answer the CLI prints; `normalize` drops what may differ on both.
        func same(_ api: String, _ cli: [String], extract: ((Any) -> Any?)? = nil, normalize: ((Any) -> Any)? = nil) async throws {
            let a = try await HTTP.request(.GET, console.base + "/api/v1" + api, headers: [console.auth])
            #expect(a.status == 200, "\(api): \(a.body.prefix(300))")
            let c = try runSVirt(cli + ["--state-dir", dir.state])
            #expect(c.status == 0 || cli[0] == "check", "\(cli): \(c.stderr)")
            let cliText = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if extract != nil || normalize != nil {
                let n = normalize ?? { $0 }
                let apiValue = n(try #require(a.json.flatMap(extract ?? { $0 }), "\(api) has the part the CLI prints"))
                let cliValue = n(try JSONSerialization.jsonObject(with: Data(cliText.utf8)))
                func canonical(_ v: Any) throws -> String {
                    String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
                }
                #expect(try canonical(apiValue) == canonical(cliValue), "\(api) against svirt \(cli.joined(separator: " "))")
            } else {
                #expect(a.body.trimmingCharacters(in: .whitespacesAndNewlines) == cliText, "\(api) against svirt \(cli.joined(separator: " "))")
            }
        }
        try await same("/vms", ["list", "--all", "--json"])
        try await same("/vms/runvm/labels", ["labels", "runvm", "--json"])
        try await same("/vms/offvm/labels", ["labels", "offvm", "--json"])
        try await same("/vms/runvm/xml", ["dumpxml", "runvm"])
        try await same("/host", ["host", "--json"])
        try await same("/booleans", ["booleans", "--json"], extract: { ($0 as? [String: Any])?["booleans"] })
        try await same("/matrix", ["check", "--all", "--json"])
        // The notes differ in their advice (the CLI's names its arguments); the denials and sources do not.
        try await same("/vms/runvm/denials", ["explain", "--vm", "runvm", "--json"], normalize: {
            var d = $0 as? [String: Any] ?? [:]
            d["notes"] = nil
            return d
        })
        let page = try await HTTP.request(.GET, console.base + "/vms/runvm")
        #expect(page.status == 200)
        let labels = try runSVirt(["labels", "runvm", "--state-dir", dir.state]).stdout
        let imageLabel = try #require(labels.split(separator: " ").first.map(String.init))
        #expect(page.body.contains("<code>\(imageLabel)</code>"), "the VM page shows the image's current label")
        #expect(page.body.contains("id=\"denials\"") || page.body.contains("id=\"no-denials\""))
        #expect(try runSVirt(["destroy", "runvm", "--state-dir", dir.state]).status == 0)
    }
}

/// A duration written by one thread and read by another.
final class LatencyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Duration.zero
    func set(_ d: Duration) { lock.lock(); value = d; lock.unlock() }
    func get() -> Duration { lock.lock(); defer { lock.unlock() }; return value }
}
