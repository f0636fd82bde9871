import Foundation
import SELinux
import SVirt

/// The value stored at a level's key in etcd, as JSON.
///
/// A key exists while its level is reserved or cooling down; `state` tells which. Keeping both states in the one
/// key makes a transaction's single `mod_revision` comparison confirm everything the allocator assumed about it.
struct LevelRecord: Codable, Sendable, Hashable {
    static let reserved = "reserved"
    static let cooling = "cooling"

    var level: String
    var state: String
    var owner: String
    var kind: String
    var pid: Int32?
    var start: UInt64?
    var host: String
    /// The host lease (decimal) that kept the reservation alive when it was made.
    var lease: String?
    var created: Double
    var released: Double?
    /// A fresh id per write, so a write whose answer was lost can be recognised.
    var op: String

    var isReserved: Bool { state == Self.reserved }
    var leaseID: Int64 { lease.flatMap { Int64($0) } ?? 0 }

    func encoded() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(self)) ?? Data()
    }

    static func decode(_ data: Data) -> LevelRecord? { try? JSONDecoder().decode(LevelRecord.self, from: data) }

    func reservation(level: SecurityLevel) -> Reservation {
        Reservation(level: level, owner: owner, kind: Reservation.Kind(rawValue: kind) ?? .admin,
                    process: pid.flatMap { p in start.map { ProcessIdentity(pid: p, startTime: $0) } },
                    createdAt: created, host: host)
    }
}

/// The key layout under `/svirt/v1/`.
enum RegistryKeys {
    static let root = "/svirt/v1/"
    static let levels = "/svirt/v1/levels/"
    static let hosts = "/svirt/v1/hosts/"
    /// Changed by every reservation or release of a level that is not a category pair; pair allocations compare
    /// its revision, so they are decided against an up-to-date view of those levels. Its value says whether a
    /// reservation of such a level holds it as a lock.
    static let fence = "/svirt/v1/fence"
    /// Written by every transaction that changes a level key. Its revision is the newest change, so a reader
    /// knows when its watch has caught up.
    static let changes = "/svirt/v1/changes"

    /// A two-category level is keyed by its categories only: two such levels are comparable exactly when their
    /// categories are equal, whatever their sensitivities, so the key's uniqueness is the dominance check.
    /// Other levels are keyed by their canonical text.
    static func key(for level: SecurityLevel) -> String {
        let cats = Array(level.categories)
        if cats.count == 2 { return "\(levels)pair/c\(cats[0]),c\(cats[1])" }
        return "\(levels)other/\(level)"
    }

    static func isPair(_ level: SecurityLevel) -> Bool { level.categories.count == 2 }

    static func host(_ id: String) -> String { "\(hosts)\(id)" }
}

/// The value of a host's key, which lives on the host's lease.
struct HostRecord: Codable, Sendable, Hashable {
    var host: String
    var lease: String
    var pid: Int32
    var hostname: String
    var since: Double
}

/// The fence's value.
struct FenceRecord: Codable, Sendable, Hashable {
    /// The host that holds the fence while it reserves a level that is not a pair; nil when free.
    var lockedBy: String?
    var op: String
}
