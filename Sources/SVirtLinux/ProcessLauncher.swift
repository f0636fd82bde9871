import CSVirt
import Glibc
import SVirt

/// Starts processes as a `LaunchDescription` says, through the C spawn (`svirt_spawn`).
public enum ProcessLauncher {
    /// The step of the spawn that failed, as the child reported it.
    public enum Step: Int32, Sendable, CaseIterable {
        case request = 1, pipe, fork, signals, setsid, execContext, socketCreateContext, listener, setgroups
        case setgid, setuid, chdir, noNewPrivileges, landlock, descriptors, closeDescriptors, exec, spawned

        /// The call the step makes, for `SystemCallError.call`.
        public var call: String {
            switch self {
            case .request: return "spawn request"
            case .pipe: return "pipe2"
            case .fork: return "fork"
            case .signals: return "sigprocmask"
            case .setsid: return "setsid"
            case .execContext: return "write attr/exec"
            case .socketCreateContext: return "write attr/sockcreate"
            case .listener: return "bind"
            case .setgroups: return "setgroups"
            case .setgid: return "setresgid"
            case .setuid: return "setresuid"
            case .chdir: return "chdir"
            case .noNewPrivileges: return "prctl(PR_SET_NO_NEW_PRIVS)"
            case .landlock: return "landlock_restrict_self"
            case .descriptors: return "dup2"
            case .closeDescriptors: return "close_range"
            case .exec: return "execve"
            case .spawned: return "record the process"
            }
        }

        /// Failures of these steps mean confinement could not be applied.
        var isConfinement: Bool {
            [.execContext, .socketCreateContext, .noNewPrivileges, .landlock].contains(self)
        }
    }

    /// Starts the process and returns its pid once it has exec'd. Nothing is waited for afterwards: the caller
    /// reaps it (`waitpid`) or leaves it to outlive svirt.
    ///
    /// `spawned`, when given, is called with the pid as soon as the child exists and before it does anything:
    /// the child executes nothing until it returns, and nothing at all when it throws (that error is rethrown) or
    /// when svirt dies before it returns. A caller that records the process there never leaves a program
    /// running that its records do not name.
    ///
    /// Throws `SVirtError` (`.confinement` when a confinement step failed, `.launch` otherwise) whose `cause`
    /// is a `SystemCallError` naming the step's call, its path and errno.
    public static func spawn(_ d: LaunchDescription, spawned: ((Int32) throws -> Void)? = nil) throws -> Int32 {
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }

        // The standard streams, opened here so that the child only duplicates descriptors.
        var mappings: [svirt_fd_mapping] = []
        let streams: [(LaunchDescription.StandardIO, Int32)] =
            [(d.standardInput, 0), (d.standardOutput, 1), (d.standardError, 2)]
        for (io, target) in streams {
            switch io {
            case .null:
                let fd = open("/dev/null", O_RDWR | O_CLOEXEC)
                guard fd >= 0 else { throw launchError(d, .descriptors, path: "/dev/null", errno: errno) }
                opened.append(fd)
                mappings.append(svirt_fd_mapping(source: fd, target: target))
            case .inherit:
                mappings.append(svirt_fd_mapping(source: target, target: target))
            case .file(let path):
                let flags = target == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND)
                // Never through a symlink: root opens this with O_CREAT for a process that may not be trusted.
                let fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0o600)
                guard fd >= 0 else { throw launchError(d, .descriptors, path: path, errno: errno) }
                opened.append(fd)
                mappings.append(svirt_fd_mapping(source: fd, target: target))
            case .descriptor(let fd):
                mappings.append(svirt_fd_mapping(source: fd, target: target))
            }
        }
        for i in d.inheritedDescriptors { mappings.append(svirt_fd_mapping(source: i.source, target: i.target)) }
        let targets = mappings.map(\.target) + d.listeningSockets.map(\.descriptor)
        if Set(targets).count != targets.count {
            throw SVirtError(.launch, "cannot start \(d.executable): two descriptors are given the same number "
                             + "in the child (\(targets.sorted())); give each listening socket and inherited "
                             + "descriptor its own number above 2")
        }

        // The Landlock ruleset, created for this spawn and closed after it.
        let ruleset = try d.landlock.map { try $0.create(abi: d.landlockABI) }

        let argv = [d.argument0 ?? d.executable] + d.arguments
        let envp = d.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        for s in argv + envp + [d.executable] where s.utf8.contains(0) {
            throw SVirtError(.launch, "cannot start \(d.executable): an argument or environment entry contains a "
                             + "NUL byte: \(s.debugDescription)")
        }
        // C copies of every string and array, alive until the spawn returns.
        let arena = CArena()
        defer { arena.free() }
        let listeners = d.listeningSockets.map {
            svirt_listener(path: arena.string($0.path), target: $0.descriptor, backlog: 16)
        }
        let groups = d.credentials?.groups ?? []
        var rq = svirt_spawn_request()
        rq.path = arena.string(d.executable)
        rq.argv = arena.stringArray(argv)
        rq.envp = arena.stringArray(envp)
        rq.cwd = d.workingDirectory.map { arena.string($0) }
        rq.procroot = arena.string(d.procRoot)
        rq.exec_context = d.execContext.map { arena.string($0.description) }
        rq.sockcreate_context = d.socketCreateContext.map { arena.string($0.description) }
        rq.listeners = arena.array(listeners)
        rq.listener_count = listeners.count
        if let c = d.credentials {
            rq.change_ids = 1
            rq.uid = c.uid
            rq.gid = c.gid
        }
        rq.groups = arena.array(groups)
        rq.group_count = groups.count
        rq.landlock_ruleset_fd = ruleset?.fd ?? -1
        rq.landlock_flags = 0
        rq.fds = arena.array(mappings)
        rq.fd_count = mappings.count
        rq.new_session = d.newSession ? 1 : 0
        let callback = spawned.map(SpawnedCallback.init)
        if let callback {
            rq.spawned = { pid, context in
                guard let context else { return EINVAL }
                let box = Unmanaged<SpawnedCallback>.fromOpaque(context).takeUnretainedValue()
                do {
                    try box.body(pid)
                    return 0
                } catch {
                    box.error = error
                    return ECANCELED
                }
            }
            rq.spawned_context = Unmanaged.passUnretained(callback).toOpaque()
        }
        var result = svirt_spawn_result()
        let rc = withExtendedLifetime(callback) { svirt_spawn(&rq, &result) }
        withExtendedLifetime(ruleset) {}
        if rc == 0 { return result.pid }
        if let error = callback?.error { throw error }
        let step = Step(rawValue: result.step) ?? .fork
        throw launchError(d, step, path: path(of: step, d), errno: result.error)
    }

    private static func path(of step: Step, _ d: LaunchDescription) -> String {
        switch step {
        case .execContext: return "\(d.procRoot)/thread-self/attr/exec"
        case .socketCreateContext: return "\(d.procRoot)/thread-self/attr/sockcreate"
        case .listener: return d.listeningSockets.map(\.path).joined(separator: ", ")
        case .chdir: return d.workingDirectory ?? ""
        case .exec: return d.executable
        default: return ""
        }
    }

    private static func launchError(_ d: LaunchDescription, _ step: Step, path: String, errno e: Int32) -> SVirtError {
        let cause = SystemCallError(call: step.call, path: path, errno: e)
        let why = String(cString: strerror(e))
        let exe = d.executable
        let message: String
        switch step {
        case .execContext:
            message = "cannot start \(exe): the exec context '\(d.execContext.map(\.description) ?? "")' could not be "
                + "written to \(path): \(why). The kernel refuses it when SELinux is not enabled or the loaded "
                + "policy does not know the context; nothing was started"
        case .socketCreateContext:
            message = "cannot start \(exe): the socket-create context '\(d.socketCreateContext.map(\.description) ?? "")' "
                + "could not be written to \(path): \(why); nothing was started"
        case .listener where e == EACCES && d.socketCreateContext != nil:
            // The socket is created in the VM's context (sockcreate): the policy refused the manager's domain a
            // socket of that domain, as it refuses running anything there.
            let context = d.socketCreateContext.map(\.description) ?? ""
            message = "cannot start \(exe): the SELinux policy refused creating its monitor socket \(path) as "
                + "\(context) (\(why)): the manager's domain may not create objects of, nor start a process in, "
                + "that domain. A static label must name a domain the policy lets svirt start VMs in (svirt_t, "
                + "svirt_tcg_t); a user domain such as unconfined_t needs virt_transition_userdomain, a boolean "
                + "some policies (Debian's) do not have. Nothing was started"
        case .listener:
            message = "cannot start \(exe): cannot listen on the unix socket \(path): \(why). "
                + "Remove a stale socket there, or shorten the path (at most 107 bytes)"
        case .setgroups, .setgid, .setuid:
            let c = d.credentials
            message = "cannot start \(exe) as uid \(c?.uid ?? 0), gid \(c?.gid ?? 0): \(step.call) failed: \(why) "
                + "(changing user needs root)"
        case .chdir:
            message = "cannot start \(exe): cannot change to the directory \(path): \(why)"
        case .noNewPrivileges:
            message = "cannot start \(exe): cannot set no_new_privs: \(why); nothing was started"
        case .landlock:
            message = "cannot start \(exe): landlock_restrict_self failed: \(why); nothing was started"
        case .exec:
            let hint = e == EACCES && d.landlock != nil
                ? " (under Landlock the ruleset must allow execute on the program and read on its libraries)" : ""
            message = "cannot start \(exe): \(why)\(hint)"
        case .descriptors where !path.isEmpty:
            message = "cannot start \(exe): cannot open \(path): \(why)"
        default:
            message = "cannot start \(exe): \(step.call) failed: \(why)"
        }
        return SVirtError(step.isConfinement ? .confinement : .launch, message, cause: cause)
    }
}

/// The caller's `spawned` closure, reached from the C callback through its context pointer.
private final class SpawnedCallback {
    let body: (Int32) throws -> Void
    var error: (any Error)?
    init(_ body: @escaping (Int32) throws -> Void) { self.body = body }
}

/// C memory for one spawn request: strings and arrays that stay put until `free()`.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    func string(_ s: String) -> UnsafePointer<CChar> {
        let bytes = Array(s.utf8)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
        p[bytes.count] = 0
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    /// A NULL-terminated array of C strings.
    func stringArray(_ strings: [String]) -> UnsafePointer<UnsafeMutablePointer<CChar>?> {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (i, s) in strings.enumerated() { p[i] = UnsafeMutablePointer(mutating: string(s)) }
        p[strings.count] = nil
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    /// A copy of `values`, or nil when empty.
    func array<T>(_ values: [T]) -> UnsafePointer<T>? {
        guard !values.isEmpty else { return nil }
        let p = UnsafeMutablePointer<T>.allocate(capacity: values.count)
        p.initialize(from: values, count: values.count)
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func free() {
        for b in blocks { b.deallocate() }
        blocks.removeAll()
    }
}
