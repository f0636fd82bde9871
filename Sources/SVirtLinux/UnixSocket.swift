import Glibc
import SVirt

/// Unix stream socket calls, with deadlines instead of blocking forever.
public enum UnixSocket {
    /// Connects to the socket at `path` and returns the descriptor (CLOEXEC, blocking).
    /// The corresponding C calls are `socket(AF_UNIX, SOCK_STREAM)` and `connect`.
    /// Connects to the stream socket at `path`. With `peerContext` (the SELinux context of the process that
    /// listens, a VM's QEMU), the connecting socket is created with this process's own context at the peer's
    /// level, as libvirt does for its monitor connections: the kernel gives the server's end of the connection
    /// the listener's type with the *client's* level, and under an MLS policy QEMU may write only to a socket at
    /// its own level (with svirt's whole range, the mls policy refuses QEMU every reply).
    public static func connect(path: String, peerContext: String?) throws -> Int32 {
        guard let peerContext, let own = ProcFS().context(), let context = levelled(own, like: peerContext), context != own,
              ThreadSecurityAttribute.set("sockcreate", context) else {
            return try connect(path: path)
        }
        defer { _ = ThreadSecurityAttribute.set("sockcreate", nil) }
        return try connect(path: path)
    }

    /// `own` (user:role:type:range) with the range of `peer`; nil when either is not a context with a range.
    static func levelled(_ own: String, like peer: String) -> String? {
        let mine = own.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        let theirs = peer.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        guard mine.count == 4, theirs.count == 4, !theirs[3].isEmpty else { return nil }
        return "\(mine[0]):\(mine[1]):\(mine[2]):\(theirs[3])"
    }

    public static func connect(path: String) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw SystemCallError(call: "connect", path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError(call: "socket", path: path, errno: errno) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw SystemCallError(call: "connect", path: path, errno: e)
        }
        return fd
    }

    /// The SELinux context of the peer (`getsockopt(SO_PEERSEC)`), or nil where the kernel gives none.
    public static func peerContext(_ fd: Int32) -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        var len = socklen_t(buf.count)
        let rc = buf.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERSEC, $0.baseAddress, &len) }
        guard rc == 0, len > 0 else { return nil }
        return String(decoding: buf.prefix(Int(len)).prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Waits until `fd` is readable (or writable) or the deadline passes. Returns false on timeout.
    static func wait(_ fd: Int32, forWriting: Bool = false, until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let left = deadline - .now
            if left <= .zero { return false }
            let ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            var p = pollfd(fd: fd, events: Int16(forWriting ? POLLOUT : POLLIN), revents: 0)
            let rc = poll(&p, 1, ms)
            if rc > 0 { return true }
            if rc < 0 && errno != EINTR { throw SystemCallError(call: "poll", path: "", errno: errno) }
        }
    }

    /// Writes all of `bytes` before the deadline.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws {
        var offset = 0
        while offset < bytes.count {
            guard try wait(fd, forWriting: true, until: deadline) else {
                throw SystemCallError(call: "write", path: "", errno: ETIMEDOUT)
            }
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw SystemCallError(call: "write", path: "", errno: errno)
            }
            offset += n
        }
    }

    /// Reads what is available (at most `max` bytes) before the deadline: nil on timeout, empty at end of file.
    static func readSome(_ fd: Int32, max: Int = 65536, until deadline: ContinuousClock.Instant) throws -> [UInt8]? {
        while true {
            guard try wait(fd, until: deadline) else { return nil }
            var buf = [UInt8](repeating: 0, count: max)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { return [] }
                throw SystemCallError(call: "read", path: "", errno: errno)
            }
            return Array(buf.prefix(n))
        }
    }
}
