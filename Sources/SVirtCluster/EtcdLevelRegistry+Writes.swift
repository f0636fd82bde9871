import Foundation
import SELinux
import SVirt
import SVirtLinux

extension EtcdLevelRegistry {
    static func now() -> Double { Date().timeIntervalSince1970 }

    enum Commit {
        case committed(revision: Int64)
        case conflict(EtcdTxnResponse)
    }

    /// Runs a transaction that creates or changes `key` to `value`. A lost answer is checked by reading the key
    /// back; when that cannot be done, an undo of the write is queued locally and the call fails closed.
    func commit(_ txn: EtcdTxnRequest, key: String, value: Data, what: String, undoable: Bool) async throws -> Commit {
        do {
            let r = try await client.txn(txn)
            return r.succeeded == true ? .committed(revision: r.header?.rev ?? 0) : .conflict(r)
        } catch {
            guard case .ambiguous = error else { throw map(what, error) }
            // The answer was lost: look at the key.
            do {
                let r = try await client.range(key)
                if let kv = r.kvs?.first, kv.valueData == value { return .committed(revision: kv.modRevision) }
                // Not applied (yet). A proposal still in flight could land later; an undo makes sure it is harmless.
                if undoable { try? local?.queueRemoteOperation(action: .undo, key: key, level: nil, value: value, host: hostID) }
                return .conflict(EtcdTxnResponse(header: nil, succeeded: false, responses: []))
            } catch {
                var extra = ""
                if undoable {
                    try? local?.queueRemoteOperation(action: .undo, key: key, level: nil, value: value, host: hostID)
                    extra = "; the last request may still land, so an undo is queued in the local registry and done when etcd is back"
                }
                throw unavailable(what, error, extra: extra)
            }
        }
    }

    func record(_ level: SecurityLevel, owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                lease: Int64, now: Double) -> LevelRecord {
        LevelRecord(level: level.description, state: LevelRecord.reserved, owner: owner, kind: kind.rawValue,
                    pid: process?.pid, start: process?.startTime, host: hostID, lease: String(lease),
                    created: now, released: nil, op: UUID().uuidString)
    }

