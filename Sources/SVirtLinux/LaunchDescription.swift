import SELinux

/// Everything about how a process is started: program, arguments, environment, and the confinement the child
/// applies to itself between fork and exec (SELinux exec and socket-create contexts, credentials,
/// no_new_privs, a Landlock ruleset). Per-thread kernel state is set only in the child by the C spawn, never by
/// a Swift call in svirt's own threads. `ProcessLauncher.spawn(_:)` runs it.
public struct LaunchDescription: Sendable, Hashable {
    /// Where a standard stream of the child goes.
    public enum StandardIO: Sendable, Hashable {
        /// `/dev/null`.
        case null
        /// The same descriptor as svirt's own.
        case inherit
        /// A file, created with mode 0600 if needed; output streams append.
        case file(String)
        /// A descriptor open in svirt (not closed by the spawn).
        case descriptor(Int32)
    }

    /// The user, group and supplementary groups the child switches to (as libvirt's DAC driver does).
    public struct Credentials: Sendable, Hashable {
        public var uid: UInt32
        public var gid: UInt32
        public var groups: [UInt32]
        public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
            self.uid = uid
            self.gid = gid
            self.groups = groups
        }
    }

    /// A listening unix socket the child creates (after setting the socket-create context, so the socket
    /// carries it) and passes to the program as descriptor `descriptor`. QEMU takes it as
    /// `-chardev socket,fd=N,server=on`.
    public struct ListeningSocket: Sendable, Hashable {
        public var path: String
        public var descriptor: Int32
        public init(path: String, descriptor: Int32) {
            self.path = path
            self.descriptor = descriptor
        }
    }

    /// A descriptor of svirt's passed to the child as `target`.
    public struct InheritedDescriptor: Sendable, Hashable {
        public var source: Int32
        public var target: Int32
        public init(source: Int32, target: Int32) {
            self.source = source
            self.target = target
        }
    }

    public var executable: String
    /// The arguments after `argv[0]`.
    public var arguments: [String]
    /// `argv[0]`; the executable's path when nil.
    public var argument0: String?
    /// Exactly the child's environment (nothing is inherited).
    public var environment: [String: String]
    /// The child's working directory; svirt's own when nil.
    public var workingDirectory: String?
    /// Written to `/proc/thread-self/attr/exec`: the SELinux context the program runs in.
    public var execContext: SecurityContext?
    /// Written to `/proc/thread-self/attr/sockcreate`: the context of the listening sockets the child creates.
    public var socketCreateContext: SecurityContext?
    public var credentials: Credentials?
    /// Applied with `landlock_restrict_self` after no_new_privs.
    public var landlock: Landlock.Ruleset?
    /// The ABI the ruleset is created for; the running kernel's when nil.
    public var landlockABI: Landlock.ABI?
    public var standardInput: StandardIO
    public var standardOutput: StandardIO
    public var standardError: StandardIO
    public var listeningSockets: [ListeningSocket]
    public var inheritedDescriptors: [InheritedDescriptor]
    /// Start a new session (setsid), so the child has no controlling terminal and outlives svirt's session.
    public var newSession: Bool
    /// Where procfs is; tests point it at a fake tree to see what the child writes.
    public var procRoot: String

    public init(executable: String, arguments: [String] = [], environment: [String: String] = [:]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        standardInput = .null
        standardOutput = .null
        standardError = .null
        listeningSockets = []
        inheritedDescriptors = []
        newSession = true
        procRoot = "/proc"
    }

    /// The minimal environment libvirt gives QEMU: a fixed PATH and the C locale, so no locale files are read.
    public static let minimalEnvironment: [String: String] = [
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C",
    ]

    /// The command line, shell-quoted, for `--verbose` and logs.
    public var commandLine: String {
        ([argument0 ?? executable] + arguments).map(Self.shellQuoted).joined(separator: " ")
    }

    static func shellQuoted(_ s: String) -> String {
        let safe = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:@%+".contains($0) }
        if safe && !s.isEmpty { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
