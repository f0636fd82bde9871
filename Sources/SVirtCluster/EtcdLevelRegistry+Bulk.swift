import Foundation
import SELinux
import SVirt

extension EtcdLevelRegistry {
    /// Reserves `levels` fresh pairs for the owner `bulk-N` in transactions of 100 (each still checked key by
    /// key). For benchmarks that need a full registry; returns how many were reserved.
    public func benchFill(levels: Int, pool: CategoryPool) async throws -> Int {
        let lease = try await hostLease(what: "fill the registry")
        try await refresh()
        var rng = SystemRandomNumberGenerator()
        var done = 0
        while done < levels {
            let n = min(100, levels - done)
            let now = Self.now()
            let picks: [(String, Int64, Data)] = try state.withLock { s in
                var a = Self.allocator(&s, pool: pool, coolDown: coolDown, now: now)
                s.allocator = nil
                defer { s.allocator = a }
                var out: [(String, Int64, Data)] = []
                for i in 0..<n {
                    let level = try a.allocate(owner: "bulk-\(done + i)", now: now, host: hostID, using: &rng)
                    let key = RegistryKeys.key(for: level)
                    out.append((key, s.entries[key]?.modRevision ?? 0,
                                record(level, owner: "bulk-\(done + i)", kind: .admin, process: nil, lease: lease, now: now).encoded()))
                }
                return out
            }
            let txn = EtcdTxnRequest(compare: picks.map { .modRevision($0.0, .EQUAL, $0.1) },
                                     success: picks.map { .put($0.0, $0.2) } + [.put(RegistryKeys.changes, Data(hostID.utf8))],
                                     failure: [])
            let r: EtcdTxnResponse
            do { r = try await client.txn(txn) } catch { throw map("fill the registry", error) }
            if r.succeeded == true {
                let rev = r.header?.rev ?? 0
                state.withLock { s in
                    for p in picks {
                        Self.apply(&s, key: p.0, kv: EtcdKeyValue(key: Data(p.0.utf8), value: p.2, mod_revision: EtcdInt(rev)),
                                   seen: rev, fromWatch: false, keepAllocator: true)
                    }
                }
                done += n
            } else {
                state.withLock { $0.allocatorDirty = true }
                try await refresh()
            }
        }
        return done
    }
}