    /// Waits until the fence is free in the cache; returns its revision.
    func freeFence(deadline: Date, what: String) async throws -> Int64 {
        while true {
            let (rev, holder) = state.withLock { ($0.fenceModRevision, $0.fenceLockedBy) }
            guard let holder else { return rev }
            if Date() > deadline {
                throw SVirtError(.registry, "cannot \(what): host '\(holder)' holds the registry's fence (it is reserving a "
                                 + "level that is not a category pair) and did not free it in time; retry")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
            try await refresh()
        }
    }

    // MARK: Allocate

    public func allocateLevel(owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                              pool: CategoryPool) async throws -> SecurityLevel {
        let what = "allocate a level for '\(owner)'"
        var lease = try await hostLease(what: what)
        try await ensureLoaded()
        // Losing races to other hosts is not an outage: it gets more time than a request does.
        let deadline = Date().addingTimeInterval(max(3 * client.configuration.operationTimeout, 30))
        var rng = SystemRandomNumberGenerator()
        var attempt = 0
        var conflicts = 0
        while true {
            attempt += 1
            if Date() > deadline || attempt > 200 {
                throw SVirtError(.registry, "cannot \(what): \(attempt - 1) attempts in a row lost to other hosts' changes; retry")
            }
            _ = try await freeFence(deadline: deadline, what: what)
            let now = Self.now()
            let pick: (SecurityLevel, String, Int64, Int64) = try state.withLock { s in
                var a = Self.allocator(&s, pool: pool, coolDown: coolDown, now: now)
                // Take the allocator out while changing it, so its storage is not copied.
                s.allocator = nil
                defer { s.allocator = a }
                let level = try a.allocate(owner: owner, kind: kind, process: process, now: now, host: hostID, using: &rng)
                let key = RegistryKeys.key(for: level)
                return (level, key, s.entries[key]?.modRevision ?? 0, s.fenceModRevision)
            }
            let (level, key, expected, fence) = pick
            let value = record(level, owner: owner, kind: kind, process: process, lease: lease, now: now).encoded()
            let hostKey = RegistryKeys.host(hostID)
            let asked = [key, RegistryKeys.fence, hostKey, RegistryKeys.changes]
            let txn = EtcdTxnRequest(
                compare: [.modRevision(key, .EQUAL, expected), .modRevision(RegistryKeys.fence, .EQUAL, fence),
                          .lease(hostKey, .EQUAL, lease)],
                success: [.put(key, value), .put(RegistryKeys.changes, Data(hostID.utf8))],
                failure: asked.map(EtcdRequestOp.get))
            switch try await commit(txn, key: key, value: value, what: what, undoable: true) {
            case .committed(let rev):
                state.withLock { s in
                    Self.apply(&s, key: key, kv: EtcdKeyValue(key: Data(key.utf8), value: value,
                                                             mod_revision: EtcdInt(rev)),
                               seen: rev, fromWatch: false, keepAllocator: true)
                }
                return level
            case .conflict(let response):
                state.withLock { $0.allocatorDirty = true }
                learn(response, asked: asked)
                let (hostLeaseNow, changes) = state.withLock { s in
                    (s.hosts[hostID]?.lease, response.rangeKVs.first { $0.keyString == RegistryKeys.changes }?.modRevision)
                }
                if response.header != nil, hostLeaseNow != lease {
                    state.withLock { $0.lease = nil }
                    lease = try await hostLease(what: what)
                }
                // The answer told what the pick and the fence are now. Other keys are rarely stale, so the next
                // pick goes at once; after repeated losses, the cache first catches up with the newest change.
                conflicts += 1
                if conflicts % 3 == 0 {
                    if let changes { try await catchUp(to: changes) } else { try await refresh() }
                }
            }
        }
    }

    // MARK: Reserve

    public func reserveLevel(_ level: SecurityLevel, owner: String, kind: Reservation.Kind,
                             process: ProcessIdentity?) async throws {
        let what = "reserve '\(level)' for '\(owner)'"
        guard !level.categories.isEmpty else {
            // The allocator's check words the error.
            try MCSAllocator.checkReservable(level, against: [Reservation]())
            return
        }
        let lease = try await hostLease(what: what)
        if RegistryKeys.isPair(level) {
            try await reservePair(level, owner: owner, kind: kind, process: process, lease: lease, what: what)
        } else {
            try await reserveUnderFence(level, owner: owner, kind: kind, process: process, lease: lease, what: what)
        }
    }

    private func reservedNow() -> [Reservation] {
        state.withLock { s in
            s.entries.values.compactMap { e in
                guard let r = e.record, r.isReserved, let l = e.level else { return nil }
                return r.reservation(level: l)
            }
        }
    }

    private func reservePair(_ level: SecurityLevel, owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                             lease: Int64, what: String) async throws {
        let deadline = Date().addingTimeInterval(client.configuration.operationTimeout)
        let key = RegistryKeys.key(for: level)
        let hostKey = RegistryKeys.host(hostID)
        while true {
            try await refresh()
            let fence = try await freeFence(deadline: deadline, what: what)
            try MCSAllocator.checkReservable(level, against: reservedNow())
            let now = Self.now()
            let expected = state.withLock { $0.entries[key]?.modRevision ?? 0 }
            let value = record(level, owner: owner, kind: kind, process: process, lease: lease, now: now).encoded()
            let asked = [key, RegistryKeys.fence, hostKey, RegistryKeys.changes]
            let txn = EtcdTxnRequest(
                compare: [.modRevision(key, .EQUAL, expected), .modRevision(RegistryKeys.fence, .EQUAL, fence),
                          .lease(hostKey, .EQUAL, lease)],
                success: [.put(key, value), .put(RegistryKeys.changes, Data(hostID.utf8))],
                failure: asked.map(EtcdRequestOp.get))
            switch try await commit(txn, key: key, value: value, what: what, undoable: true) {
            case .committed(let rev):
                state.withLock { s in
                    Self.apply(&s, key: key, kv: EtcdKeyValue(key: Data(key.utf8), value: value, mod_revision: EtcdInt(rev)),
                               seen: rev, fromWatch: false)
                }
                return
            case .conflict(let response):
                learn(response, asked: asked)
                if response.header != nil, state.withLock({ $0.hosts[hostID]?.lease }) != lease {
                    throw SVirtError(.registryUnavailable, "cannot \(what): this host's lease in the etcd registry expired; "
                                     + "its keeper ('svirt cluster keepalive') must be running; nothing was reserved")
                }
                if Date() > deadline { throw SVirtError(.registry, "cannot \(what): the registry kept changing; retry") }
            }
        }
    }

    /// Levels that are not category pairs are reserved while holding the fence: with the fence held, no pair
    /// allocation can commit, so the cache is complete and the dominance check against it is exact.
    private func reserveUnderFence(_ level: SecurityLevel, owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                                   lease: Int64, what: String) async throws {
        let deadline = Date().addingTimeInterval(client.configuration.operationTimeout)
        let lockLease: Int64
        do { lockLease = try await client.grantLease(ttl: Int64(client.configuration.operationTimeout) + 5) } catch {
            throw map(what, error)
        }
        defer { Task { [client] in await client.revokeLease(lockLease) } }
        let lockValue = (try? JSONEncoder().encode(FenceRecord(lockedBy: hostID, op: UUID().uuidString))) ?? Data()
        var lockRevision: Int64 = 0
        while lockRevision == 0 {
            try await refresh()
            let fence = try await freeFence(deadline: deadline, what: what)
            let txn = EtcdTxnRequest(compare: [.modRevision(RegistryKeys.fence, .EQUAL, fence)],
                                     success: [.put(RegistryKeys.fence, lockValue, lease: lockLease)],
                                     failure: [.get(RegistryKeys.fence)])
            switch try await commit(txn, key: RegistryKeys.fence, value: lockValue, what: what, undoable: false) {
            case .committed(let rev): lockRevision = rev
            case .conflict(let r): learn(r, asked: [RegistryKeys.fence])
            }
            if lockRevision == 0, Date() > deadline { throw SVirtError(.registry, "cannot \(what): the fence stayed busy; retry") }
        }
        let unlock = (try? JSONEncoder().encode(FenceRecord(lockedBy: nil, op: UUID().uuidString))) ?? Data()
        do {
            try await refresh()
            try MCSAllocator.checkReservable(level, against: reservedNow())
            let key = RegistryKeys.key(for: level)
            let hostKey = RegistryKeys.host(hostID)
            let expected = state.withLock { $0.entries[key]?.modRevision ?? 0 }
            let value = record(level, owner: owner, kind: kind, process: process, lease: lease, now: Self.now()).encoded()
            let txn = EtcdTxnRequest(
                compare: [.modRevision(RegistryKeys.fence, .EQUAL, lockRevision), .modRevision(key, .EQUAL, expected),
                          .lease(hostKey, .EQUAL, lease)],
                success: [.put(key, value), .put(RegistryKeys.fence, unlock), .put(RegistryKeys.changes, Data(hostID.utf8))],
                failure: [.get(key), .get(RegistryKeys.fence), .get(hostKey)])
            switch try await commit(txn, key: key, value: value, what: what, undoable: true) {
            case .committed(let rev):
                state.withLock { s in
                    Self.apply(&s, key: key, kv: EtcdKeyValue(key: Data(key.utf8), value: value, mod_revision: EtcdInt(rev)),
                               seen: rev, fromWatch: false)
                }
            case .conflict(let r):
                learn(r, asked: [key, RegistryKeys.fence, hostKey])
                throw SVirtError(.registry, "cannot \(what): the registry changed while the fence was held "
                                 + "(the fence expired or this host's lease did); retry")
            }
        } catch {
            // Free the fence if it is still ours.
            _ = try? await client.txn(EtcdTxnRequest(compare: [.modRevision(RegistryKeys.fence, .EQUAL, lockRevision)],
                                                     success: [.put(RegistryKeys.fence, unlock)], failure: []))
            throw error
        }
    }

    // MARK: Release

    public func releaseLevel(_ level: SecurityLevel) async throws -> Reservation {
        try await release(level, onlyIfHeldBy: nil)
    }

    /// Releases `level`; with `onlyIfHeldBy`, only when that host holds it (returns nil otherwise).
    @discardableResult
    func release(_ level: SecurityLevel, onlyIfHeldBy host: String?) async throws -> Reservation {
        let what = "release '\(level)'"
        let key = RegistryKeys.key(for: level)
        let deadline = Date().addingTimeInterval(client.configuration.operationTimeout)
        while true {
            let r: EtcdRangeResponse
            do { r = try await client.range(key) } catch { throw map(what, error) }
            guard let kv = r.kvs?.first, var record = LevelRecord.decode(kv.valueData), record.isReserved,
                  record.level == level.description, host == nil || record.host == host else {
                throw SVirtError(.notReserved, "'\(level)' is not reserved in the etcd registry; "
                                 + "'svirt mcs list --cluster' shows the reserved levels")
            }
            let old = record
            record.state = LevelRecord.cooling
            record.released = Self.now()
            record.op = UUID().uuidString
            let value = record.encoded()
            var compares: [EtcdCompare] = [.modRevision(key, .EQUAL, kv.modRevision)]
            var ops: [EtcdRequestOp] = [.put(key, value), .put(RegistryKeys.changes, Data(hostID.utf8))]
            if !RegistryKeys.isPair(level) {
                try await refresh()
                let fence = try await freeFence(deadline: deadline, what: what)
                compares.append(.modRevision(RegistryKeys.fence, .EQUAL, fence))
                ops.append(.put(RegistryKeys.fence,
                                (try? JSONEncoder().encode(FenceRecord(lockedBy: nil, op: record.op))) ?? Data()))
            }
            let txn = EtcdTxnRequest(compare: compares, success: ops, failure: [.get(key), .get(RegistryKeys.fence)])
            switch try await commit(txn, key: key, value: value, what: what, undoable: false) {
            case .committed(let rev):
                state.withLock { s in
                    Self.apply(&s, key: key, kv: EtcdKeyValue(key: Data(key.utf8), value: value, mod_revision: EtcdInt(rev)),
                               seen: rev, fromWatch: false)
                }
                guard let l = try? SecurityLevel(parsing: old.level) else { return old.reservation(level: level) }
                return old.reservation(level: l)
            case .conflict(let response):
                learn(response, asked: [key, RegistryKeys.fence])
                if Date() > deadline { throw SVirtError(.registry, "cannot \(what): the registry kept changing; retry") }
            }
        }
    }

    /// What `releaseLevelOrQueue` did.
    public enum ReleaseOutcome: Sendable {
        case released(Reservation)
        /// etcd was unreachable; the release waits in the local registry (`flushQueue()` does it later). The
        /// level stays reserved cluster-wide until then, which is the safe side.
        case queued(reason: String)
    }

    /// Releases `level`, or, when etcd cannot be reached, queues the release in the local registry. For `stop`:
    /// labels are restored locally whatever etcd's state, and the level is given back once etcd answers again.
    public func releaseLevelOrQueue(_ level: SecurityLevel) async throws -> ReleaseOutcome {
        do {
            return .released(try await releaseLevel(level))
        } catch let e as SVirtError where e.code == .registryUnavailable {
            guard let local else { throw e }
            try local.queueRemoteOperation(action: .release, key: RegistryKeys.key(for: level), level: level.description,
                                           value: nil, host: hostID)
            return .queued(reason: e.message)
        }
    }
}
