import Foundation
import SVirt
import SVirtLinux

/// Keeps this host's lease in the etcd registry alive, and tidies the registry: the keeper that
/// `svirt cluster keepalive` runs.
///
/// - Registers the host key (`/svirt/v1/hosts/<id>`) on a lease of `ttl` seconds, or takes over the lease an
///   earlier keeper left when it is still alive, and renews it every `ttl/3` seconds. When the lease is found
///   gone (etcd lost it while this host was cut off), it registers a new one.
/// - Puts other hosts' orphaned reservations into cool-down, adopts this host's own orphans whose process
///   still runs, releases this host's process reservations whose process is gone, does the releases queued
///   while etcd was unreachable, and deletes expired cool-downs.
/// - With `exitWhenIdle`, it revokes its lease and exits once the host has held no reservation for that long.
public final class HostKeeper: Sendable {
    public let registry: EtcdLevelRegistry
    public let ttl: Int64
    let isAlive: @Sendable (ProcessIdentity) -> Bool
    let log: @Sendable (String) -> Void

    public init(registry: EtcdLevelRegistry, ttl: Int64, isAlive: @escaping @Sendable (ProcessIdentity) -> Bool,
                log: @escaping @Sendable (String) -> Void) {
        self.registry = registry
        self.ttl = max(ttl, 2)
        self.isAlive = isAlive
        self.log = log
    }

    /// Registers the host and returns its lease.
    public func register() async throws -> Int64 {
        let client = registry.client
        let key = RegistryKeys.host(registry.hostID)
        let what = "register host '\(registry.hostID)'"
        do {
            let current = try await client.range(key)
            var lease: Int64 = 0
            if let kv = current.kvs?.first, kv.leaseID != 0, try await client.keepAlive(kv.leaseID) > 0 {
                lease = kv.leaseID
                log("took over the live lease \(String(lease, radix: 16)) of host '\(registry.hostID)'")
            } else {
                lease = try await client.grantLease(ttl: ttl)
            }
            let record = HostRecord(host: registry.hostID, lease: String(lease), pid: getpid(),
                                    hostname: ProcessInfo.processInfo.hostName, since: Date().timeIntervalSince1970)
            let value = (try? JSONEncoder().encode(record)) ?? Data()
            let expected = current.kvs?.first?.modRevision ?? 0
            let r = try await client.txn(EtcdTxnRequest(compare: [.modRevision(key, .EQUAL, expected)],
                                                        success: [.put(key, value, lease: lease)], failure: [.get(key)]))
            if r.succeeded != true {
                // Another keeper for the same host id registered first: use its lease.
                guard let kv = r.rangeKVs.first, kv.leaseID != 0 else {
                    throw SVirtError(.registry, "cannot \(what): its host key changed while registering; retry")
                }
                lease = kv.leaseID
            }
            registry.state.withLock { $0.lease = lease }
            log("host '\(registry.hostID)' holds lease \(String(lease, radix: 16)) (TTL \(ttl) s) at \(client.configuration.endpointList)")
            return lease
        } catch let e as EtcdFailure {
            throw registry.map(what, e)
        }
    }

    /// Runs until cancelled, until `keepRunning` says no (the state directory is gone), or, with
    /// `exitWhenIdle`, until the host has held no level for that many seconds.
    public func run(exitWhenIdle: Double? = nil, keepRunning: @Sendable () -> Bool = { true }) async throws {
        var lease = try await register()
        var idleSince: Double?
        var round = 0
        let period = max(Double(ttl) / 3, 0.5)
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
            if Task.isCancelled { break }
            if !keepRunning() {
                log("stopping: the state directory is gone; revoking the lease")
                await registry.client.revokeLease(lease)
                return
            }
            round += 1
            do {
                let left = try await registry.client.keepAlive(lease)
                if left == 0 {
                    log("lease \(String(lease, radix: 16)) is gone (etcd expired it); registering again")
                    registry.state.withLock { $0.lease = nil }
                    lease = try await register()
                }
            } catch {
                log("cannot renew lease \(String(lease, radix: 16)): \(error)")
                continue
            }
            await tidy(round: round)
            if let idle = exitWhenIdle {
                let holds = registry.state.withLock { s in
                    s.entries.values.contains { $0.record?.isReserved == true && $0.record?.host == registry.hostID }
                }
                let now = Date().timeIntervalSince1970
                if holds { idleSince = nil } else if let since = idleSince, now - since >= idle {
                    log("host '\(registry.hostID)' holds no level; revoking its lease and exiting")
                    await registry.client.revokeLease(lease)
                    return
                } else if idleSince == nil { idleSince = now }
            }
        }
    }

    /// One round of tidying; errors are logged and retried next round.
    public func tidy(round: Int) async {
        do {
            let reaped = try await registry.reapOrphans(isAlive: isAlive)
            for l in reaped.cooled { log("host '\(l.host)' lost its lease: \(l.level) (held by '\(l.owner)') is cooling down") }
            for l in reaped.adopted { log("adopted \(l.level) (held by '\(l.owner)', its process still runs) under the new lease") }
            for r in try await registry.reconcileProcesses(isAlive: isAlive) {
                log("released \(r.level) held by '\(r.owner)': its process \(r.process.map { "\($0)" } ?? "") is gone")
            }
            let flushed = try await registry.flushQueue()
            for d in flushed.done { log(d) }
            if round % 20 == 0 {
                let n = try await registry.purgeExpiredCooling()
                if n > 0 { log("deleted \(n) expired cool-downs") }
            }
        } catch {
            log("tidying the registry failed: \(error)")
        }
    }
}
