import Foundation
import Glibc
import NIOHTTP1
import SVirt
import Testing
@testable import SVirtConsole

/// Domain XML with a VNC password.
func xmlWithPassword(_ name: String, disk: String, password: String) -> String {
    Scratch.xml(name, disk: disk).replacingOccurrences(
        of: "  </devices>", with: "    <graphics type='vnc' port='-1' autoport='yes' passwd='\(password)'/>\n  </devices>")
}

/// Domain XML for `name`, with `name` escaped for element content.
func xmlNamed(_ name: String, disk: String) -> String {
    Scratch.xml("NAME", disk: disk).replacingOccurrences(of: "<name>NAME</name>", with: "<name>\(XMLTree.escapeText(name))</name>")
}

@Suite("svirt serve: secrets, names and timeouts", .serialized)
struct ConsoleHardeningTests {
    // MARK: Secrets in domain XML

    @Test("DomainXMLSecrets leaves out every graphics passwd and a disk source's cookies, and nothing else")
    func redaction() throws {
        let xml = """
            <domain type='kvm'>
              <name>v</name>
              <devices>
                <disk type='network' device='cdrom'>
                  <source protocol='https' name='/os.iso'>
                    <host name='example.org' port='443'/>
                    <cookies>
                      <cookie name='session'>s3cret-cookie</cookie>
                    </cookies>
                  </source>
                  <target dev='sda' bus='sata'/>
                </disk>
                <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret-vnc' passwdValidTo='2030-01-01T00:00:00'/>
                <graphics type="spice" autoport="yes" passwd="s3cret-spice"><listen type='address'/></graphics>
              </devices>
            </domain>
            """
        let shown = try #require(DomainXMLSecrets.redacted(xml))
        for secret in ["s3cret-cookie", "s3cret-vnc", "s3cret-spice", "passwd=", "<cookies>", "<cookie "] {
            #expect(!shown.contains(secret), "\(secret) in \(shown)")
        }
        #expect(shown.contains("<graphics type='vnc' port='-1' autoport='yes' passwdValidTo='2030-01-01T00:00:00'/>"), "\(shown)")
        #expect(shown.contains("<graphics type=\"spice\" autoport=\"yes\"><listen type='address'/></graphics>"), "\(shown)")
        #expect(shown.contains("<host name='example.org' port='443'/>"))
        let plain = Scratch.xml("plain", disk: "/d.img")
        #expect(DomainXMLSecrets.redacted(plain) == plain, "XML without secrets comes back as it was")
        #expect(DomainXMLSecrets.redacted("<domain><name>x</nam></domain>") == nil, "unreadable XML is not shown at all")
    }

