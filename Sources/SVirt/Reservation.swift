import SELinux

/// A running process, named by pid and the start time the kernel gives it (field 22 of `/proc/PID/stat`, in
/// clock ticks since boot). The pair survives pid reuse: a new process with the same pid has another start time.
public struct ProcessIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    public var description: String { "pid \(pid) (start \(startTime))" }
}

/// A reserved level and who holds it.
public struct Reservation: Sendable, Hashable {
    /// What holds a reservation, which decides when it is released.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Held by a VM (dynamic or static); released when the VM stops.
        case domain
        /// Held for a process; released when the process is gone.
        case process
        /// Held by an administrator (`svirt mcs allocate|reserve`); released only by `svirt mcs release`.
        case admin
    }

    /// The canonical level; the registry's key.
    public var level: SecurityLevel
    public var owner: String
    public var kind: Kind
    /// For `.process` (and running `.domain`) reservations, the process that holds it.
    public var process: ProcessIdentity?
    /// Seconds since the Unix epoch.
    public var createdAt: Double
    /// Which host holds it, for registries shared by several hosts.
    public var host: String?

    public init(level: SecurityLevel, owner: String, kind: Kind, process: ProcessIdentity? = nil,
                createdAt: Double, host: String? = nil) {
        self.level = level
        self.owner = owner
        self.kind = kind
        self.process = process
        self.createdAt = createdAt
        self.host = host
    }
}

/// A released level that is still cooling down: pairs that dominate it are not handed out again until the
/// rest of the pool is used up or the cool-down has passed, because files carrying it may survive.
public struct CoolingLevel: Sendable, Hashable {
    public var level: SecurityLevel
    public var releasedAt: Double
    public var owner: String

    public init(level: SecurityLevel, releasedAt: Double, owner: String) {
        self.level = level
        self.releasedAt = releasedAt
        self.owner = owner
    }
}

/// Counts that describe a pool's occupancy.
public struct MCSStatistics: Sendable, Hashable, Codable {
    public var pool: String
    public var categories: Int
    public var pairs: Int
    public var reservations: Int
    /// Pairs that cannot be handed out because a reservation holds them or conflicts with them.
    public var blockedPairs: Int
    /// Pairs held back because a released level they dominate is cooling down.
    public var coolingPairs: Int
    public var freePairs: Int
    public var coolDownSeconds: Double
}
