import SELinux

/// Hands out unique MCS category pairs and checks reservations for dominance.
///
/// - A pair is drawn uniformly among the free pairs with one random number, whatever the occupancy
///   (`RankBitmap.selectFree`). A full pool throws `SVirtError.exhausted` with the counts.
/// - Reservations are keyed by canonical level. A level that equals, dominates or is dominated by a reserved
///   level is refused, naming the holder. Pool pairs that conflict with a reservation are blocked.
/// - A released level cools down: pairs that dominate it stay blocked until `coolDown` seconds pass, or until
///   nothing else is free; then the oldest cooling pair goes first.
///
/// This is a value type with no I/O. The registries build one from their stored rows, inside their own
/// transaction, and store what it decides.
public struct MCSAllocator: Sendable {
    public let pool: CategoryPool
    public var coolDown: Double

    private var blocked: RankBitmap
    /// For each pair rank, how many reservations conflict with it.
    private var blockers: [UInt32]
    /// How many ranks have at least one blocker.
    private var blockedByReservations = 0
    /// Cooling pairs by rank, with the time they were released.
    private var coolingSince: [Int: Double] = [:]
    private var coolingLevels: [SecurityLevel: CoolingLevel] = [:]
    /// Reservations of pool pairs, by rank (hashing an integer, not a level, on the allocation path), and every
    /// other reservation (static levels, single categories, ranges) by level.
    private var pairReservations: [Int: Reservation] = [:]
    private var otherReservations: [SecurityLevel: Reservation] = [:]

    /// Every reservation, by level (built on each call: registries read it once per transaction).
    public var reservations: [SecurityLevel: Reservation] {
        var all = otherReservations
        all.reserveCapacity(pairReservations.count + otherReservations.count)
        for r in pairReservations.values { all[r.level] = r }
        return all
    }

    /// How many levels are reserved.
    public var reservationCount: Int { pairReservations.count + otherReservations.count }

    /// The reservation of exactly `level`, if any.
    public func reservation(of level: SecurityLevel) -> Reservation? {
        if let rank = pool.rank(of: level) { return pairReservations[rank] }
        return otherReservations[level]
    }

    private var allReservations: some Sequence<Reservation> {
        [AnySequence(pairReservations.values), AnySequence(otherReservations.values)].joined()
    }

    public init(pool: CategoryPool, coolDown: Double = 3600) {
        self.pool = pool
        self.coolDown = coolDown
        self.blocked = RankBitmap(count: pool.pairCount)
        self.blockers = [UInt32](repeating: 0, count: pool.pairCount)
    }

    // MARK: Queries

    /// Pairs that can be handed out now without touching cooling pairs.
    public var freePairs: Int { blocked.freeCount }

    public var cooling: [CoolingLevel] { Array(coolingLevels.values) }

    public func statistics() -> MCSStatistics {
        MCSStatistics(pool: pool.description, categories: pool.categories.count, pairs: pool.pairCount,
                      reservations: reservationCount, blockedPairs: blockedByReservations,
                      coolingPairs: coolingSince.keys.filter { blockers[$0] == 0 }.count,
                      freePairs: blocked.freeCount, coolDownSeconds: coolDown)
    }

    // MARK: Allocation

    /// Reserves a fresh pair for `owner` and returns its level.
    public mutating func allocate(owner: String, kind: Reservation.Kind = .admin, process: ProcessIdentity? = nil,
                                  now: Double, host: String? = nil,
                                  using rng: inout some RandomNumberGenerator) throws -> SecurityLevel {
        expireCooling(now: now)
        let rank: Int
        if blocked.freeCount > 0 {
            rank = blocked.selectFree(Int.random(in: 0..<blocked.freeCount, using: &rng))
        } else if let oldest = coolingSince.filter({ blockers[$0.key] == 0 })
                    .min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key {
            rank = oldest
        } else {
            let s = statistics()
            throw SVirtError(.exhausted,
                             "no free category pair: all \(s.pairs) pairs of \(pool) are taken "
                             + "(\(s.reservations) reservations block \(s.blockedPairs) pairs); release a level with "
                             + "'svirt mcs release LEVEL', stop a VM, or widen the pool with --categories")
        }
        let level = pool.level(atRank: rank)
        consumeCooling(pairLevel: level)
        // A free rank has no reservation that equals, dominates or is dominated by its pair (any would block it),
        // so the pair is recorded straight away: one dictionary write and its own rank, no conflict lists.
        pairReservations[rank] = Reservation(level: level, owner: owner, kind: kind, process: process, createdAt: now, host: host)
        let n = blockers[rank]
        blockers[rank] = n + 1
        if n == 0 {
            blockedByReservations += 1
            blocked.block(rank)
        }
        return level
    }

