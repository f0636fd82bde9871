import SVirt

/// Where `svirt serve` listens: `ADDR:PORT`, `[IPv6]:PORT`, or a bare port (loopback).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public static let `default` = ListenAddress(host: "127.0.0.1", port: 8080)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `--listen`. Port 0 asks the kernel for a free port.
    public init(parsing text: String) throws {
        func bad(_ why: String) -> SVirtError {
            SVirtError(.configuration, "--listen '\(text)': \(why); give ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
        }
        var hostPart: Substring
        var portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("the IPv6 address has no closing ']'") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("a port must follow the IPv6 address") }
            portPart = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw bad("write an IPv6 address in brackets") }
        } else if text.allSatisfy(\.isNumber) {
            hostPart = "127.0.0.1"
            portPart = Substring(text)
        } else {
            throw bad("there is no port")
        }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw bad("the port must be a number from 0 to 65535") }
        guard !hostPart.isEmpty else { throw bad("the address is empty; use 0.0.0.0 to listen on every address") }
        guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".:-%".contains($0)) }) else {
            throw bad("the address has characters no host name or IP address has")
        }
        host = String(hostPart)
        self.port = port
    }

    /// True for 127.0.0.0/8, `::1` and `localhost`: only this host's processes can connect.
    public var isLoopback: Bool { Self.isLoopbackName(host) }

    static func isLoopbackName(_ h: String) -> Bool {
        let lower = h.lowercased()
        if lower == "localhost" || lower == "::1" || lower == "0:0:0:0:0:0:0:1" { return true }
        let parts = lower.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
