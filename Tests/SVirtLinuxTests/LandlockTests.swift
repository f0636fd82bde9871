import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

private let landlockABI = try? Landlock.ABI.current()
private let hasLandlock = landlockABI != nil
private let hasScopes = (landlockABI?.version ?? 0) >= 6

/// A ruleset that lets /bin/sh and coreutils run: read-execute on /usr (where /bin and /lib point on a
/// merged-/usr system) and the loader cache.
private func shellRuleset(scopes: Landlock.Scope = .all) -> Landlock.Ruleset {
    var r = Landlock.Ruleset(scopes: scopes)
    r.allow(.readExecute, beneath: "/usr")
    r.allow(.readOnly, beneath: "/etc/ld.so.cache")
    return r
}

@Suite("Landlock") struct LandlockTests {
    @Test("the ABI table has the rights of each version, and newer kernels get the newest entry")
    func abiTable() throws {
        let v1 = try #require(Landlock.ABI.version(1))
        #expect(v1.filesystem.rawValue == (1 << 13) - 1)
        #expect(v1.network.isEmpty && v1.scopes.isEmpty)
        #expect(Landlock.ABI.version(2)?.filesystem.contains(.refer) == true)
        #expect(Landlock.ABI.version(2)?.filesystem.contains(.truncate) == false)
        #expect(Landlock.ABI.version(3)?.filesystem.contains(.truncate) == true)
        #expect(Landlock.ABI.version(4)?.network == .all)
        #expect(Landlock.ABI.version(4)?.filesystem.contains(.ioctlDevice) == false)
        #expect(Landlock.ABI.version(5)?.filesystem.contains(.ioctlDevice) == true)
        #expect(Landlock.ABI.version(5)?.scopes.isEmpty == true)
        #expect(Landlock.ABI.version(6)?.scopes == .all)
        #expect(Landlock.ABI.version(99) == Landlock.ABI.table.last)
        #expect(Landlock.ABI.version(0) == nil)
        #expect(Landlock.ABI.introducing(.truncate) == 3)
        #expect(Landlock.ABI.introducing(.ioctlDevice) == 5)
    }

    @Test("the running kernel's ABI is the one the host probe reports", .enabled(if: hasLandlock, "needs Landlock"))
    func currentABI() throws {
        let abi = try Landlock.ABI.current()
        #expect(HostProbe().landlock().abi == Int(svirt_abi_raw()))
        #expect(abi.version == min(Int(svirt_abi_raw()), Landlock.ABI.table.count))
    }

