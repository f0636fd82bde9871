import Foundation
import SELinux
import SVirt

// The pure half of talking to etcd: what its answers mean, with no HTTP client. EtcdClient.swift and
// EtcdLevelRegistry.swift call these with the bytes they received; fuzz/EtcdFuzzer.swift compiles this file (with
// EtcdMessages.swift and LevelRecord.swift) on its own.

/// Why a request to etcd failed.
enum EtcdFailure: Error, Sendable, CustomStringConvertible {
    /// No member answered (refused, unreachable, no quorum, timed out before sending). Nothing was applied.
    case unavailable(String)
    /// The request may or may not have been applied: it was sent and then the connection, the member or the
    /// cluster failed before an answer came. Writes must be checked before they are reported either way.
    case ambiguous(String)
    /// etcd answered with an error (gRPC status code and message).
    case server(code: Int, message: String)

    var description: String {
        switch self {
        case .unavailable(let m), .ambiguous(let m): return m
        case .server(let code, let m): return "\(m) (gRPC code \(code))"
        }
    }
}

enum EtcdDecoding {
    /// The answer to a request to `path`, decoded; JSON svirt cannot read is a server error.
    static func answer<Response: Decodable>(_ data: Data, path: String,
                                            as: Response.Type = Response.self) throws(EtcdFailure) -> Response {
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw .server(code: 13, message: "etcd answered \(path) with JSON svirt cannot read: \(error)")
        }
    }

    /// The failure an answer with HTTP status `status` (not 200) stands for: the gRPC code and message of its
    /// error body, else the status.
    static func errorAnswer(_ data: Data, status: UInt) -> EtcdFailure {
        let body = try? JSONDecoder().decode(EtcdErrorBody.self, from: data)
        let message = body?.message ?? body?.error ?? "HTTP \(status)"
        return .server(code: body?.code ?? 2, message: message)
    }

    /// The token of an authenticate answer.
    static func authToken(_ data: Data) -> String? {
        try? JSONDecoder().decode(EtcdAuthResponse.self, from: data).token
    }

    /// The id of a granted lease.
    static func grantedLease(_ r: EtcdLeaseGrantResponse) throws(EtcdFailure) -> Int64 {
        if let e = r.error, !e.isEmpty { throw .server(code: 2, message: e) }
        guard let id = r.ID?.value, id != 0 else { throw .server(code: 2, message: "etcd granted no lease") }
        return id
    }

    /// Takes the next complete line (without its newline) off the front of a watch stream's `pending` bytes.
    static func nextLine(_ pending: inout [UInt8]) -> Data? {
        guard let nl = pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = Data(pending[..<nl])
        pending.removeSubrange(...nl)
        return line
    }

    /// One line of a watch stream: its result, nil for a message without one. Throws the decoder's error for a line
    /// that is not a watch message, and the server's error for an error message.
    static func watchResult(_ line: Data, decoder: JSONDecoder) throws -> EtcdWatchMessage.Body? {
        let message = try decoder.decode(EtcdWatchMessage.self, from: line)
        if let e = message.error {
            throw EtcdFailure.server(code: e.code ?? 2, message: e.message ?? e.error ?? "watch failed")
        }
        return message.result
    }

    /// The level a key names, for values svirt cannot read.
    static func level(fromKey key: String) -> SecurityLevel? {
        let rest = key.dropFirst(RegistryKeys.levels.count)
        if rest.hasPrefix("pair/") { return try? SecurityLevel(parsing: "s0:" + rest.dropFirst("pair/".count)) }
        if rest.hasPrefix("other/") { return try? SecurityLevel(parsing: String(rest.dropFirst("other/".count))) }
        return nil
    }

    /// What the value of level key `key` says: its record and level. A value svirt cannot read still blocks its
    /// level (fail closed): it stands as a reservation by "unreadable value at KEY", with the level the key names.
    static func levelEntry(key: String, value: Data) -> (record: LevelRecord, level: SecurityLevel?, unreadable: Bool) {
        let record = LevelRecord.decode(value)
        let level = record.flatMap { try? SecurityLevel(parsing: $0.level) } ?? level(fromKey: key)
        let r = record ?? LevelRecord(level: level?.description ?? key, state: LevelRecord.reserved,
                                      owner: "unreadable value at \(key)", kind: "admin", host: "?",
                                      created: 0, op: "")
        return (r, level, record == nil)
    }

    /// Who holds the fence, from its value: nil when free, "an unreadable fence value" when it cannot be read.
    static func fenceHolder(_ value: Data) -> String? {
        guard let record = try? JSONDecoder().decode(FenceRecord.self, from: value) else { return "an unreadable fence value" }
        return record.lockedBy
    }

    /// A host key's value, nil when it cannot be read.
    static func hostRecord(_ value: Data) -> HostRecord? { try? JSONDecoder().decode(HostRecord.self, from: value) }

    /// The host id of a host key.
    static func hostID(fromKey key: String) -> String { String(key.dropFirst(RegistryKeys.hosts.count)) }
}
