import SELinux
import Synchronization

/// A `LevelRegistry` held in memory, for unit tests and for showing what labels VMs would get without
/// touching the host. Nothing survives the process.
public final class InMemoryLevelRegistry: LevelRegistry {
    private struct State {
        var reservations: [SecurityLevel: Reservation] = [:]
        var cooling: [SecurityLevel: CoolingLevel] = [:]
        var rng: SeededGenerator
    }
    private let state: Mutex<State>
    private let coolDown: Double
    private let clock: @Sendable () -> Double

    /// A registry whose random picks come from `seed`, so tests are repeatable. `clock` gives seconds since
    /// the epoch.
    public init(seed: UInt64 = 0x5eed, coolDown: Double = 3600,
                clock: @escaping @Sendable () -> Double = { 0 }) {
        state = Mutex(State(rng: SeededGenerator(seed: seed)))
        self.coolDown = coolDown
        self.clock = clock
    }

    private func allocator(_ s: State, pool: CategoryPool) -> MCSAllocator {
        var a = MCSAllocator(pool: pool, coolDown: coolDown)
        for r in s.reservations.values { a.restore(r) }
        for c in s.cooling.values { a.restoreCooling(c) }
        return a
    }

    public func allocateLevel(owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                              pool: CategoryPool) async throws -> SecurityLevel {
        let now = clock()
        return try state.withLock { s in
            var a = allocator(s, pool: pool)
            let level = try a.allocate(owner: owner, kind: kind, process: process, now: now, using: &s.rng)
            s.reservations = a.reservations
            s.cooling = Dictionary(uniqueKeysWithValues: a.cooling.map { ($0.level, $0) })
            return level
        }
    }

    public func reserveLevel(_ level: SecurityLevel, owner: String, kind: Reservation.Kind,
                             process: ProcessIdentity?) async throws {
        let now = clock()
        try state.withLock { s in
            try MCSAllocator.checkReservable(level, against: s.reservations.values)
            s.reservations[level] = Reservation(level: level, owner: owner, kind: kind, process: process, createdAt: now)
            s.cooling = s.cooling.filter { !level.dominates($0.key) }
        }
    }

    public func releaseLevel(_ level: SecurityLevel) async throws -> Reservation {
        let now = clock()
        return try state.withLock { s in
            guard let r = s.reservations.removeValue(forKey: level) else {
                throw SVirtError(.notReserved, "'\(level)' is not reserved; 'svirt mcs list' shows the reserved levels")
            }
            s.cooling[level] = CoolingLevel(level: level, releasedAt: now, owner: r.owner)
            return r
        }
    }

    public func reservations() async throws -> [Reservation] {
        state.withLock { Array($0.reservations.values) }.sorted { $0.level < $1.level }
    }

    public func statistics(pool: CategoryPool) async throws -> MCSStatistics {
        let now = clock()
        return state.withLock { s in
            var a = allocator(s, pool: pool)
            for c in a.expiredCooling(now: now) { s.cooling[c.level] = nil }
            a = allocator(s, pool: pool)
            return a.statistics()
        }
    }

}

/// A small, fast, seedable generator (SplitMix64) for repeatable tests and demos. Not for production picks,
/// which use the system generator.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