    @Test("a ruleset fails closed, naming each restriction an older ABI cannot enforce")
    func failsClosed() throws {
        let r = Landlock.Ruleset()
        let abi3 = try #require(Landlock.ABI.version(3))
        #expect(r.unenforceable(by: abi3) == [
            "TCP bind/connect restriction (needs ABI 4)", "signal scoping (needs ABI 6)",
            "abstract unix socket scoping (needs ABI 6)",
        ])
        let abi2 = try #require(Landlock.ABI.version(2))
        #expect(r.unenforceable(by: abi2).first == "filesystem right truncate (needs ABI 3)")
        #expect(r.unenforceable(by: try #require(Landlock.ABI.version(6))).isEmpty)
        let error = try #require(throws: SVirtError.self) { _ = try r.create(abi: abi3) }
        #expect(error.code == .confinement)
        #expect(error.message.contains("signal scoping (needs ABI 6)"))
        // Without scoping and TCP restriction, ABI 3 is enough.
        let relaxed = Landlock.Ruleset(network: .unrestricted, scopes: [])
        #expect(relaxed.unenforceable(by: abi3).isEmpty)
    }

    @Test("a rule on a missing path names the path", .enabled(if: hasLandlock, "needs Landlock"))
    func missingPath() throws {
        var r = Landlock.Ruleset()
        r.allow(.readWrite, beneath: "/nonexistent/disk.img", reason: "disk vda")
        let error = try #require(throws: SVirtError.self) { _ = try r.create() }
        #expect(error.message.contains("'/nonexistent/disk.img' (disk vda)"))
        #expect((error.cause as? SystemCallError)?.errno == ENOENT)
    }

    @Test("directory rights on a file rule are narrowed to file rights", .enabled(if: hasLandlock, "needs Landlock"))
    func fileRuleNarrowing() throws {
        var r = Landlock.Ruleset()
        r.allow(.readWrite, beneath: "/etc/hostname")
        r.allow(.device, beneath: "/dev/null")
        _ = try r.create()
    }

    @Test("a confined child opens its allowed file and is refused another with EACCES",
          .enabled(if: (landlockABI?.version ?? 0) >= 6, "needs Landlock ABI 6"))
    func allowedAndRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("mine.img", "mine\n")
        try dir.write("other.img", "other\n")
        var d = shell("cat \"$1\" && echo more >> \"$1\" && cat \"$2\"", in: dir, dir.file("mine.img"), dir.file("other.img"))
        var r = shellRuleset()
        r.allow(.readWrite, beneath: dir.file("mine.img"))
        d.landlock = r
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) != 0)
        #expect(readText(dir.file("stdout")) == "mine\n")
        #expect(readText(dir.file("mine.img")) == "mine\nmore\n")
        #expect(readText(dir.file("stderr")).contains("\(dir.file("other.img")): Permission denied"))
        // The same program without the ruleset reads both: the refusal came from Landlock.
        d.landlock = nil
        let pid2 = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid2) == 0)
    }

    @Test("a read-only grant lets the child read but not write or truncate",
          .enabled(if: (landlockABI?.version ?? 0) >= 6, "needs Landlock ABI 6"))
    func readOnlyGrant() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("cd.iso", "iso\n")
        var d = shell("cat \"$1\"; true > \"$1\"; truncate -s 0 \"$1\"", in: dir, dir.file("cd.iso"))
        var r = shellRuleset()
        r.allow(.readOnly, beneath: dir.file("cd.iso"))
        d.landlock = r
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) != 0)
        #expect(readText(dir.file("stdout")) == "iso\n")
        #expect(readText(dir.file("cd.iso")) == "iso\n")
        let stderr = readText(dir.file("stderr"))
        #expect(stderr.components(separatedBy: "Permission denied").count == 3, "\(stderr)")
    }

    @Test("a confined child cannot signal a process outside its domain", .enabled(if: hasScopes, "needs Landlock ABI 6"))
    func signalScope() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let target = try ProcessLauncher.spawn(LaunchDescription(executable: "/bin/sleep", arguments: ["30"]))
        defer { killAndReap(target) }
        // Only signal scoping: the filesystem is left alone.
        var d = shell("kill -0 \"$1\"", in: dir, String(target))
        d.landlock = Landlock.Ruleset(requiredFilesystem: [], network: .unrestricted, scopes: .signal)
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) != 0)
        #expect(readText(dir.file("stderr")).contains("Operation not permitted"))
        // Unconfined, the same signal is allowed; and the confined child can still signal itself.
        d.landlock = nil
        #expect(waitExit(try ProcessLauncher.spawn(d)) == 0)
        var own = shell("kill -0 $$", in: dir)
        own.landlock = Landlock.Ruleset(requiredFilesystem: [], network: .unrestricted, scopes: .signal)
        #expect(waitExit(try ProcessLauncher.spawn(own)) == 0)
    }

    @Test("a confined child cannot connect to an abstract unix socket made outside its domain",
          .enabled(if: hasScopes && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs ABI 6 and python3"))
    func abstractSocketScope() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let name = "svirt-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try abstractListener(name)
        defer { close(listener) }
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect('\\0'+sys.argv[1]); print('connected')\nexcept OSError as e:\n print(e.errno)"
        var d = LaunchDescription(executable: "/usr/bin/python3", arguments: ["-c", script, name],
                                  environment: LaunchDescription.minimalEnvironment)
        d.standardOutput = .file(dir.file("out"))
        d.landlock = Landlock.Ruleset(requiredFilesystem: [], network: .unrestricted, scopes: .abstractUnixSocket)
        #expect(waitExit(try ProcessLauncher.spawn(d)) == 0)
        #expect(readText(dir.file("out")) == "\(EPERM)\n")
        d.landlock = nil
        #expect(waitExit(try ProcessLauncher.spawn(d)) == 0)
        #expect(readText(dir.file("out")) == "\(EPERM)\nconnected\n")
    }
}

private func svirt_abi_raw() -> Int32 { HostProbe().landlock().abi.map(Int32.init) ?? 0 }

/// Binds and listens on the abstract unix socket `name`.
private func abstractListener(_ name: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SystemCallError(call: "socket", path: name, errno: errno) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(name.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw[0] = 0
        for (i, b) in bytes.enumerated() { raw[i + 1] = b }
    }
    let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count)
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard rc == 0, listen(fd, 4) == 0 else {
        let e = errno
        close(fd)
        throw SystemCallError(call: "bind", path: name, errno: e)
    }
    return fd
}