    /// Reserves a given level (a static label, or a running VM found again). Refused when it equals, dominates
    /// or is dominated by a reserved level, or has no categories.
    public mutating func reserve(_ reservation: Reservation) throws {
        try Self.checkReservable(reservation.level, against: allReservations)
        consumeCooling(pairLevel: reservation.level)
        try insert(reservation)
    }

    /// Throws unless `level` can be reserved beside `existing`: it needs categories, and it must not equal,
    /// dominate or be dominated by any reserved level. The error names the holder.
    public static func checkReservable<S: Sequence<Reservation>>(_ level: SecurityLevel, against existing: S) throws {
        guard !level.categories.isEmpty else {
            throw SVirtError(.invalidLevel,
                             "cannot reserve '\(level)': a level without categories is dominated by every VM's level, "
                             + "so it isolates nothing; use a level with two categories such as \(level):c1,c2")
        }
        for other in existing where other.level.isComparable(with: level) {
            throw SVirtError(.levelConflict, conflictMessage(level, other))
        }
    }

    /// Throws unless reserving `level` leaves the pool usable. A level that dominates every pair of the pool
    /// (its sensitivity at least the pool's and every pool category: `s0:c0.c1023` with the pool `s0:c0.c1023`)
    /// conflicts with every pair, so while it is held no other VM could get a level. With `force` it is
    /// accepted and the returned warning says what was overridden; `what` names the input (`the static label
    /// of 'vm1' (...)`, `'s0:c0.c1023'`) and `flag` the option that overrides.
    public static func checkLeavesPoolUsable(_ level: SecurityLevel, pool: CategoryPool, what: String,
                                             force: Bool, flag: String = "--force") throws -> String? {
        guard level.sensitivity >= pool.sensitivity, level.categories.isSuperset(of: pool.categorySet) else { return nil }
        let reason = "\(level) dominates every pair of the pool \(pool), so no other VM could start"
        if force {
            return "\(flag): reserving \(what) although \(reason) while it is held; release it (stop the VM, or "
                + "'svirt mcs release \(level)') to let other VMs start"
        }
        throw SVirtError(.levelConflict,
                         "cannot reserve \(what): \(reason) while it is held; give it a level with two categories of the "
                         + "pool, such as s\(pool.sensitivity):c\(pool.categories[0]),c\(pool.categories[1]) (or a dynamic "
                         + "label), or pass \(flag) to reserve it anyway")
    }

    /// Records a reservation read back from a store, without checking conflicts (the store checked them when
    /// it was made). Used by registries to rebuild state.
    public mutating func restore(_ reservation: Reservation) {
        if let rank = pool.rank(of: reservation.level) {
            if pairReservations[rank] != nil { return }
            pairReservations[rank] = reservation
        } else {
            if otherReservations[reservation.level] != nil { return }
            otherReservations[reservation.level] = reservation
        }
        for rank in Self.conflictingRanks(reservation.level, in: pool) {
            let n = blockers[rank]
            blockers[rank] = n + 1
            if n == 0 {
                blockedByReservations += 1
                blocked.block(rank)
            }
        }
    }

    /// Records a cooling level read back from a store.
    public mutating func restoreCooling(_ c: CoolingLevel) {
        addCooling(c)
    }

    /// Releases a reservation. Its level starts cooling down at `now`. Returns the released reservation.
    @discardableResult
    public mutating func release(_ level: SecurityLevel, now: Double) throws -> Reservation {
        let removed = pool.rank(of: level).map { pairReservations.removeValue(forKey: $0) } ?? otherReservations.removeValue(forKey: level)
        guard let r = removed else {
            throw SVirtError(.notReserved, "'\(level)' is not reserved; 'svirt mcs list' shows the reserved levels")
        }
        for rank in Self.conflictingRanks(level, in: pool) {
            let n = blockers[rank]
            if n == 1 {
                blockers[rank] = 0
                blockedByReservations -= 1
                if coolingSince[rank] == nil { blocked.unblock(rank) }
            } else if n > 1 {
                blockers[rank] = n - 1
            }
        }
        addCooling(CoolingLevel(level: level, releasedAt: now, owner: r.owner))
        return r
    }

