import Foundation
import SVirt

/// Where the etcd cluster is and how to authenticate to it: the parsed form of
/// `--registry etcd://host1:2379,host2:2379` (or `registry =` in svirt.conf) with its TLS and auth options.
///
/// `etcd://` talks plain HTTP unless a CA, client certificate or key is given; `etcds://` always uses TLS.
public struct EtcdConfiguration: Sendable, Hashable {
    /// `host:port` of each member, in the order given.
    public var endpoints: [String]
    public var useTLS: Bool
    /// PEM file of the CA that signed the members' certificates; nil uses the system's trust store.
    public var caPath: String?
    /// PEM client certificate and key, for clusters that run with `--client-cert-auth`.
    public var certificatePath: String?
    public var keyPath: String?
    /// etcd user name for clusters with auth enabled; the password is read from `passwordFile`.
    public var user: String?
    public var passwordFile: String?
    /// How long one HTTP request may take before the next member is tried.
    public var requestTimeout: Double = 3
    /// How long an operation (with its retries over all members) may take before it is refused.
    public var operationTimeout: Double = 10

    public init(endpoints: [String], useTLS: Bool = false) {
        self.endpoints = endpoints
        self.useTLS = useTLS
    }

    /// The endpoints as URLs, for messages: `http://127.0.0.1:2379, http://127.0.0.1:2381`.
    public var endpointList: String {
        endpoints.map { "\(useTLS ? "https" : "http")://\($0)" }.joined(separator: ", ")
    }

    /// Parses `etcd://host1:2379,host2:2379` or `etcds://...`. `source` names where the text came from
    /// (`--registry`, or `svirt.conf:3`) for the error message.
    public static func parse(_ text: String, source: String) throws -> EtcdConfiguration {
        func bad(_ why: String) -> SVirtError {
            SVirtError(.configuration, "\(source): cannot use registry '\(text)': \(why); "
                       + "write it as etcd://host1:2379,host2:2379 (etcds:// for TLS), or 'sqlite' for the local registry")
        }
        let tls: Bool
        let rest: Substring
        if text.hasPrefix("etcd://") {
            tls = false
            rest = text.dropFirst("etcd://".count)
        } else if text.hasPrefix("etcds://") {
            tls = true
            rest = text.dropFirst("etcds://".count)
        } else {
            throw bad("unknown scheme")
        }
        var hostPart = rest
        if let slash = hostPart.firstIndex(of: "/") {
            guard hostPart[slash...].allSatisfy({ $0 == "/" }) else { throw bad("a path is not supported") }
            hostPart = hostPart[..<slash]
        }
        guard !hostPart.contains("@") else {
            throw bad("credentials in the URL would show in the process list; use --registry-user and --registry-password-file")
        }
        var endpoints: [String] = []
        for item in hostPart.split(separator: ",", omittingEmptySubsequences: false) {
            let e = item.trimmingCharacters(in: .whitespaces)
            guard !e.isEmpty else { throw bad("an endpoint is empty") }
            // host:port, [v6]:port
            let hostAndPort: (String, String)?
            if e.hasPrefix("[") {
                if let close = e.firstIndex(of: "]"), e[e.index(after: close)...].hasPrefix(":") {
                    hostAndPort = (String(e[...close]), String(e[e.index(close, offsetBy: 2)...]))
                } else { hostAndPort = nil }
            } else if let colon = e.lastIndex(of: ":") {
                hostAndPort = (String(e[..<colon]), String(e[e.index(after: colon)...]))
            } else {
                hostAndPort = nil
            }
            guard let (host, portText) = hostAndPort, !host.isEmpty else {
                throw bad("endpoint '\(e)' needs a port, as in \(e):2379")
            }
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw bad("endpoint '\(e)' has no valid port (1-65535)")
            }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || ".-[]:_".contains($0) }) else {
                throw bad("endpoint '\(e)' has a host name with characters that are not allowed")
            }
            endpoints.append("\(host):\(port)")
        }
        guard !endpoints.isEmpty else { throw bad("no endpoint") }
        return EtcdConfiguration(endpoints: endpoints, useTLS: tls)
    }
}