    @Test("GET /api/v1/vms/NAME/xml needs the token; the VM page without a session leaves the VNC passwd out, with one shows it")
    func passwordDisclosure() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-secret")
        let console = try ConsoleProcess(state: dir.state)
        let secret = "vnc-S3cret-\(UUID().uuidString.prefix(8))"
        let defined = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [console.auth],
                                             body: Array(xmlWithPassword("secretvm", disk: "\(dir.path)/s.img", password: secret).utf8))
        try #require(defined.status == 201, "\(defined.body)")

        for path in ["/api/v1/vms/secretvm/xml", "/api/v1/vms/secretvm"] {
            let anonymous = try await HTTP.request(.GET, console.base + path)
            #expect(anonymous.status == 401)
            #expect(!anonymous.body.contains(secret), "\(path) without the token: \(anonymous.body)")
            let withToken = try await HTTP.request(.GET, console.base + path, headers: [console.auth])
            #expect(withToken.status == 200)
            #expect(withToken.body.contains(secret), "the token holder gets the whole XML, as virsh dumpxml --security-info")
        }

        let page = try await HTTP.request(.GET, console.base + "/vms/secretvm")
        #expect(page.status == 200)
        #expect(!page.body.contains(secret), "the loopback page without a session shows no password")
        #expect(!page.body.contains("passwd="))
        #expect(page.body.contains("id=\"secrets-hidden\""))
        #expect(page.body.contains("graphics type=&#39;vnc&#39;"), "the rest of the XML is shown")
        let signedIn = try await HTTP.request(.GET, console.base + "/vms/secretvm", headers: [("Cookie", try await console.signIn())])
        #expect(signedIn.status == 200)
        #expect(signedIn.body.contains(secret), "a signed-in browser sees the whole XML")
    }

    // MARK: Names

    @Test("percent-decoding of path segments: %XX is a byte, the bytes must be UTF-8, NUL and malformed escapes are refused")
    func percentDecoding() {
        func decoded(_ s: String) -> String? { if case .success(let v) = ConsoleRequest.percentDecode(s) { v } else { nil } }
        #expect(decoded("vm%20%C3%A9%20%22q%22") == "vm é \"q\"")
        #expect(decoded("a+b%2Bc") == "a+b+c", "'+' is not a space in a path")
        #expect(decoded("%e2%82%ac") == "€")
        #expect(decoded("é") == "é", "raw UTF-8 passes")
        for bad in ["%", "%2", "%ZZ", "a%G1", "%C3", "%E9", "%C3%28", "%00", "a%2"] { #expect(decoded(bad) == nil, "\(bad)") }
    }

    @Test("a VM named with é, spaces and quotes is managed through the API and its page; bad encodings are 400")
    func unusualName() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-names")
        // The stand-in guest as root: the start is about the name, not about QEMU.
        let console = try ConsoleProcess(state: dir.state, extra: isRoot ? ["--stand-in"] : [])
        let name = "vm é \"q\" 'x'"
        let segment = pathSegment(name)
        let defined = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [console.auth],
                                             body: Array(xmlNamed(name, disk: try dir.image("n.img")).utf8))
        try #require(defined.status == 201, "\(defined.body)")

        let one = try await HTTP.request(.GET, console.base + "/api/v1/vms/\(segment)", headers: [console.auth])
        #expect(one.status == 200, "\(one.body)")
        #expect(((one.json as? [String: Any])?["domain"] as? [String: Any])?["name"] as? String == name)
        for sub in ["labels", "xml", "denials"] {
            let r = try await HTTP.request(.GET, console.base + "/api/v1/vms/\(segment)/\(sub)", headers: [console.auth])
            #expect(r.status == 200, "\(sub): \(r.body.prefix(300))")
        }
        // A shut-off domain cannot be destroyed: the name was found ("not running", not "failed to get domain").
        let destroy = try await HTTP.request(.POST, console.base + "/api/v1/vms/\(segment)/destroy", headers: [console.auth])
        #expect(destroy.errorMessage == "domain is not running", "\(destroy.body)")
        let page = try await HTTP.request(.GET, console.base + "/vms/\(segment)")
        #expect(page.status == 200, "\(page.body.prefix(300))")
        #expect(page.body.contains("<h1>vm é &quot;q&quot; &#39;x&#39;</h1>"))
        let list = try await HTTP.request(.GET, console.base + "/")
        #expect(list.body.contains("href=\"/vms/\(segment)\""), "the list links the VM by its encoded name")

        if isRoot {
            let started = try await HTTP.request(.POST, console.base + "/api/v1/vms/\(segment)/start", headers: [console.auth])
            #expect(started.status == 200, "\(started.body)")
            #expect(try dir.list()[name]?["state"] as? String == "running")
            let stopped = try await HTTP.request(.POST, console.base + "/api/v1/vms/\(segment)/destroy", headers: [console.auth])
            #expect(stopped.status == 200, "\(stopped.body)")
            #expect(try dir.list()[name]?["state"] as? String == "shut off")
        }

        // Encodings that are not %XX, or bytes that are not UTF-8: 400 from the API and the pages.
        for bad in ["%ZZ", "vm%2", "%C3", "%E9", "%00"] {
            for (path, auth) in [("/api/v1/vms/\(bad)", "Authorization: Bearer \(console.token)\r\n"), ("/vms/\(bad)", "")] {
                let r = try RawConnection.request(port: console.port,
                    "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(console.port)\r\n\(auth)Connection: close\r\n\r\n")
                #expect(r.status == 400, "\(path): \(r.text.prefix(400))")
                #expect(r.text.contains("percent-encoding"), "\(path): \(r.text.prefix(400))")
            }
        }
    }

    @Test("a VM name with '\"', '<', '&' or ''' followed by U+0301 adds no attribute or element to the console's pages")
    func hostileName() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-hostile")
        let console = try ConsoleProcess(state: dir.state)
        let name = "h\"\u{301} autofocus onfocus=alert(1) x='\u{301}<\u{301}b>&\u{301}amp;"
        let defined = try await HTTP.request(.POST, console.base + "/api/v1/vms", headers: [console.auth],
                                             body: Array(xmlNamed(name, disk: "\(dir.path)/h.img").utf8))
        try #require(defined.status == 201, "\(defined.body)")
        for path in ["/", "/vms/\(pathSegment(name))", "/matrix", "/?done=start&vm=\(pathSegment(name))"] {
            let page = try await HTTP.request(.GET, console.base + path)
            #expect(page.status == 200, "\(path): \(page.body.prefix(300))")
            for raw in ["\"\u{301}", "'\u{301}", "<\u{301}", "&\u{301}"] {
                #expect(!containsBytes(page.body, raw), "\(path) holds \(Array(raw.unicodeScalars)) unescaped")
            }
            #expect(containsBytes(page.body, "&quot;\u{301} autofocus"), "\(path) shows the name, escaped")
        }
    }

    // MARK: Timeouts

    @Test("a client that sends half a request line and stalls, or trickles its header, gets 408 and is disconnected within the header timeout")
    func headerTimeout() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-slowloris")
        let console = try ConsoleProcess(state: dir.state, extra: ["--header-timeout", "1", "--idle-timeout", "30"])

        let stalled = try RawConnection(port: console.port)
        let start = Date()
        try stalled.send("GET /api/v1/vm")
        let answer = stalled.read(timeout: 10)
        let elapsed = Date().timeIntervalSince(start)
        #expect(answer.closed, "the connection is closed")
        #expect(elapsed >= 0.8 && elapsed < 5, "closed after \(elapsed) s")
        #expect(answer.text.hasPrefix("HTTP/1.1 408 "), "\(answer.text)")

        // One byte every 200 ms keeps no idle timer happy: the head must be whole within the limit.
        let trickle = try RawConnection(port: console.port)
        let trickleStart = Date()
        var closed = false
        for byte in "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8 {
            if (try? trickle.send(String(decoding: [byte], as: UTF8.self))) == nil { closed = true; break }
            if trickle.read(timeout: 0.2).closed { closed = true; break }
        }
        #expect(closed, "the trickling client was disconnected")
        #expect(Date().timeIntervalSince(trickleStart) < 5)

        // A connection that never sends a byte is closed too.
        let silent = try RawConnection(port: console.port)
        #expect(silent.read(timeout: 10).closed)
        // And the console still answers.
        #expect(try await HTTP.request(.GET, console.base + "/login").status == 200)
    }

    @Test("a kept-alive connection is closed after the idle timeout, not the header timeout; a request that arrives whole is answered")
    func idleTimeout() async throws {
        try requireSVirt()
        let dir = try Scratch("svirt-console-idle")
        let console = try ConsoleProcess(state: dir.state, extra: ["--header-timeout", "1", "--idle-timeout", "3"])
        let c = try RawConnection(port: console.port)
        try c.send("GET /login HTTP/1.1\r\nHost: 127.0.0.1:\(console.port)\r\n\r\n")
        let first = c.read(timeout: 10) { $0.contains("</html>") }
        #expect(first.text.hasPrefix("HTTP/1.1 200 "), "\(first.text.prefix(200))")
        #expect(!first.closed)
        let answered = Date()
        // A second request on the same connection, after longer than the header timeout: still answered.
        #expect(!c.read(timeout: 1.5).closed, "a kept-alive connection outlives the header timeout")
        try c.send("GET /login HTTP/1.1\r\nHost: 127.0.0.1:\(console.port)\r\n\r\n")
        #expect(c.read(timeout: 10) { $0.contains("</html>") }.text.hasPrefix("HTTP/1.1 200 "))
        let second = Date()
        let rest = c.read(timeout: 15)
        let idle = Date().timeIntervalSince(second)
        #expect(rest.closed, "closed when idle")
        #expect(idle >= 2.5 && idle < 8, "closed after \(idle) s idle (\(Date().timeIntervalSince(answered)) s after the first answer)")
    }

    @Test("svirt serve --help documents both timeouts, and a timeout outside 1...86400 is a usage error")
    func timeoutOptions() throws {
        try requireSVirt()
        let help = try runSVirt(["serve", "--help"])
        #expect(help.stdout.contains("--idle-timeout <SECONDS>") && help.stdout.contains("--header-timeout <SECONDS>"), "\(help.stdout)")
        #expect(help.stdout.contains("(default: 60)") && help.stdout.contains("(default: 10)"))
        for option in ["--idle-timeout", "--header-timeout"] {
            let r = try runSVirt(["serve", option, "0", "--state-dir", "/nonexistent-svirt-state"])
            #expect(r.status != 0)
            #expect(r.stderr.contains("\(option) 0 is not a number of seconds from 1 to 86400"), "\(r.stderr)")
        }
    }
}