    /// Cooling levels whose cool-down has passed at `now`; registries delete them.
    public func expiredCooling(now: Double) -> [CoolingLevel] {
        coolingLevels.values.filter { $0.releasedAt + coolDown <= now }
    }

    // MARK: Internals

    private mutating func insert(_ r: Reservation) throws {
        restore(r)
    }

    static func conflictMessage(_ level: SecurityLevel, _ other: Reservation) -> String {
        let how: String
        switch level.relation(to: other.level) {
        case .equal: how = "it is already reserved"
        case .dominates: how = "it dominates '\(other.level)', so that VM's files would be open to it"
        case .dominatedBy: how = "it is dominated by '\(other.level)', so its files would be open to that VM"
        case .incomparable: how = "the levels overlap"
        }
        let holder = other.kind == .domain ? "VM '\(other.owner)'" : "'\(other.owner)'"
        return "cannot reserve '\(level)': \(how), held by \(holder); choose a level with categories no other VM uses"
    }

    private mutating func addCooling(_ c: CoolingLevel) {
        guard pool.sensitivity >= c.level.sensitivity else { return }
        coolingLevels[c.level] = c
        for rank in Self.dominatingRanks(c.level, in: pool) {
            if let old = coolingSince[rank], old >= c.releasedAt { continue }
            if coolingSince[rank] == nil, blockers[rank] == 0 { blocked.block(rank) }
            coolingSince[rank] = c.releasedAt
        }
    }

    private mutating func expireCooling(now: Double) {
        if coolingLevels.isEmpty { return }
        let expired = expiredCooling(now: now)
        guard !expired.isEmpty else { return }
        for c in expired { coolingLevels[c.level] = nil }
        rebuildCooling()
    }

    /// Handing out `pairLevel` consumes the cooling levels it dominates.
    private mutating func consumeCooling(pairLevel: SecurityLevel) {
        if coolingLevels.isEmpty { return }
        let consumed = coolingLevels.keys.filter { pairLevel.dominates($0) }
        guard !consumed.isEmpty else { return }
        for l in consumed { coolingLevels[l] = nil }
        rebuildCooling()
    }

    private mutating func rebuildCooling() {
        for rank in coolingSince.keys where blockers[rank] == 0 { blocked.unblock(rank) }
        coolingSince = [:]
        let levels = coolingLevels.values.sorted { $0.releasedAt < $1.releasedAt }
        coolingLevels = [:]
        for c in levels { addCooling(c) }
    }

    // The rank lists are computed before any state changes, so no closure mutates `self` while it is read
    // (which would copy the dictionaries on every write).

    /// The rank of every pool pair that equals, dominates or is dominated by `level`, each once.
    static func conflictingRanks(_ level: SecurityLevel, in pool: CategoryPool) -> [Int] {
        switch level.categories.count {
        case 2:
            // The pair itself, whichever level has the higher sensitivity.
            var it = level.categories.makeIterator()
            if let a = it.next(), let b = it.next(), let r = pool.rank(of: a, b) { return [r] }
            return []
        case 0, 1:
            return dominatingRanks(level, in: pool)
        default:
            return dominatedRanks(level, in: pool)
        }
    }

    /// Pool pairs that `level` dominates: pairs inside its categories, when its sensitivity is high enough.
    static func dominatedRanks(_ level: SecurityLevel, in pool: CategoryPool) -> [Int] {
        guard level.sensitivity >= pool.sensitivity else { return [] }
        let positions = level.categories.compactMap { pool.position(of: $0) }
        guard positions.count >= 2 else { return [] }
        var out: [Int] = []
        out.reserveCapacity(positions.count * (positions.count - 1) / 2)
        for j in 1..<positions.count {
            for i in 0..<j { out.append(CategoryPool.rank(positions[i], positions[j])) }
        }
        return out
    }

    /// Pool pairs that dominate `level`: pairs that contain all its categories (it has at most two of them).
    static func dominatingRanks(_ level: SecurityLevel, in pool: CategoryPool) -> [Int] {
        guard pool.sensitivity >= level.sensitivity else { return [] }
        let cats = Array(level.categories)
        switch cats.count {
        case 0:
            return Array(0..<pool.pairCount)
        case 1:
            guard let p = pool.position(of: cats[0]) else { return [] }
            return (0..<pool.categories.count).filter { $0 != p }.map { CategoryPool.rank(min(p, $0), max(p, $0)) }
        case 2:
            return pool.rank(of: cats[0], cats[1]).map { [$0] } ?? []
        default:
            return []
        }
    }
}
