import Foundation

// The JSON shapes of etcd's v3 gateway (grpc-gateway over etcdserverpb). Bytes are base64 (`Data` with the
// coders' default strategy); 64-bit integers are JSON strings; fields at their zero value are left out.

/// A 64-bit integer that the gateway writes as a JSON string.
struct EtcdInt: Codable, Sendable, Hashable {
    var value: Int64
    init(_ value: Int64) { self.value = value }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            // Member and cluster ids are uint64 and may not fit an Int64: keep their bits.
            guard let v = Int64(s) ?? UInt64(s).map(Int64.init(bitPattern:)) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(s)' is not a 64-bit integer")
            }
            value = v
        } else {
            value = try c.decode(Int64.self)
        }
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

struct EtcdHeader: Decodable, Sendable {
    var cluster_id: EtcdInt?
    var member_id: EtcdInt?
    var revision: EtcdInt?
    var raft_term: EtcdInt?
    var rev: Int64 { revision?.value ?? 0 }
}

/// One key-value pair as etcd stores it.
public struct EtcdKeyValue: Decodable, Sendable, Hashable {
    var key: Data
    var value: Data?
    var create_revision: EtcdInt?
    var mod_revision: EtcdInt?
    var version: EtcdInt?
    var lease: EtcdInt?

    public var keyString: String { String(decoding: key, as: UTF8.self) }
    public var valueData: Data { value ?? Data() }
    public var modRevision: Int64 { mod_revision?.value ?? 0 }
    public var createRevision: Int64 { create_revision?.value ?? 0 }
    public var leaseID: Int64 { lease?.value ?? 0 }
}

struct EtcdRangeRequest: Encodable {
    var key: Data
    var range_end: Data?
    var limit: EtcdInt?
    var revision: EtcdInt?
    var serializable: Bool?
    var keys_only: Bool?
    var count_only: Bool?
}

struct EtcdRangeResponse: Decodable {
    var header: EtcdHeader?
    var kvs: [EtcdKeyValue]?
    var more: Bool?
    var count: EtcdInt?
}

struct EtcdPutRequest: Encodable {
    var key: Data
    var value: Data
    var lease: EtcdInt?
}

struct EtcdDeleteRequest: Encodable {
    var key: Data
    var range_end: Data?
}

struct EtcdCompare: Encodable {
    enum Target: String, Encodable { case VERSION, CREATE, MOD, VALUE, LEASE }
    enum Result: String, Encodable { case EQUAL, GREATER, LESS, NOT_EQUAL }
    var key: Data
    var range_end: Data?
    var target: Target
    var result: Result
    var mod_revision: EtcdInt?
    var create_revision: EtcdInt?
    var value: Data?
    var lease: EtcdInt?

    static func modRevision(_ key: String, _ r: Result, _ rev: Int64) -> EtcdCompare {
        EtcdCompare(key: Data(key.utf8), target: .MOD, result: r, mod_revision: EtcdInt(rev))
    }
    static func lease(_ key: String, _ r: Result, _ id: Int64) -> EtcdCompare {
        EtcdCompare(key: Data(key.utf8), target: .LEASE, result: r, lease: EtcdInt(id))
    }
    static func value(_ key: String, equals v: Data) -> EtcdCompare {
        EtcdCompare(key: Data(key.utf8), target: .VALUE, result: .EQUAL, value: v)
    }
}

struct EtcdRequestOp: Encodable {
    var request_range: EtcdRangeRequest?
    var request_put: EtcdPutRequest?
    var request_delete_range: EtcdDeleteRequest?

    static func put(_ key: String, _ value: Data, lease: Int64? = nil) -> EtcdRequestOp {
        EtcdRequestOp(request_put: EtcdPutRequest(key: Data(key.utf8), value: value, lease: lease.map(EtcdInt.init)))
    }
    static func get(_ key: String) -> EtcdRequestOp {
        EtcdRequestOp(request_range: EtcdRangeRequest(key: Data(key.utf8)))
    }
    static func delete(_ key: String) -> EtcdRequestOp {
        EtcdRequestOp(request_delete_range: EtcdDeleteRequest(key: Data(key.utf8)))
    }
}

struct EtcdTxnRequest: Encodable {
    var compare: [EtcdCompare]
    var success: [EtcdRequestOp]
    var failure: [EtcdRequestOp]
}

struct EtcdResponseOp: Decodable {
    var response_range: EtcdRangeResponse?
}

struct EtcdTxnResponse: Decodable {
    var header: EtcdHeader?
    var succeeded: Bool?
    var responses: [EtcdResponseOp]?

    /// Every key-value pair the range operations of the branch that ran returned.
    var rangeKVs: [EtcdKeyValue] { (responses ?? []).flatMap { $0.response_range?.kvs ?? [] } }
}

struct EtcdLeaseGrantRequest: Encodable {
    var TTL: EtcdInt
    var ID: EtcdInt?
}

struct EtcdLeaseGrantResponse: Decodable {
    var header: EtcdHeader?
    var ID: EtcdInt?
    var TTL: EtcdInt?
    var error: String?
}

struct EtcdLeaseID: Encodable {
    var ID: EtcdInt
}

struct EtcdKeepAliveResult: Decodable {
    struct Body: Decodable {
        var ID: EtcdInt?
        var TTL: EtcdInt?
    }
    var result: Body?
}

struct EtcdAuthRequest: Encodable {
    var name: String
    var password: String
}

struct EtcdAuthResponse: Decodable {
    var token: String?
}

struct EtcdWatchCreate: Encodable {
    struct Create: Encodable {
        var key: Data
        var range_end: Data?
        var start_revision: EtcdInt?
    }
    var create_request: Create
}

struct EtcdWatchMessage: Decodable {
    struct Event: Decodable {
        var type: String?
        var kv: EtcdKeyValue?
    }
    struct Body: Decodable {
        var header: EtcdHeader?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: EtcdInt?
        var cancel_reason: String?
        var events: [Event]?
    }
    var result: Body?
    var error: EtcdErrorBody?
}

struct EtcdErrorBody: Decodable {
    var error: String?
    var message: String?
    var code: Int?
}

/// The end of a prefix range: the prefix with its last byte incremented.
func prefixEnd(_ prefix: String) -> Data {
    var bytes = Array(prefix.utf8)
    while let last = bytes.last {
        if last < 0xff {
            bytes[bytes.count - 1] = last + 1
            return Data(bytes)
        }
        bytes.removeLast()
    }
    return Data([0])
}
