import SELinux

/// Where level reservations live. It is the source of truth for which MCS levels are in use, across processes
/// (and, for a shared implementation, across hosts).
///
/// Every call is atomic: an implementation reads the reservations, decides with an `MCSAllocator`, and writes
/// the result in one transaction, so two callers never get the same level. The protocol is kept narrow so that
/// a networked store can implement it without touching the driver.
public protocol LevelRegistry: Sendable {
    /// Reserves a fresh pair from `pool` and returns its level.
    func allocateLevel(owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                       pool: CategoryPool) async throws -> SecurityLevel

    /// Reserves a given level. Fails with `.levelConflict` naming the holder when it equals, dominates or is
    /// dominated by a reserved level.
    func reserveLevel(_ level: SecurityLevel, owner: String, kind: Reservation.Kind,
                      process: ProcessIdentity?) async throws

    /// Releases a level; pairs that dominate it cool down. Returns the reservation it removed.
    @discardableResult
    func releaseLevel(_ level: SecurityLevel) async throws -> Reservation

    /// Every reservation, sorted by level.
    func reservations() async throws -> [Reservation]

    /// Occupancy of `pool`.
    func statistics(pool: CategoryPool) async throws -> MCSStatistics
}

extension LevelRegistry {
    /// The reservation held for `level`, if any.
    public func reservation(for level: SecurityLevel) async throws -> Reservation? {
        try await reservations().first { $0.level == level }
    }
}
