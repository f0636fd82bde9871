import Foundation
import SELinux
import SVirt
import SVirtLinux
import Synchronization

/// A `LevelRegistry` shared by several hosts, on etcd v3 (through its JSON gateway).
///
/// - Each level is one key (`RegistryKeys.key(for:)`), created by a transaction that succeeds only when the key
///   is as the allocator last saw it (absent, or an expired cool-down), the fence is unchanged, and this host's
///   lease is the one it holds. Pairs are keyed by their categories, so the key's uniqueness is the dominance
///   check between pairs; other levels are reserved under the fence, which works as a lock.
/// - The taken set is cached in memory and kept current by a watch on `/svirt/v1/`, so a pick reads nothing
///   from etcd: it is one uniform draw among the free pairs of the cache, confirmed by the transaction. A
///   transaction that fails returns the current state of what it compared, and the cache catches up to the
///   newest change (the `changes` key's revision) before the next pick.
/// - Every write carries a fresh operation id. A write whose answer is lost is checked by reading the key back;
///   when etcd cannot answer, an undo is queued in the local registry and done when etcd is back, so nothing
///   stays half-reserved.
/// - When etcd cannot be reached or has no quorum, every call fails with `.registryUnavailable`, naming the
///   endpoints. Nothing falls back to the local registry.
public final class EtcdLevelRegistry: LevelRegistry, Sendable {
    public let client: EtcdClient
    public let hostID: String
    public let coolDown: Double
    /// The local registry, where releases and undos wait while etcd is unreachable.
    public let local: SQLiteRegistry?
    /// Starts this host's keeper (`svirt cluster keepalive`) when no host lease exists; nil to never start one.
    let launchKeeper: (@Sendable () throws -> Void)?

    struct Entry: Sendable {
        /// The key's `mod_revision`, 0 when it does not exist.
        var modRevision: Int64
        /// The revision at which this was learnt, to ignore older news.
        var seen: Int64
        var record: LevelRecord?
        var level: SecurityLevel?
    }

    struct State: Sendable {
        var loaded = false
        var entries: [String: Entry] = [:]
        var hosts: [String: (lease: Int64, seen: Int64, record: HostRecord?)] = [:]
        var fenceModRevision: Int64 = 0
        var fenceSeen: Int64 = 0
        var fenceLockedBy: String?
        /// The newest `changes` revision the watch (or the initial read) has delivered: the cache holds every
        /// level change up to it.
        var caughtUp: Int64 = 0
        /// The newest revision the watch delivered, to resume it.
        var watched: Int64 = 0
        var reloadNeeded = false
        var allocator: MCSAllocator?
        var allocatorDirty = true
        var lease: Int64?
        var watchTask: Task<Void, Never>?
        var watchError: String?
    }
    let state = Mutex(State())

    public init(client: EtcdClient, hostID: String, coolDown: Double, local: SQLiteRegistry?,
                launchKeeper: (@Sendable () throws -> Void)? = nil) throws {
        try Self.validateHostID(hostID)
        self.client = client
        self.hostID = hostID
        self.coolDown = coolDown
        self.local = local
        self.launchKeeper = launchKeeper
    }

