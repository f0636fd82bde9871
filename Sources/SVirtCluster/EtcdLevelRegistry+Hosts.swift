import Foundation
import SELinux
import SVirt
import SVirtLinux

/// A level as the cluster holds it, with the host that holds it.
public struct ClusterLevel: Sendable, Hashable {
    public var level: SecurityLevel
    /// `reserved` or `cooling`.
    public var state: String
    public var owner: String
    public var kind: String
    public var process: ProcessIdentity?
    public var host: String
    public var lease: Int64
    public var createdAt: Double
    public var releasedAt: Double?
    /// For a reservation: whether its host still holds the lease it was made under. A reservation whose host
    /// lease is gone is an orphan; the next keeper that sees it puts it into cool-down.
    public var hostAlive: Bool
}

/// A host registered in the cluster.
public struct ClusterHost: Sendable, Hashable {
    public var id: String
    public var lease: Int64
    public var pid: Int32?
    public var hostname: String?
    public var since: Double?
}

extension EtcdLevelRegistry {
    // MARK: Host lease

    /// This host's lease, read from its host key. When the host has none, its keeper is started (if a launcher
    /// was given) and the call waits for the key; it fails closed when none appears.
    func hostLease(what: String) async throws -> Int64 {
        if let l = state.withLock({ $0.lease }) { return l }
        let key = RegistryKeys.host(hostID)
        let deadline = Date().addingTimeInterval(client.configuration.operationTimeout)
        var launched = false
        while true {
            let r: EtcdRangeResponse
            do { r = try await client.range(key) } catch { throw map(what, error) }
            if let kv = r.kvs?.first, kv.leaseID != 0 {
                state.withLock { s in
                    s.lease = kv.leaseID
                    Self.apply(&s, key: key, kv: kv, seen: r.header?.rev ?? kv.modRevision, fromWatch: false)
                }
                return kv.leaseID
            }
            if !launched, let launchKeeper {
                launched = true
                try launchKeeper()
            }
            if Date() > deadline || (launchKeeper == nil && !launched) {
                throw SVirtError(.registryUnavailable,
                                 "cannot \(what): this host ('\(hostID)') holds no lease in the etcd registry at "
                                 + "\(client.configuration.endpointList), so its reservations could not be kept alive; "
                                 + "run 'svirt cluster keepalive' (its keeper) and retry. Nothing was reserved")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    // MARK: Listing

    /// Every host that holds a lease.
    public func hosts() async throws -> [ClusterHost] {
        let r: (kvs: [EtcdKeyValue], revision: Int64)
        do { r = try await client.rangePrefix(RegistryKeys.hosts) } catch { throw map("list the cluster's hosts", error) }
        return r.kvs.map { kv in
            let rec = EtcdDecoding.hostRecord(kv.valueData)
            return ClusterHost(id: EtcdDecoding.hostID(fromKey: kv.keyString), lease: kv.leaseID,
                               pid: rec?.pid, hostname: rec?.hostname, since: rec?.since)
        }.sorted { $0.id < $1.id }
    }

    /// Every reserved and cooling level in the cluster, with its host.
    public func clusterLevels() async throws -> [ClusterLevel] {
        let live = Dictionary(try await hosts().map { ($0.id, $0.lease) }, uniquingKeysWith: { a, _ in a })
        return try await currentEntries().compactMap { e -> ClusterLevel? in
            guard let r = e.entry.record, let l = e.entry.level else { return nil }
            return ClusterLevel(level: l, state: r.state, owner: r.owner, kind: r.kind,
                                process: r.pid.flatMap { p in r.start.map { ProcessIdentity(pid: p, startTime: $0) } },
                                host: r.host, lease: r.leaseID, createdAt: r.created, releasedAt: r.released,
                                hostAlive: live[r.host] == r.leaseID && r.leaseID != 0)
        }.sorted { $0.level < $1.level }
    }

    // MARK: Orphans

    /// What `reapOrphans` did.
    public struct ReapReport: Sendable {
        public var cooled: [ClusterLevel] = []
        public var adopted: [ClusterLevel] = []
    }

    /// Reservations whose host lease is gone go into cool-down (not back to the free pool: files with their
    /// labels may survive on shared storage). This host's own orphans whose process still runs are adopted
    /// under its current lease instead: reconciliation on a live host follows its own processes.
    public func reapOrphans(isAlive: (ProcessIdentity) -> Bool) async throws -> ReapReport {
        var report = ReapReport()
        let levels = try await clusterLevels()
        let orphans = levels.filter { $0.state == LevelRecord.reserved && !$0.hostAlive }
        guard !orphans.isEmpty else { return report }
        let ownLease = state.withLock { $0.lease }
        let now = Self.now()
        var batch: [(ClusterLevel, Bool)] = []
        func flush() async throws {
            guard !batch.isEmpty else { return }
            var compares: [EtcdCompare] = []
            var ops: [EtcdRequestOp] = []
            var hostsChecked = Set<String>()
            var nonPair = false
            for (l, adopt) in batch {
                let key = RegistryKeys.key(for: l.level)
                guard let entry = state.withLock({ $0.entries[key] }), var rec = entry.record else { continue }
                compares.append(.modRevision(key, .EQUAL, entry.modRevision))
                let hk = "\(l.host)#\(l.lease)"
                if !hostsChecked.contains(hk) {
                    hostsChecked.insert(hk)
                    compares.append(.lease(RegistryKeys.host(l.host), .NOT_EQUAL, l.lease))
                }
                rec.op = UUID().uuidString
                if adopt, let ownLease {
                    rec.lease = String(ownLease)
                    if !hostsChecked.contains("self") {
                        hostsChecked.insert("self")
                        compares.append(.lease(RegistryKeys.host(hostID), .EQUAL, ownLease))
                    }
                } else {
                    rec.state = LevelRecord.cooling
                    rec.released = now
                    if !RegistryKeys.isPair(l.level) { nonPair = true }
                }
                ops.append(.put(key, rec.encoded()))
            }
            if nonPair {
                let fence = state.withLock { $0.fenceLockedBy == nil ? $0.fenceModRevision : -1 }
                compares.append(.modRevision(RegistryKeys.fence, .EQUAL, fence))
                ops.append(.put(RegistryKeys.fence, (try? JSONEncoder().encode(FenceRecord(lockedBy: nil, op: UUID().uuidString))) ?? Data()))
            }
            ops.append(.put(RegistryKeys.changes, Data(hostID.utf8)))
            let chunk = batch
            batch = []
            let r: EtcdTxnResponse
            do { r = try await client.txn(EtcdTxnRequest(compare: compares, success: ops, failure: [])) } catch {
                throw map("put orphaned levels into cool-down", error)
            }
            if r.succeeded == true {
                for (l, adopt) in chunk { if adopt { report.adopted.append(l) } else { report.cooled.append(l) } }
            }
        }
        for o in orphans {
            let own = o.host == hostID
            let adopt = own && ownLease != nil && o.process.map(isAlive) == true
            batch.append((o, adopt))
            if batch.count >= 50 { try await flush() }
        }
        try await flush()
        return report
    }

    /// Releases this host's `.process` reservations whose process is gone (a dead pid, or a pid reused by
    /// another process): the same rule the local registry applies, for the levels this host holds in etcd.
    public func reconcileProcesses(isAlive: (ProcessIdentity) -> Bool) async throws -> [Reservation] {
        var released: [Reservation] = []
        for l in try await clusterLevels() where l.host == hostID && l.state == LevelRecord.reserved
            && l.kind == Reservation.Kind.process.rawValue {
            guard let p = l.process, !isAlive(p) else { continue }
            do {
                released.append(try await release(l.level, onlyIfHeldBy: hostID))
            } catch let e as SVirtError where e.code == .notReserved {
                continue
            }
        }
        return released
    }

    /// Deletes cooling levels whose cool-down has passed. Returns how many.
    @discardableResult
    public func purgeExpiredCooling() async throws -> Int {
        let now = Self.now()
        let expired = try await currentEntries().filter { e in
            guard let r = e.entry.record, !r.isReserved else { return false }
            return (r.released ?? r.created) + coolDown <= now
        }
        var done = 0
        var i = 0
        while i < expired.count {
            let chunk = expired[i..<min(i + 60, expired.count)]
            i += 60
            let txn = EtcdTxnRequest(compare: chunk.map { .modRevision($0.key, .EQUAL, $0.entry.modRevision) },
                                     success: chunk.map { .delete($0.key) } + [.put(RegistryKeys.changes, Data(hostID.utf8))],
                                     failure: [])
            do {
                if try await client.txn(txn).succeeded == true { done += chunk.count }
            } catch { throw map("delete expired cool-downs", error) }
        }
        return done
    }

    // MARK: Queue

    /// What `flushQueue` did.
    public struct FlushReport: Sendable {
        public var done: [String] = []
        public var remaining = 0
    }

    /// Does the changes queued in the local registry while etcd was unreachable: releases of levels this host
    /// still holds, and undos of writes whose answer was lost. Stops at the first that cannot reach etcd.
    @discardableResult
    public func flushQueue() async throws -> FlushReport {
        var report = FlushReport()
        guard let local else { return report }
        let ops = try local.remoteOperations()
        for (i, op) in ops.enumerated() {
            do {
                switch op.action {
                case .release:
                    guard let text = op.level, let level = try? SecurityLevel(parsing: text) else {
                        try local.finishRemoteOperation(op, note: "dropped a queued release with an unreadable level")
                        continue
                    }
                    do {
                        try await release(level, onlyIfHeldBy: op.host)
                        try local.finishRemoteOperation(op, note: "released \(level) (queued while etcd was unreachable)")
                        report.done.append("released \(level)")
                    } catch let e as SVirtError where e.code == .notReserved {
                        try local.finishRemoteOperation(op, note: "queued release of \(level): no longer held by this host")
                    }
                case .undo:
                    guard let value = op.value else {
                        try local.finishRemoteOperation(op, note: "dropped an undo without a value")
                        continue
                    }
                    var rec = LevelRecord.decode(value)
                    rec?.state = LevelRecord.cooling
                    rec?.released = Self.now()
                    rec?.op = UUID().uuidString
                    var ops: [EtcdRequestOp] = [.put(op.key, rec?.encoded() ?? Data()), .put(RegistryKeys.changes, Data(hostID.utf8))]
                    if rec == nil { ops[0] = .delete(op.key) }
                    let r = try await client.txn(EtcdTxnRequest(compare: [.value(op.key, equals: value)], success: ops, failure: []))
                    let note = r.succeeded == true
                        ? "undid a write to \(op.key) whose answer was lost; the level is cooling down"
                        : "checked a write to \(op.key) whose answer was lost: it never landed"
                    try local.finishRemoteOperation(op, note: note)
                    report.done.append(note)
                }
            } catch let e as EtcdFailure {
                try? local.noteRemoteFailure(op, error: e.description)
                report.remaining = ops.count - i
                return report
            } catch let e as SVirtError where e.code == .registryUnavailable {
                try? local.noteRemoteFailure(op, error: e.message)
                report.remaining = ops.count - i
                return report
            }
        }
        return report
    }
}
