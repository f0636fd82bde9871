import CSVirt
import Foundation
import Glibc
import SVirt

/// A running guest process, as svirt records it: enough to find it again from another `svirt` process.
public struct GuestProcess: Sendable, Hashable, Codable {
    /// pid and start time (`/proc/PID/stat`), so a reused pid is never mistaken for the guest.
    public var identity: ProcessIdentity
    public var qmpSocket: String
    /// QEMU's stdout and stderr.
    public var logFile: String

    public init(identity: ProcessIdentity, qmpSocket: String, logFile: String) {
        self.identity = identity
        self.qmpSocket = qmpSocket
        self.logFile = logFile
    }
}

/// A guest that answered its monitor: the record and the open monitor connection (close it to let another
/// client in; QEMU serves one at a time).
public struct StartedGuest {
    public var process: GuestProcess
    public var monitor: QMPClient
}

/// How a guest stopped.
public enum StopOutcome: String, Sendable, Codable {
    /// It exited after the ACPI power button (QMP `system_powerdown`).
    case poweredOff = "powered-off"
    /// It exited on SIGTERM.
    case terminated
    /// It had to be killed (SIGKILL).
    case killed
    /// It was not running.
    case alreadyGone = "already-gone"
}

/// Starts guests detached (they outlive svirt) and stops them, for a daemonless tool: every fact needed later
/// is in the `GuestProcess` record, and exit is detected without being the parent (pidfd, else /proc).
public enum GuestSupervisor {
    /// Starts `launch` with stdout and stderr appended to `logFile`, in a new session, then waits until the
    /// monitor at `qmpSocket` greets (returned connected), or the process exits (an error whose message ends with
    /// QEMU's own output, verbatim), or `timeout` passes (the process is killed).
    ///
    /// `spawned` is called with the process as soon as it is forked, before it executes anything, so the caller
    /// can record it where a later svirt process finds it: the program is executed only once it returns, never
    /// when it throws or when svirt dies first.
    public static func start(_ launch: LaunchDescription, qmpSocket: String, logFile: String,
                             timeout: Duration = .seconds(30), proc: ProcFS = ProcFS(),
                             spawned: ((ProcessIdentity) throws -> Void)? = nil) throws -> StartedGuest {
        var d = launch
        d.standardOutput = .file(logFile)
        d.standardError = .file(logFile)
        d.newSession = true
        if d.workingDirectory == nil { d.workingDirectory = "/" }
        var st = stat()
        let logOffset = stat(logFile, &st) == 0 ? Int(st.st_size) : 0
        // A stale socket from an earlier run would make the listener's bind fail.
        if lstat(qmpSocket, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(qmpSocket) }

        // The child waits until `spawned` has recorded it (its start time, read before the exec, stays the same
        // through it): a svirt killed before the record is made leaves no guest behind, the child exits unexecuted.
        var recorded: ProcessIdentity?
        let pid = try ProcessLauncher.spawn(d, spawned: spawned.map { record in
            { pid in
                guard let identity = proc.identity(of: pid) else {
                    throw SVirtError(.launch, "\(d.executable) (pid \(pid)) vanished right after it was forked")
                }
                try record(identity)
                recorded = identity
            }
        })
        // The child exists until it is reaped, so its start time can be read even if it already exited.
        guard let identity = recorded ?? proc.identity(of: pid) else {
            _ = reap(pid, block: true)
            throw SVirtError(.launch, "\(d.executable) (pid \(pid)) vanished right after it started")
        }
        let record = GuestProcess(identity: identity, qmpSocket: qmpSocket, logFile: logFile)
        let deadline = ContinuousClock.now + timeout

        func failure(_ why: String) -> SVirtError {
            let output = logText(logFile, from: logOffset).trimmingCharacters(in: .whitespacesAndNewlines)
            return SVirtError(.launch, output.isEmpty ? why : "\(why):\n\(output)")
        }

        var fd: Int32 = -1
        while true {
            if let status = reap(pid, block: false) {
                if fd >= 0 { close(fd) }
                throw failure("\((d.executable as NSString).lastPathComponent) exited during startup (\(status))")
            }
            if ContinuousClock.now >= deadline {
                if fd >= 0 { close(fd) }
                kill(pid, SIGKILL)
                _ = reap(pid, block: true)
                throw failure("\((d.executable as NSString).lastPathComponent) did not answer on its monitor "
                              + "\(qmpSocket) within \(timeout); it was killed")
            }
            if fd < 0 { fd = (try? UnixSocket.connect(path: qmpSocket, peerContext: d.execContext?.description)) ?? -1 }
            if fd < 0 {
                usleep(5_000)
                continue
            }
            // The greeting comes once QEMU's main loop runs; meanwhile keep watching the process.
            let slice = min(deadline, ContinuousClock.now + .milliseconds(50))
            if (try? UnixSocket.wait(fd, until: slice)) == true {
                do {
                    let monitor = try QMPClient(descriptor: fd, path: qmpSocket, timeout: max(deadline - .now, .seconds(1)))
                    return StartedGuest(process: record, monitor: monitor)
                } catch let e as QMPError {
                    // Closed without a greeting: QEMU is exiting. Report its own words.
                    fd = -1
                    if reap(pid, block: false, within: .seconds(5)) != nil {
                        throw failure("\((d.executable as NSString).lastPathComponent) exited during startup")
                    }
                    kill(pid, SIGKILL)
                    _ = reap(pid, block: true)
                    throw failure("the monitor \(qmpSocket) failed: \(e.message); the process was killed")
                }
            }
        }
    }

