import Foundation
import Glibc
import SELinux
import SVirt

/// Reads what svirt needs from `/proc`. `root` lets tests point it at a fake tree.
public struct ProcFS: Sendable {
    public var root: String

    public init(root: String = "/proc") { self.root = root }

    /// The bytes of a procfs (or sysfs) file, at most `limit`; nil when it cannot be opened or read.
    ///
    /// Not Foundation's readers: where `read` fails after `open` succeeded, as `/proc/self/attr/current` does
    /// (EINVAL) on a kernel with no LSM that labels processes, `FileManager.contents(atPath:)` loses its 4 KiB buffer
    /// on every call, and the console, which asks for this process's context on every request that builds a
    /// security driver, grew by that much per request.
    static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    static func readText(_ path: String) -> String? { read(path).map { String(decoding: $0, as: UTF8.self) } }

    /// The start time of a process (field 22 of `/proc/PID/stat`), or nil when it does not exist.
    public func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let text = Self.readText("\(root)/\(pid)/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces or ')'; fields resume after the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19, let t = UInt64(fields[19]) else { return nil }
        return t
    }

    /// The identity of a running process, or nil when it does not exist.
    public func identity(of pid: Int32) -> ProcessIdentity? {
        startTime(of: pid).map { ProcessIdentity(pid: pid, startTime: $0) }
    }

    /// The identity of this process.
    public func selfIdentity() -> ProcessIdentity? { identity(of: getpid()) }

    /// True when the process still runs (same pid and same start time) and is not a zombie.
    public func isAlive(_ p: ProcessIdentity) -> Bool {
        guard startTime(of: p.pid) == p.startTime else { return false }
        guard let text = Self.readText("\(root)/\(p.pid)/stat"),
              let close = text.lastIndex(of: ")") else { return false }
        let state = text[text.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    /// Where this process's own context is read: `thread-self/attr/current`, as libselinux's getcon reads it,
    /// else (a kernel before 3.17, a fake tree) `self/attr/current`. `self` is the thread-group leader, so a
    /// read from any other thread (a Swift concurrency worker) asks the kernel for `process getattr` on its own
    /// domain, which policies do not grant (Debian's refpolicy refuses it to virtd_t).
    public var selfContextPath: String {
        let threadSelf = "\(root)/thread-self/attr/current"
        return FileManager.default.fileExists(atPath: threadSelf) ? threadSelf : "\(root)/self/attr/current"
    }

    /// The security context of a process (`/proc/PID/attr/current`; this process's own without `pid`), or nil
    /// where the kernel has none.
    public func context(of pid: Int32? = nil) -> String? {
        let path = pid.map { "\(root)/\($0)/attr/current" } ?? selfContextPath
        guard let data = Self.read(path) else { return nil }
        let s = String(decoding: data.prefix { $0 != 0 && $0 != 0x0a }, as: UTF8.self)
        // Without an active LSM that labels processes this is empty or "unconfined" (AppArmor) — not a context.
        return s.split(separator: ":").count >= 3 ? s : nil
    }

    /// The host's boot time in seconds since the epoch (`btime` in `/proc/stat`), which svirt writes on its
    /// records of original labels.
    public func bootTime() -> Int? {
        guard let text = Self.readText("\(root)/stat") else { return nil }
        for line in text.nonEmptyTextLines() where line.hasPrefix("btime ") {
            return Int(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The host's boot id, which changes at every boot.
    public func bootID() -> String? {
        guard let data = Self.read("\(root)/sys/kernel/random/boot_id") else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
