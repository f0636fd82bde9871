// libFuzzer target for etcd's answers: the JSON of range, txn, watch, lease, auth and error answers, the watch
// stream's lines, and what the registry reads from the key-value pairs (level records, the fence, host records).
// The first byte picks the answer; the rest is its body. Built by scripts/fuzz-all with EtcdMessages.swift,
// LevelRecord.swift and EtcdDecoding.swift; never part of `swift build`. Every input must give a thrown error or a
// value, never a trap.
import Foundation
import SELinux
import SVirt

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant: \(message())") }
}

/// Reads one pair as the registry's cache does.
func interpret(_ kv: EtcdKeyValue) {
    let key = kv.keyString
    _ = kv.modRevision + kv.createRevision &+ kv.leaseID
    if key.hasPrefix(RegistryKeys.hosts) {
        _ = EtcdDecoding.hostID(fromKey: key)
        _ = EtcdDecoding.hostRecord(kv.valueData)
    } else if key == RegistryKeys.fence {
        _ = EtcdDecoding.fenceHolder(kv.valueData)
    }
    // Every value as a level value, under its own key and under a level key.
    for k in [key, RegistryKeys.levels + "pair/c1,c2"] {
        let (r, level, unreadable) = EtcdDecoding.levelEntry(key: k, value: kv.valueData)
        if unreadable { check(r.isReserved, "an unreadable value at \(k) does not block its level") }
        if let level { _ = r.reservation(level: level); _ = RegistryKeys.key(for: level) }
        _ = r.leaseID
    }
    levelRecord(kv.valueData)
}

/// A level record that reads encodes and reads back to itself.
func levelRecord(_ data: Data) {
    guard let r = LevelRecord.decode(data) else { return }
    let back = LevelRecord.decode(r.encoded())
    check(back == r, "level record \(r) does not read back from its encoding: \(back as Any)")
    if let level = try? SecurityLevel(parsing: r.level) {
        let key = RegistryKeys.key(for: level)
        let fromKey = EtcdDecoding.level(fromKey: key)
        if RegistryKeys.isPair(level) {
            check(fromKey?.categories == level.categories, "pair key \(key) names \(fromKey as Any), not \(level)")
        } else {
            check(fromKey == level, "key \(key) names \(fromKey as Any), not \(level)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func etcdFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = Data(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 9 {
    case 0:
        if let r = try? EtcdDecoding.answer(body, path: "/v3/kv/range", as: EtcdRangeResponse.self) {
            _ = r.header?.rev
            for kv in r.kvs ?? [] { interpret(kv) }
        }
    case 1:
        if let r = try? EtcdDecoding.answer(body, path: "/v3/kv/txn", as: EtcdTxnResponse.self) {
            _ = r.succeeded
            for kv in r.rangeKVs { interpret(kv) }
        }
    case 2:
        // A watch stream: lines of watch messages.
        var pending = Array(body)
        let decoder = JSONDecoder()
        while let line = EtcdDecoding.nextLine(&pending) {
            check(!line.contains(UInt8(ascii: "\n")), "a watch line holds a newline")
            if line.isEmpty { continue }
            guard let result = try? EtcdDecoding.watchResult(line, decoder: decoder) else { continue }
            _ = result.header?.rev
            _ = result.compact_revision?.value
            for e in result.events ?? [] { if let kv = e.kv { interpret(kv) } }
        }
        check(!pending.contains(UInt8(ascii: "\n")), "a newline left in the pending bytes")
    case 3:
        if let r = try? EtcdDecoding.answer(body, path: "/v3/lease/grant", as: EtcdLeaseGrantResponse.self) {
            if let id = try? EtcdDecoding.grantedLease(r) { check(id != 0, "lease id 0 granted") }
        }
    case 4:
        if let r = try? EtcdDecoding.answer(body, path: "/v3/lease/keepalive", as: EtcdKeepAliveResult.self) {
            _ = r.result?.TTL?.value
        }
    case 5:
        _ = EtcdDecoding.authToken(body)
    case 6:
        let f = EtcdDecoding.errorAnswer(body, status: 503)
        _ = f.description
    case 7:
        levelRecord(body)
        _ = EtcdDecoding.fenceHolder(body)
        _ = EtcdDecoding.hostRecord(body)
    default:
        let key = String(decoding: body, as: UTF8.self)
        _ = EtcdDecoding.level(fromKey: key)
        _ = EtcdDecoding.levelEntry(key: key, value: Data())
        _ = prefixEnd(key)
    }
    return 0
}
