import Glibc

/// The user on the other end of a loopback TCP connection, from the kernel's socket tables: the client's socket is
/// the established entry whose local port is the connection's remote port and whose remote port is the server's.
/// Only established entries count: a socket its process has closed is no longer established.
enum LoopbackPeer {
    /// The uid owning the client socket of the loopback connection `clientPort` → `serverPort`, or nil when the
    /// tables do not show it (the caller then fails closed).
    static func uid(clientPort: Int, serverPort: Int, procNet: String = "/proc/net") -> UInt32? {
        for table in ["tcp", "tcp6"] {
            guard let text = readAll("\(procNet)/\(table)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                // sl local remote st tx:rx tr:when retrnsmt uid ...
                guard f.count > 7, f[3] == "01", let local = endpoint(f[1]), let remote = endpoint(f[2]),
                      local.port == clientPort, remote.port == serverPort, local.loopback, remote.loopback,
                      let uid = UInt32(f[7]) else { continue }
                return uid
            }
        }
        return nil
    }

    /// The whole of a procfs file, read until EOF: the socket tables are generated page by page, so one read of
    /// the reported size (0) or of one page would miss sockets.
    static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out.append(contentsOf: chunk[..<n])
            if out.count > 64 << 20 { return nil }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `0100007F:983F` (IPv4) or the 32-digit IPv6 form: the port, and whether the address is a loopback one
    /// (127.0.0.0/8, ::1, ::ffff:127.x.y.z).
    static func endpoint(_ field: Substring) -> (port: Int, loopback: Bool)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        // Each 32-bit word is printed as the host-order (little-endian) value of four network-order bytes.
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            guard let j = hex.index(i, offsetBy: 8, limitedBy: hex.endIndex), let v = UInt32(hex[i..<j], radix: 16) else { return nil }
            bytes += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
            i = j
        }
        switch bytes.count {
        case 4:
            return (port, bytes[0] == 127)
        case 16:
            let zeros10 = bytes[0..<10].allSatisfy { $0 == 0 }
            let v6loopback = zeros10 && bytes[10..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
            let mapped = zeros10 && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
            return (port, v6loopback || mapped)
        default:
            return nil
        }
    }
}
