import Foundation
import Glibc
import SELinux
import SVirt
import Testing
@testable import SVirtLinux

@Suite("process launcher (the C spawn)") struct ProcessLauncherTests {
    @Test("a spawned program gets its arguments, its environment and its output files")
    func argumentsAndEnvironment() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var d = shell("echo \"$1|$FOO|$HOME\"; echo oops >&2; exit 7", in: dir, "first arg")
        d.environment["FOO"] = "bar baz"
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) == 7)
        // Nothing of the test's own environment ($HOME) is inherited.
        #expect(readText(dir.file("stdout")) == "first arg|bar baz|\n")
        #expect(readText(dir.file("stderr")) == "oops\n")
    }

    @Test("the child writes the exec and socket-create contexts under the given procfs root")
    func contextsUnderFakeProcfs() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("proc/thread-self/attr"),
                                                withIntermediateDirectories: true)
        try dir.write("proc/thread-self/attr/exec", "")
        try dir.write("proc/thread-self/attr/sockcreate", "")
        var d = LaunchDescription(executable: "/bin/true")
        d.procRoot = dir.file("proc")
        d.execContext = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c585,c813")
        d.socketCreateContext = try SecurityContext(parsing: "system_u:object_r:svirt_t:s0:c585,c813")
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) == 0)
        #expect(readText(dir.file("proc/thread-self/attr/exec")) == "system_u:system_r:svirt_t:s0:c585,c813")
        #expect(readText(dir.file("proc/thread-self/attr/sockcreate")) == "system_u:object_r:svirt_t:s0:c585,c813")
    }

    @Test("a context that cannot be written stops the start and names the step, the file and errno")
    func contextWriteFailure() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var d = LaunchDescription(executable: "/bin/true")
        d.procRoot = dir.file("proc")  // no attr files: ENOENT
        d.execContext = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1,c2")
        let error = try #require(throws: SVirtError.self) { try ProcessLauncher.spawn(d) }
        #expect(error.code == .confinement)
        let cause = try #require(error.cause as? SystemCallError)
        #expect(cause.call == "write attr/exec")
        #expect(cause.path == dir.file("proc/thread-self/attr/exec"))
        #expect(cause.errno == ENOENT)
    }

    @Test("without SELinux in the kernel the real procfs refuses an exec context",
          .enabled(if: !FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce"), "SELinux is on"))
    func realProcfsWithoutSELinux() throws {
        var d = LaunchDescription(executable: "/bin/true")
        d.execContext = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1,c2")
        let error = try #require(throws: SVirtError.self) { try ProcessLauncher.spawn(d) }
        #expect(error.code == .confinement)
        #expect((error.cause as? SystemCallError)?.call == "write attr/exec")
    }

    @Test("the child executes nothing before spawned has returned, and nothing at all when it throws")
    func spawnedGate() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let d = shell("touch \"$1\"", in: dir, dir.file("ran"))
        struct Refused: Error {}
        var seen: Int32 = 0
        #expect(throws: Refused.self) {
            try ProcessLauncher.spawn(d) { pid in
                seen = pid
                throw Refused()
            }
        }
        // The child was forked, waited, exited unexecuted and was reaped.
        #expect(seen > 0 && kill(seen, 0) != 0)
        #expect(!FileManager.default.fileExists(atPath: dir.file("ran")))

        var ranBefore = true
        let pid = try ProcessLauncher.spawn(d) { _ in
            usleep(100_000)
            ranBefore = FileManager.default.fileExists(atPath: dir.file("ran"))
        }
        #expect(waitExit(pid) == 0)
        #expect(!ranBefore, "the program ran before spawned returned")
        #expect(FileManager.default.fileExists(atPath: dir.file("ran")))
    }

    @Test("an exec failure reports execve and ENOENT")
    func execFailure() throws {
        let d = LaunchDescription(executable: "/nonexistent/qemu-system-x86_64")
        let error = try #require(throws: SVirtError.self) { try ProcessLauncher.spawn(d) }
        #expect(error.code == .launch)
        let cause = try #require(error.cause as? SystemCallError)
        #expect(cause.call == "execve")
        #expect(cause.errno == ENOENT)
        #expect(error.message.contains("No such file or directory"))
    }

    @Test("the child leads a new session, has no_new_privs set and holds only the descriptors it was given")
    func sessionPrivsAndDescriptors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A descriptor without CLOEXEC that must not leak, and one that is passed on purpose as 5.
        let leak = open(dir.file("leak"), O_RDWR | O_CREAT, 0o600)
        let passed = open(dir.file("passed"), O_RDWR | O_CREAT, 0o600)
        defer {
            close(leak)
            close(passed)
        }
        var d = LaunchDescription(executable: "/bin/sleep", arguments: ["30"])
        d.inheritedDescriptors = [.init(source: passed, target: 5)]
        let pid = try ProcessLauncher.spawn(d)
        defer { killAndReap(pid) }
        #expect(getsid(pid) == pid)
        #expect(readText("/proc/\(pid)/status").contains("NoNewPrivs:\t1"))
        // sleep opens files of its own while it starts (the locale archive): wait until it has settled.
        var fds: [Int32] = []
        for _ in 0..<40 {
            fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int32($0) }.sorted()
            if fds == [0, 1, 2, 5] { break }
            usleep(50_000)
        }
        #expect(fds == [0, 1, 2, 5])
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/5")
        #expect(target == dir.file("passed"))
    }

    @Test("descriptors whose numbers collide with other targets are placed without loss")
    func swappedDescriptors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = open(dir.file("out"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        let err = open(dir.file("err"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        defer {
            close(out)
            close(err)
        }
        // dash redirects only descriptors 0-9, so the program reaches the high one through /proc/self/fd.
        var d = LaunchDescription(executable: "/bin/sh",
                                  arguments: ["-c", "echo to-out; echo to-err >&2; echo to-\(out) >>/proc/self/fd/\(out)"])
        // stdout goes to `err`, stderr to `out`, and `err` is also passed as the number `out` has here: each
        // target is another mapping's source.
        d.standardOutput = .descriptor(err)
        d.standardError = .descriptor(out)
        d.inheritedDescriptors = [.init(source: err, target: out)]
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) == 0)
        #expect(readText(dir.file("out")) == "to-err\n")
        #expect(readText(dir.file("err")) == "to-out\nto-\(out)\n")
    }

    @Test("a listening socket is created in the child and handed over as the given descriptor")
    func listeningSocket() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var d = LaunchDescription(executable: "/bin/sleep", arguments: ["30"])
        d.listeningSockets = [.init(path: dir.file("qmp.sock"), descriptor: 3)]
        let pid = try ProcessLauncher.spawn(d)
        defer { killAndReap(pid) }
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3")
        #expect(link.hasPrefix("socket:["))
        // The socket listens: a connection is queued in its backlog even though sleep never accepts.
        let fd = try UnixSocket.connect(path: dir.file("qmp.sock"))
        close(fd)
    }

    @Test("the listening socket is mode 0600 under umask 000, and the program keeps the umask it was given")
    func listeningSocketMode() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var d = LaunchDescription(executable: "/bin/sleep", arguments: ["30"])
        d.listeningSockets = [.init(path: dir.file("qmp.sock"), descriptor: 3)]
        // umask is per process; it is 000 only while the child is forked.
        let saved = umask(0)
        let spawned = Result { try ProcessLauncher.spawn(d) }
        umask(saved)
        let pid = try spawned.get()
        defer { killAndReap(pid) }
        var st = stat()
        #expect(lstat(dir.file("qmp.sock"), &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o7777 == 0o600, "mode \(String(st.st_mode & 0o7777, radix: 8))")
        let status = readText("/proc/\(pid)/status")
        #expect(status.split(whereSeparator: \.isNewline).contains("Umask:\t0000"))
    }

    @Test("a listening socket on a taken path fails at the listener step with EADDRINUSE")
    func listenerInUse() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("taken", "")
        var d = LaunchDescription(executable: "/bin/true")
        d.listeningSockets = [.init(path: dir.file("taken"), descriptor: 3)]
        let error = try #require(throws: SVirtError.self) { try ProcessLauncher.spawn(d) }
        #expect((error.cause as? SystemCallError)?.call == "bind")
        #expect((error.cause as? SystemCallError)?.errno == EADDRINUSE)
    }

    @Test("the child switches to the given user, group and supplementary groups", .enabled(if: isRoot, "needs root"))
    func credentials() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var d = shell("id -u; id -g; id -G", in: dir)
        d.credentials = .init(uid: 65534, gid: 65534, groups: [65534, 100])
        let pid = try ProcessLauncher.spawn(d)
        #expect(waitExit(pid) == 0)
        let lines = readText(dir.file("stdout")).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first == "65534")
        #expect(lines.dropFirst().first == "65534")
        #expect(Set(lines.last?.split(separator: " ").map(String.init) ?? []) == ["65534", "100"])
    }

    @Test("changing user without root fails at setgroups", .enabled(if: !isRoot, "needs a non-root user"))
    func credentialsWithoutRoot() throws {
        var d = LaunchDescription(executable: "/bin/true")
        d.credentials = .init(uid: 0, gid: 0)
        let error = try #require(throws: SVirtError.self) { try ProcessLauncher.spawn(d) }
        #expect((error.cause as? SystemCallError)?.call == "setgroups")
    }

    @Test("on a real SELinux host the program runs in the exec context and its socket has the socket context",
          .enabled(if: FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce"), "needs SELinux enabled"))
    func realSELinux() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // The process's own context is always a valid exec and socket-create context for it.
        let own = try #require(ProcFS().context())
        let context = try SecurityContext(parsing: own)
        var d = LaunchDescription(executable: "/bin/sleep", arguments: ["30"])
        d.execContext = context
        d.socketCreateContext = context
        d.listeningSockets = [.init(path: dir.file("s.sock"), descriptor: 3)]
        let pid = try ProcessLauncher.spawn(d)
        defer { killAndReap(pid) }
        #expect(ProcFS().context(of: pid) == own)
        let fd = try UnixSocket.connect(path: dir.file("s.sock"))
        defer { close(fd) }
        #expect(UnixSocket.peerContext(fd) == own)
    }
}
