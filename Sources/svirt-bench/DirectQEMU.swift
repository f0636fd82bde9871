import Foundation
import Glibc
import SVirt
import SVirtLinux

/// The baseline the lifecycle figures compare against: the same QEMU command line started directly with
/// posix_spawn (stdio on /dev/null), waited for until its monitor answers `qmp_capabilities`, then stopped with
/// SIGTERM and reaped.
enum DirectQEMU {
    /// The command line with the monitor socket made by QEMU itself at `qmp`, instead of the descriptor svirt
    /// hands it.
    static func withOwnMonitor(_ arguments: [String], qmp: String) -> [String] {
        var args = arguments
        if let i = args.firstIndex(of: "socket,id=charmonitor,fd=\(QEMUCommandLine.monitorDescriptor),server=on,wait=off") {
            args[i] = "socket,id=charmonitor,path=\(qmp),server=on,wait=off"
        }
        return args
    }

    /// Starts `path` with `arguments`, stdio on /dev/null, in `environment` (the caller's when nil).
    static func spawn(_ path: String, _ arguments: [String], environment: [String]? = nil) throws -> pid_t {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let rc: Int32
        if let environment {
            let env = environment.map { strdup($0) } + [nil]
            defer { for p in env { free(p) } }
            rc = posix_spawn(&pid, path, &actions, nil, argv, env)
        } else {
            rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        }
        guard rc == 0 else { throw SVirtError(.launch, "cannot run \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits for a child and returns its exit status (128 + signal when a signal ended it).
    @discardableResult
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// One round: start, wait for the monitor, SIGTERM, reap. Returns the seconds to the end and to the monitor's
    /// answer.
    static func round(_ emulator: String, _ arguments: [String], qmp: String) throws -> (total: Double, ready: Double) {
        unlink(qmp)
        let t0 = now()
        let pid = try spawn(emulator, withOwnMonitor(arguments, qmp: qmp), environment: ["PATH=/usr/bin:/bin", "LC_ALL=C"])
        let deadline = ContinuousClock.now + .seconds(30)
        var greeted = false
        while !greeted && ContinuousClock.now < deadline {
            guard let fd = try? UnixSocket.connect(path: qmp) else {
                usleep(2000)
                continue
            }
            greeted = (try? QMPClient(descriptor: fd, path: qmp, timeout: .seconds(30))) != nil
        }
        let ready = now() - t0
        kill(pid, SIGTERM)
        wait(pid)
        let total = now() - t0
        unlink(qmp)
        guard greeted else { throw SVirtError(.launch, "QEMU did not answer on its monitor within 30 s") }
        return (total, ready)
    }
}
