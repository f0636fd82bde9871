import SELinux
import Synchronization

/// A security identifier: a context interned in an `AccessVectorCache`. Cheap to copy, hash and compare.
public struct SecurityID: Sendable, Hashable {
    public let rawValue: UInt32
}

/// A thread-safe access vector cache over one policy, like the kernel's AVC: contexts are interned as
/// `SecurityID`s, and decisions for (source, target, class) are kept in a sharded table sized for millions of
/// entries. Boolean changes make a new policy value and a new cache.
public final class AccessVectorCache: Sendable {
    public let policy: PolicyDatabase

    struct Entry {
        var key: UInt64 = 0       // source << 32 | target
        var tclass: UInt32 = 0    // 0 = empty slot
        var allowed: UInt32 = 0
        var auditAllow: UInt32 = 0
        var auditDeny: UInt32 = 0
    }

    struct ShardState {
        /// Allocated on the first insert, so an idle cache costs nothing.
        var entries: [Entry] = []
        var hits = 0
        var misses = 0
    }

    final class Shard: Sendable {
        let table = Mutex(ShardState())
    }

    struct Interned {
        var byContext: [ContextValues: UInt32] = [:]
        var contexts: [PolicyContext] = []
    }

    let shards: [Shard]
    let shardMask: Int
    let slotMask: Int
    let sids: Mutex<Interned>

    /// A cache for `policy` holding up to about `capacity` decisions (rounded up to a power of two; 24 bytes each,
    /// allocated as the cache fills). The default holds a million decisions; pass more for larger fleets.
    public init(policy: PolicyDatabase, capacity: Int = 1 << 20) {
        self.policy = policy
        let shardCount = 64
        var perShard = 1
        while perShard * shardCount < max(capacity, shardCount) { perShard <<= 1 }
        shards = (0..<shardCount).map { _ in Shard() }
        shardMask = shardCount - 1
        slotMask = perShard - 1
        sids = Mutex(Interned())
    }

    /// The SID of a resolved context, interning it on first use.
    public func sid(for context: PolicyContext) -> SecurityID {
        sids.withLock { t in
            if let v = t.byContext[context.values] { return SecurityID(rawValue: v) }
            t.contexts.append(context)
            let v = UInt32(t.contexts.count)
            t.byContext[context.values] = v
            return SecurityID(rawValue: v)
        }
    }

    /// The SID of a context; throws when the context is not valid in the policy.
    public func sid(for context: SecurityContext) throws -> SecurityID { sid(for: try policy.resolve(context)) }

    /// The context of a SID, or nil for a SID this cache did not hand out.
    public func context(for sid: SecurityID) -> PolicyContext? {
        sids.withLock { t in
            let i = Int(sid.rawValue) - 1
            return i >= 0 && i < t.contexts.count ? t.contexts[i] : nil
        }
    }

    /// Number of interned contexts.
    public var sidCount: Int { sids.withLock { $0.contexts.count } }

    /// (hits, misses) since the cache was made.
    public var statistics: (hits: Int, misses: Int) {
        var h = 0, m = 0
        for s in shards { s.table.withLock { h += $0.hits; m += $0.misses } }
        return (h, m)
    }

    /// The allowed, auditallow and auditdeny vectors for two SIDs and a class value (see
    /// `PolicyClass.value`), from the cache when present.
    public func accessVectors(source: SecurityID, target: SecurityID, classValue: Int)
        -> (allowed: AccessVector, auditAllow: AccessVector, auditDeny: AccessVector) {
        let key = UInt64(source.rawValue) << 32 | UInt64(target.rawValue)
        let cls = UInt32(truncatingIfNeeded: classValue)
        var h = key &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(cls) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        // The shards live as long as the cache; skip the reference count on this hot path.
        unowned(unsafe) let shard = shards[Int(truncatingIfNeeded: h) & shardMask]
        let slot = Int(truncatingIfNeeded: h >> 8) & slotMask
        let found: Entry? = shard.table.withLock { t in
            guard slot < t.entries.count else {
                t.misses &+= 1
                return nil
            }
            let e = t.entries[slot]
            if e.tclass == cls && e.key == key {
                t.hits &+= 1
                return e
            }
            t.misses &+= 1
            return nil
        }
        if let e = found {
            return (AccessVector(rawValue: e.allowed), AccessVector(rawValue: e.auditAllow), AccessVector(rawValue: e.auditDeny))
        }
        guard cls != 0, let s = context(for: source), let t = context(for: target) else {
            return (.none, .none, .all)
        }
        let v = policy.accessVectors(source: s, target: t, classValue: classValue)
        let size = slotMask + 1
        shard.table.withLock { tab in
            if tab.entries.isEmpty { tab.entries = [Entry](repeating: Entry(), count: size) }
            tab.entries[slot] = Entry(key: key, tclass: cls, allowed: v.allowed.rawValue, auditAllow: v.auditAllow.rawValue,
                              auditDeny: v.auditDeny.rawValue)
        }
        return v
    }

    /// True when every permission in `permissions` is allowed from `source` to `target` for the class value.
    public func allows(source: SecurityID, target: SecurityID, classValue: Int, permissions: AccessVector) -> Bool {
        accessVectors(source: source, target: target, classValue: classValue).allowed.rawValue & permissions.rawValue
            == permissions.rawValue
    }

    /// The full decision with reasons (not cached: explanations are for people, not hot paths).
    public func check(source: SecurityID, target: SecurityID, class name: String, permissions: [String]) -> AccessCheck? {
        guard let s = context(for: source), let t = context(for: target) else { return nil }
        return policy.check(source: s, target: t, class: name, permissions: permissions)
    }
}
