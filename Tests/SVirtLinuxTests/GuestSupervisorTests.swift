import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

@Suite("guest supervision", .serialized) struct GuestSupervisorTests {
    @Test("QEMU's own error reaches the caller verbatim when it exits during startup", .enabled(if: hasQEMU, "needs qemu-system"))
    func startupFailure() throws {
        let dir = try TemporaryDirectory("svirt-sup")
        defer { dir.remove() }
        var (c, run) = try guestConfiguration("bad", image: try makeImage(dir, "b.img"), dir: dir)
        c.machine = "no-such-machine"
        let e = try #require(throws: SVirtError.self) { _ = try startQEMU(c, run: run, confined: false) }
        #expect(e.code == .launch)
        let log = readText(run.logFile).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(log.contains("unsupported machine type"))
        #expect(e.message.hasSuffix(log))
        #expect(e.message.hasPrefix("qemu-system-"))

        // A missing image: QEMU's "Could not open" line, again verbatim.
        var (c2, run2) = try guestConfiguration("noimg", image: dir.file("missing.img"), dir: dir)
        c2.machine = "q35"
        let e2 = try #require(throws: SVirtError.self) { _ = try startQEMU(c2, run: run2, confined: false) }
        #expect(e2.message.contains("Could not open '\(dir.file("missing.img"))': No such file or directory"))
    }

    @Test("a guest confined without access to its own image fails with QEMU's Permission denied",
          .enabled(if: hasQEMU, "needs qemu-system"), .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func confinedWithoutImage() throws {
        let dir = try TemporaryDirectory("svirt-sup")
        defer { dir.remove() }
        let img = try makeImage(dir, "own.img")
        let (c, run) = try guestConfiguration("noaccess", image: img, dir: dir)
        let emulator = try #require(qemuEmulator)
        var d = try QEMUCommandLine(c, emulator: emulator).launchDescription()
        let system = try QEMUSystemPaths.compute(for: emulator, kvm: c.accelerator == .kvm)
        d.landlock = .guest(system: system.rules, readWrite: [], readOnly: [])
        let e = try #require(throws: SVirtError.self) {
            _ = try GuestSupervisor.start(d, qmpSocket: run.qmpSocket, logFile: run.logFile)
        }
        #expect(e.message.contains("Could not open '\(img)': Permission denied"))
    }

    @Test("the runtime directory is private and the monitor socket is made by the spawn",
          .enabled(if: hasQEMU, "needs qemu-system"))
    func runtimeDirectory() throws {
        let dir = try TemporaryDirectory("svirt-sup")
        defer { dir.remove() }
        let (c, run) = try guestConfiguration("rt", image: try makeImage(dir, "r.img"), dir: dir)
        var st = stat()
        #expect(stat(run.path, &st) == 0 && st.st_mode & 0o777 == 0o700)
        let g = try startQEMU(c, run: run)
        defer { GuestSupervisor.stop(g.process, powerdownTimeout: .zero) }
        #expect(lstat(run.qmpSocket, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK)
        #expect(g.process.identity == ProcFS().identity(of: g.process.identity.pid))
        // QEMU leads its own session, so it outlives svirt's terminal.
        #expect(getsid(g.process.identity.pid) == g.process.identity.pid)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(g.process.identity.pid)/fd/3")
        #expect(link.hasPrefix("socket:["))
    }

    @Test("stop ends a process that is not svirt's child, detected without waitpid")
    func stopNonChild() throws {
        let dir = try TemporaryDirectory("svirt-sup")
        defer { dir.remove() }
        // sh starts sleep in the background and exits: sleep is reparented away from this process.
        var d = shell("sleep 60 & echo $!", in: dir)
        d.newSession = true
        #expect(waitExit(try ProcessLauncher.spawn(d)) == 0)
        let pid = try #require(Int32(readText(dir.file("stdout")).trimmingCharacters(in: .whitespacesAndNewlines)))
        let identity = try #require(ProcFS().identity(of: pid))
        #expect(getppid() != Int32(readText("/proc/\(pid)/stat").split(separator: " ")[3]) ?? 0)
        let g = GuestProcess(identity: identity, qmpSocket: dir.file("none.sock"), logFile: dir.file("log"))
        #expect(GuestSupervisor.isRunning(g))
        #expect(GuestSupervisor.stop(g, powerdownTimeout: .seconds(1)) == .terminated)
        #expect(!GuestSupervisor.isRunning(g))
        #expect(GuestSupervisor.stop(g) == .alreadyGone)
    }

    @Test("without a pidfd, exit is detected by polling /proc")
    func procPolling() throws {
        let pid = try ProcessLauncher.spawn(LaunchDescription(executable: "/bin/sleep", arguments: ["0.2"]))
        let identity = try #require(ProcFS().identity(of: pid))
        let g = GuestProcess(identity: identity, qmpSocket: "", logFile: "")
        #expect(GuestSupervisor.waitForExit(g, pidfd: -1, timeout: .seconds(10), proc: ProcFS()))
        #expect(!GuestSupervisor.isRunning(g))
    }

    @Test("a process that ignores SIGTERM is killed")
    func escalatesToKill() throws {
        let dir = try TemporaryDirectory("svirt-sup")
        defer { dir.remove() }
        let pid = try ProcessLauncher.spawn(shell("trap '' TERM; echo ready; while :; do sleep 0.1; done", in: dir))
        let identity = try #require(ProcFS().identity(of: pid))
        // Signal only once the trap is set.
        let ready = ContinuousClock.now + .seconds(10)
        while readText(dir.file("stdout")).isEmpty && ContinuousClock.now < ready { usleep(5000) }
        let g = GuestProcess(identity: identity, qmpSocket: dir.file("none.sock"), logFile: "")
        #expect(GuestSupervisor.stop(g, powerdownTimeout: .zero, terminateTimeout: .milliseconds(300)) == .killed)
        #expect(!GuestSupervisor.isRunning(g))
    }

    @Test("a recorded identity whose pid now has another start time is not the guest")
    func reusedPid() throws {
        let pid = try ProcessLauncher.spawn(LaunchDescription(executable: "/bin/sleep", arguments: ["30"]))
        defer { killAndReap(pid) }
        let real = try #require(ProcFS().identity(of: pid))
        let stale = GuestProcess(identity: ProcessIdentity(pid: pid, startTime: real.startTime &+ 1), qmpSocket: "", logFile: "")
        #expect(!GuestSupervisor.isRunning(stale))
        #expect(GuestSupervisor.stop(stale, powerdownTimeout: .zero) == .alreadyGone)
        // The process that now owns the pid was left alone.
        #expect(ProcFS().isAlive(real))
    }
}