    /// Stops a guest: `system_powerdown` over QMP and up to `powerdownTimeout` for it to exit (skipped when zero),
    /// then SIGTERM and up to `terminateTimeout`, then SIGKILL. Works for a guest started by another svirt
    /// process. Signals go through a pidfd opened after the start time was checked, so a reused pid is never hit.
    @discardableResult
    public static func stop(_ g: GuestProcess, powerdownTimeout: Duration = .seconds(30),
                            terminateTimeout: Duration = .seconds(10), proc: ProcFS = ProcFS()) -> StopOutcome {
        let pid = g.identity.pid
        let pidfd = svirt_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        guard proc.isAlive(g.identity) else {
            _ = reap(pid, block: false)
            return .alreadyGone
        }
        if powerdownTimeout > .zero {
            if let monitor = try? QMPClient.connect(path: g.qmpSocket, timeout: min(powerdownTimeout, .seconds(5)),
                                                    peerContext: proc.context(of: pid)) {
                let sent = (try? monitor.execute("system_powerdown", timeout: .seconds(5))) != nil
                monitor.close()
                if sent && waitForExit(g, pidfd: pidfd, timeout: powerdownTimeout, proc: proc) { return .poweredOff }
            }
        }
        guard proc.isAlive(g.identity) else {
            _ = reap(pid, block: false)
            return .poweredOff
        }
        signal(g, SIGTERM, pidfd: pidfd)
        if waitForExit(g, pidfd: pidfd, timeout: terminateTimeout, proc: proc) { return .terminated }
        signal(g, SIGKILL, pidfd: pidfd)
        _ = waitForExit(g, pidfd: pidfd, timeout: .seconds(10), proc: proc)
        return .killed
    }

    /// Whether the guest still runs (same pid, same start time, not a zombie).
    public static func isRunning(_ g: GuestProcess, proc: ProcFS = ProcFS()) -> Bool { proc.isAlive(g.identity) }

    private static func signal(_ g: GuestProcess, _ sig: Int32, pidfd: Int32) {
        if pidfd >= 0 {
            _ = svirt_pidfd_send_signal(pidfd, sig)
        } else if ProcFS().isAlive(g.identity) {
            kill(g.identity.pid, sig)
        }
    }

    /// Waits until the process has exited: the pidfd polls readable (any process), else /proc shows it gone or
    /// a zombie. Reaps it when it is svirt's own child.
    static func waitForExit(_ g: GuestProcess, pidfd: Int32, timeout: Duration, proc: ProcFS) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if reap(g.identity.pid, block: false) != nil { return true }
            if pidfd >= 0 {
                if (try? UnixSocket.wait(pidfd, until: min(deadline, .now + .milliseconds(100)))) == true {
                    _ = reap(g.identity.pid, block: false)
                    return true
                }
            } else {
                if !proc.isAlive(g.identity) {
                    _ = reap(g.identity.pid, block: false)
                    return true
                }
                usleep(10_000)
            }
            if ContinuousClock.now >= deadline { return !proc.isAlive(g.identity) }
        }
    }

    /// Reaps `pid` if it is svirt's child and has exited, returning how it ended; nil while it runs or when it is
    /// not our child. With `within`, waits up to that long.
    static func reap(_ pid: Int32, block: Bool, within: Duration? = nil) -> String? {
        let deadline = within.map { ContinuousClock.now + $0 }
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, block ? 0 : WNOHANG)
            if r == pid {
                if status & 0x7f == 0 { return "exit status \((status >> 8) & 0xff)" }
                return "killed by signal \(status & 0x7f)"
            }
            if r < 0 && errno == EINTR { continue }
            if r < 0 { return nil }
            guard let d = deadline, ContinuousClock.now < d else { return nil }
            usleep(5_000)
        }
    }

    /// The log from `offset` on.
    static func logText(_ path: String, from offset: Int) -> String {
        guard let data = FileManager.default.contents(atPath: path), offset <= data.count else { return "" }
        return String(decoding: data.dropFirst(offset), as: UTF8.self)
    }
}
