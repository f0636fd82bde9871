import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

@Suite("QMP framing") struct QMPFramingTests {
    @Test("objects split across reads, several per read, and braces inside strings are framed correctly")
    func splitter() throws {
        var s = JSONStreamSplitter()
        #expect(try s.append(Array("{\"a\": \"}{\\\"\", ".utf8)).isEmpty)
        let two = try s.append(Array("\"b\": [1, {\"c\": 2}]}\r\n{\"d\":1}{\"e\"".utf8))
        #expect(two.count == 2)
        #expect(try JSONValue.parse(two[0]) == ["a": "}{\"", "b": [1, ["c": 2]]])
        #expect(try JSONValue.parse(two[1]) == ["d": 1])
        let last = try s.append(Array(":true}\n".utf8))
        #expect(try last.map { try JSONValue.parse($0) } == [["e": true]])
    }

    @Test("bytes outside an object or unbalanced braces are a protocol error")
    func garbage() throws {
        var s = JSONStreamSplitter()
        let e = try #require(throws: QMPError.self) { _ = try s.append(Array("hello".utf8)) }
        #expect(e.kind == .protocolError)
        var t = JSONStreamSplitter()
        #expect(throws: QMPError.self) { _ = try t.append(Array("{}}".utf8)) }
    }

    @Test("JSON values round-trip with sorted keys")
    func jsonValue() throws {
        let v: JSONValue = ["execute": "blockdev-add", "arguments": ["read-only": true, "size": 1_099_511_627_776, "x": nil]]
        #expect(v.json == #"{"arguments":{"read-only":true,"size":1099511627776,"x":null},"execute":"blockdev-add"}"#)
        #expect(try JSONValue.parse(Array(v.json.utf8)) == v)
        #expect(v["arguments"]?["size"]?.integerValue == 1 << 40)
    }
}

@Suite("QMP against QEMU", .serialized, .enabled(if: hasQEMU, "needs qemu-system"))
struct QMPClientTests {
    @Test("the greeting carries QEMU's version, commands return values, errors carry QEMU's class and text")
    func commandsAndErrors() throws {
        let dir = try TemporaryDirectory("svirt-qmp")
        defer { dir.remove() }
        let (c, run) = try guestConfiguration("qmp", image: try makeImage(dir, "q.img"), dir: dir)
        let g = try startQEMU(c, run: run, confined: false)
        defer { GuestSupervisor.stop(g.process, powerdownTimeout: .zero) }
        let versionLine = try QEMUEmulator.runCapturing(try #require(qemuEmulator).path, ["-version"]).output
        #expect(versionLine.contains("version \(g.monitor.greeting.version)"))
        #expect(try g.monitor.execute("query-status")["status"] == "prelaunch")
        let version = try g.monitor.execute("query-version")
        #expect(version["qemu"]?["major"]?.integerValue == g.monitor.greeting.major)

        let notFound = try #require(throws: QMPError.self) { try g.monitor.execute("no-such-command") }
        #expect(notFound.kind == .command)
        #expect(notFound.errorClass == "CommandNotFound")
        #expect(notFound.message == "The command no-such-command has not been found")
        let missing = try #require(throws: QMPError.self) {
            try g.monitor.execute("blockdev-add", arguments: ["driver": "file", "filename": "/nonexistent.img", "node-name": "x"])
        }
        #expect(missing.message == "Could not open '/nonexistent.img': No such file or directory")

        // The raw form used by `qemu-monitor-command` returns the whole reply, errors included.
        let raw = try g.monitor.send(["execute": "query-name"])
        #expect(raw == ["return": ["name": "qmp"]])
        let rawError = try g.monitor.send(["execute": "nope", "id": "mine"])
        #expect(rawError["id"] == "mine")
        #expect(rawError["error"]?["class"] == "CommandNotFound")
    }

    @Test("events arrive while waiting, and a wait with no event times out with nil")
    func events() throws {
        let dir = try TemporaryDirectory("svirt-qmp")
        defer { dir.remove() }
        let (c, run) = try guestConfiguration("ev", image: try makeImage(dir, "q.img"), dir: dir)
        let g = try startQEMU(c, run: run, confined: false)
        defer { GuestSupervisor.stop(g.process, powerdownTimeout: .zero) }
        #expect(try g.monitor.nextEvent(timeout: .milliseconds(200)) == nil)
        try g.monitor.execute("cont")
        try g.monitor.execute("stop")
        let stop = try #require(try g.monitor.nextEvent("STOP", timeout: .seconds(10)))
        #expect(stop.timestamp > 1_600_000_000)
        // RESUME came first and was kept.
        #expect(try g.monitor.nextEvent("RESUME", timeout: .zero)?.name == "RESUME")
        try g.monitor.execute("quit")
        let shutdown = try #require(try g.monitor.nextEvent("SHUTDOWN", timeout: .seconds(10)))
        #expect(shutdown.data["reason"] == "host-qmp-quit")
        #expect(GuestSupervisor.stop(g.process, powerdownTimeout: .zero, terminateTimeout: .seconds(10)) != .killed)
    }

    @Test("connecting where nothing listens is a connect error naming the socket")
    func connectError() throws {
        let e = try #require(throws: QMPError.self) { _ = try QMPClient.connect(path: "/nonexistent/qmp.sock") }
        #expect(e.kind == .connect)
        #expect(e.message.contains("/nonexistent/qmp.sock"))
    }

    @Test("a monitor that never greets times out")
    func greetingTimeout() throws {
        let dir = try TemporaryDirectory("svirt-qmp")
        defer { dir.remove() }
        // sleep holds a listening socket and never answers.
        var d = LaunchDescription(executable: "/bin/sleep", arguments: ["30"])
        d.listeningSockets = [.init(path: dir.file("m.sock"), descriptor: 3)]
        let pid = try ProcessLauncher.spawn(d)
        defer { killAndReap(pid) }
        let e = try #require(throws: QMPError.self) { _ = try QMPClient.connect(path: dir.file("m.sock"), timeout: .milliseconds(200)) }
        #expect(e.kind == .timeout)
    }
}