    public static func validateHostID(_ id: String) throws {
        guard !id.isEmpty, id.count <= 128,
              id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw SVirtError(.configuration, "host id '\(id)' is not usable: use 1 to 128 letters, digits, '-', '_' or '.' "
                             + "(host_id in svirt.conf or --host-id)")
        }
    }

    /// Stops the watch and closes the connections. Call once, when done.
    public func shutdown() async {
        let task = state.withLock { s -> Task<Void, Never>? in
            let t = s.watchTask
            s.watchTask = nil
            return t
        }
        task?.cancel()
        await task?.value
        await client.shutdown()
    }

    // MARK: Errors

    func unavailable(_ what: String, _ failure: EtcdFailure, extra: String = "") -> SVirtError {
        SVirtError(.registryUnavailable,
                   "cannot \(what): the etcd registry at \(client.configuration.endpointList) is unreachable or has no "
                   + "quorum (\(failure)); svirt does not fall back to the local registry, so nothing was reserved"
                   + extra + ". Bring the etcd members back (or fix --registry), then retry",
                   cause: failure)
    }

    func map(_ what: String, _ failure: EtcdFailure) -> SVirtError {
        switch failure {
        case .unavailable, .ambiguous:
            return unavailable(what, failure)
        case .server(let code, let message):
            let hint: String
            switch code {
            case 7: hint = "; the etcd user lacks permission on the /svirt/ prefix: grant it readwrite with etcdctl role grant-permission --prefix"
            case 16: hint = "; check --registry-user and --registry-password-file, or the client certificate"
            default: hint = ""
            }
            return SVirtError(.registry, "cannot \(what): etcd at \(client.configuration.endpointList) answered: \(message)\(hint)",
                              cause: failure)
        }
    }

    // MARK: Cache

    /// Applies what etcd said about one key at revision `seen`. `kv` nil means the key does not exist.
    /// Returns false when the news is older than what the cache has.
    static func apply(_ s: inout State, key: String, kv: EtcdKeyValue?, seen: Int64, fromWatch: Bool,
                      keepAllocator: Bool = false) {
        if key == RegistryKeys.changes {
            if fromWatch, let kv { s.caughtUp = max(s.caughtUp, kv.modRevision) }
            return
        }
        if key == RegistryKeys.fence {
            guard seen >= s.fenceSeen else { return }
            s.fenceSeen = seen
            s.fenceModRevision = kv?.modRevision ?? 0
            s.fenceLockedBy = kv.flatMap { EtcdDecoding.fenceHolder($0.valueData) }
            s.allocatorDirty = true
            return
        }
        if key.hasPrefix(RegistryKeys.hosts) {
            let id = EtcdDecoding.hostID(fromKey: key)
            if let old = s.hosts[id], old.seen > seen { return }
            if let kv {
                s.hosts[id] = (kv.leaseID, seen, EtcdDecoding.hostRecord(kv.valueData))
            } else {
                s.hosts[id] = (0, seen, nil)
            }
            return
        }
        guard key.hasPrefix(RegistryKeys.levels) else { return }
        let old = s.entries[key]
        if let old, old.seen > seen { return }
        // The same version again (the watch echoing a write this process made and applied already).
        if let old, let kv, old.record != nil, old.modRevision == kv.modRevision {
            s.entries[key]?.seen = seen
            return
        }
        if let kv {
            // A value svirt cannot read still blocks its level: fail closed.
            let (r, level, unreadable) = EtcdDecoding.levelEntry(key: key, value: kv.valueData)
            s.entries[key] = Entry(modRevision: kv.modRevision, seen: seen, record: r, level: level)
            if keepAllocator { return }
            // A new reservation by someone else is added to the allocator as it is; anything else rebuilds it.
            if !unreadable, r.isReserved, old?.record == nil, let level, !s.allocatorDirty, var a = s.allocator {
                // Take the allocator out while changing it, so its storage is not copied.
                s.allocator = nil
                a.restore(r.reservation(level: level))
                s.allocator = a
            } else {
                s.allocatorDirty = true
            }
        } else {
            if old?.record == nil && old != nil { s.entries[key]?.seen = seen; return }
            s.entries[key] = Entry(modRevision: 0, seen: seen, record: nil, level: nil)
            if !keepAllocator { s.allocatorDirty = true }
        }
    }

    /// The level a key names, for values svirt cannot read.
    static func level(fromKey key: String) -> SecurityLevel? { EtcdDecoding.level(fromKey: key) }

    /// Applies the range results of a transaction answer, and the absence of the keys it asked for but did not get.
    func learn(_ response: EtcdTxnResponse, asked: [String]) {
        let rev = response.header?.rev ?? 0
        let kvs = response.rangeKVs
        state.withLock { s in
            for kv in kvs { Self.apply(&s, key: kv.keyString, kv: kv, seen: rev, fromWatch: false) }
            for key in asked where !kvs.contains(where: { $0.keyString == key }) {
                Self.apply(&s, key: key, kv: nil, seen: rev, fromWatch: false)
            }
        }
    }

    /// Reads everything under `/svirt/v1/` once, then keeps it current with a watch.
    func ensureLoaded() async throws {
        let (loaded, reload) = state.withLock { ($0.loaded, $0.reloadNeeded) }
        if loaded && !reload { return }
        let all: (kvs: [EtcdKeyValue], revision: Int64)
        do { all = try await client.rangePrefix(RegistryKeys.root) } catch { throw map("read the level registry", error) }
        state.withLock { s in
            s = State(lease: s.lease, watchTask: s.watchTask)
            for kv in all.kvs { Self.apply(&s, key: kv.keyString, kv: kv, seen: all.revision, fromWatch: false) }
            s.caughtUp = all.revision
            s.watched = all.revision
            s.loaded = true
            s.allocatorDirty = true
            if s.watchTask == nil {
                s.watchTask = Task { [weak self] in await self?.watchLoop() }
            }
        }
    }

    private func watchLoop() async {
        var endpoint = client.preferredEndpoint
        var failures = 0
        while !Task.isCancelled {
            let from = state.withLock { $0.watched } + 1
            do {
                try await client.watch(prefix: RegistryKeys.root, from: from, endpoint: endpoint) { message in
                    if message.canceled == true {
                        // Compacted past our revision: read everything again.
                        state.withLock { $0.reloadNeeded = true; $0.watchError = message.cancel_reason }
                        return false
                    }
                    failures = 0
                    guard let events = message.events, !events.isEmpty else { return true }
                    state.withLock { s in
                        for e in events {
                            guard let kv = e.kv else { continue }
                            let rev = kv.modRevision
                            Self.apply(&s, key: kv.keyString, kv: e.type == "DELETE" ? nil : kv, seen: rev, fromWatch: true)
                            s.watched = max(s.watched, rev)
                        }
                    }
                    return true
                }
            } catch {
                state.withLock { $0.watchError = "\(error)" }
            }
            if Task.isCancelled { return }
            if state.withLock({ $0.reloadNeeded }) {
                do { try await ensureLoaded() } catch { try? await Task.sleep(nanoseconds: 200_000_000) }
                continue
            }
            failures += 1
            endpoint = (endpoint + 1) % client.configuration.endpoints.count
            try? await Task.sleep(nanoseconds: UInt64(min(50_000_000 * failures, 500_000_000)))
        }
    }

    /// Waits until the cache holds every level change up to `revision` (a `changes` revision). After
    /// `timeout`, reads everything again.
    func catchUp(to revision: Int64, timeout: Double? = nil) async throws {
        let deadline = Date().addingTimeInterval(timeout ?? client.configuration.requestTimeout)
        while state.withLock({ $0.caughtUp }) < revision {
            if Date() > deadline {
                state.withLock { $0.reloadNeeded = true }
                try await ensureLoaded()
                return
            }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    /// Brings the cache up to the newest change: reads the `changes` key and waits for the watch to pass it.
    func refresh() async throws {
        try await ensureLoaded()
        let r: EtcdRangeResponse
        do { r = try await client.range(RegistryKeys.changes) } catch { throw map("read the level registry", error) }
        let rev = r.kvs?.first?.modRevision ?? 0
        try await catchUp(to: rev)
    }

    /// The allocator for `pool` over the cache, rebuilt when something other than a new reservation changed.
    static func allocator(_ s: inout State, pool: CategoryPool, coolDown: Double, now: Double) -> MCSAllocator {
        if !s.allocatorDirty, let a = s.allocator, a.pool == pool { return a }
        var a = MCSAllocator(pool: pool, coolDown: coolDown)
        for e in s.entries.values {
            guard let r = e.record, let level = e.level else { continue }
            if r.isReserved {
                a.restore(r.reservation(level: level))
            } else if (r.released ?? r.created) + coolDown > now {
                a.restoreCooling(CoolingLevel(level: level, releasedAt: r.released ?? r.created, owner: r.owner))
            }
        }
        s.allocator = a
        s.allocatorDirty = false
        return a
    }

    // MARK: Reading

    /// Every key under the levels prefix as the cache has it, after catching up.
    func currentEntries() async throws -> [(key: String, entry: Entry)] {
        try await refresh()
        return state.withLock { s in s.entries.filter { $0.value.record != nil }.map { ($0.key, $0.value) } }
    }

    public func reservations() async throws -> [Reservation] {
        try await currentEntries().compactMap { e -> Reservation? in
            guard let r = e.entry.record, r.isReserved, let l = e.entry.level else { return nil }
            return r.reservation(level: l)
        }.sorted { $0.level < $1.level }
    }

    public func statistics(pool: CategoryPool) async throws -> MCSStatistics {
        try await refresh()
        let now = Date().timeIntervalSince1970
        return state.withLock { s in
            // Cooling levels that have expired count as free, as for an allocation.
            s.allocatorDirty = true
            return Self.allocator(&s, pool: pool, coolDown: coolDown, now: now).statistics()
        }
    }
}
