import CSVirt
import Foundation
import Glibc
import SVirt
import Synchronization

/// A QEMU system emulator binary and what it supports, found and asked once per process.
public struct QEMUEmulator: Sendable, Hashable {
    /// The path as found (on PATH or given).
    public let path: String
    /// Whether `-sandbox on` is accepted (QEMU built with seccomp).
    public let supportsSandbox: Bool
    /// The firmware and data directories QEMU searches, from `-L help`, in its order (existing ones only).
    public let dataDirectories: [String]

    /// The emulator for `arch` (`x86_64`, `aarch64`, `i686`...), or the explicit `path` (a domain's
    /// `<emulator>`). A bare name is looked up on `searchPath` (`$PATH` by default).
    public static func find(arch: String = QEMUEmulator.hostArchitecture(), path explicit: String? = nil,
                            searchPath: String? = nil, allowed: [String] = [], user: GuestUser? = nil) throws -> QEMUEmulator {
        try probe(try locate(arch: arch, path: explicit, searchPath: searchPath), allowed: allowed, user: user)
    }

    /// A known emulator (from an earlier probe, e.g. one kept in the registry).
    public init(path: String, supportsSandbox: Bool, dataDirectories: [String]) {
        self.path = path
        self.supportsSandbox = supportsSandbox
        self.dataDirectories = dataDirectories
    }

    /// The path `find` would probe, without running it.
    public static func locate(arch: String = QEMUEmulator.hostArchitecture(), path explicit: String? = nil,
                              searchPath: String? = nil) throws -> String {
        let name = explicit ?? "qemu-system-\(qemuArchitecture(arch))"
        let found: String
        if name.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: name) else {
                throw SVirtError(.notFound, "the emulator '\(name)' does not exist or is not executable; "
                                 + "fix <emulator> in the domain XML or install QEMU")
            }
            found = name
        } else {
            let dirs = (searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
                .split(separator: ":").map(String.init)
            guard let hit = dirs.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw SVirtError(.notFound, "\(name) is not on PATH (\(dirs.joined(separator: ":"))); install QEMU "
                                 + "(Debian: apt-get install qemu-system-x86) or give <emulator> in the domain XML")
            }
            found = hit
        }
        return found
    }

    /// QEMU's name for an architecture.
    public static func qemuArchitecture(_ arch: String) -> String {
        switch arch {
        case "i386", "i486", "i586", "i686": return "i386"
        case "amd64": return "x86_64"
        case "arm64": return "aarch64"
        case "armv7l", "armv6l": return "arm"
        case "ppc64el": return "ppc64"
        default: return arch
        }
    }

    /// The host's architecture (`uname -m`).
    public static func hostArchitecture() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static let probes = Mutex<[String: QEMUEmulator]>([:])

    /// Asks the binary what it supports: one run of `-sandbox on -L help` (QEMU rejects an option it was built
    /// without before it lists its data directories), and `-L help` alone when that fails. Cached per
    /// binary identity (device, inode, size, modification time) unless `cached` is false.
    /// The emulator must pass `refusal(_:allowed:)` (a root-owned system QEMU, or one svirt.conf allows), and it
    /// runs as the guest user (`probeSandbox`), never as root.
    public static func probe(_ given: String, cached: Bool = true, allowed: [String] = [], user: GuestUser? = nil) throws -> QEMUEmulator {
        let path = try checkAllowed(given, allowed: allowed)
        let key = try identity(of: path)
        if cached, let hit = probes.withLock({ $0[key] }) { return hit }
        var sandbox = true
        var run = try runCapturing(path, ["-sandbox", "on", "-L", "help"], user: user)
        if run.status != 0 {
            sandbox = false
            run = try runCapturing(path, ["-L", "help"], user: user)
        }
        guard run.status == 0 else {
            throw SVirtError(.launch, "\(path) -L help failed (exit \(run.status)): \(run.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let dirs = run.output.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("/") }
            .map { ($0 as NSString).standardizingPath }
            .filter { var isDir: ObjCBool = false; return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && isDir.boolValue }
        let e = QEMUEmulator(path: path, supportsSandbox: sandbox, dataDirectories: dirs)
        probes.withLock { $0[key] = e }
        return e
    }

    /// What identifies a binary for caching what it supports: its path, device, inode, size and modification time.
    public static func identity(of path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw SystemCallError(call: "stat", path: path, errno: errno) }
        return "\(path)|\(st.st_dev)|\(st.st_ino)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    /// Runs a program with no input and returns its exit status and its stdout and stderr together.
    static func runCapturing(_ path: String, _ args: [String], user: GuestUser? = nil) throws -> (status: Int32, output: String) {
        var d = LaunchDescription(executable: path, arguments: args, environment: LaunchDescription.minimalEnvironment)
        try probeSandbox(&d, user: user)
        var fds: [Int32] = [0, 0]
        guard svirt_pipe_cloexec(&fds) == 0 else { throw SystemCallError(call: "pipe2", path: path, errno: errno) }
        d.standardOutput = .descriptor(fds[1])
        d.standardError = .descriptor(fds[1])
        d.newSession = false
        let pid: Int32
        do {
            pid = try ProcessLauncher.spawn(d)
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[1])
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf.prefix(n)
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: out, as: UTF8.self))
    }
}
