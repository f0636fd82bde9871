import GRDB
import SVirt

/// A defined (persistent) domain: its name, UUID and the XML it was defined with.
public struct DomainRecord: Sendable, Hashable {
    public var name: String
    public var uuid: String
    public var xml: String
    /// Seconds since the epoch.
    public var definedAt: Double
    public var updatedAt: Double

    public init(name: String, uuid: String, xml: String, definedAt: Double, updatedAt: Double) {
        self.name = name
        self.uuid = uuid
        self.xml = xml
        self.definedAt = definedAt
        self.updatedAt = updatedAt
    }
}

extension SQLiteRegistry {
    /// What `define` did.
    public enum DefineOutcome: Sendable, Hashable {
        case created
        /// The domain existed (same name and UUID); its XML was replaced.
        case updated
    }

    static func domainRecord(_ row: Row) -> DomainRecord {
        DomainRecord(name: row["name"], uuid: row["uuid"], xml: row["xml"], definedAt: row["defined_at"],
                     updatedAt: row["updated_at"])
    }

    /// Defines a domain, or replaces the definition of the domain with that name and UUID (as `virsh define`).
    /// Refused when the name belongs to a domain with another UUID, or the UUID to a domain with another name.
    @discardableResult
    public func define(name: String, uuid: String, xml: String) throws -> DefineOutcome {
        let now = Self.now()
        return try transaction { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM domain WHERE name = ?", arguments: [name]) {
                let existing = Self.domainRecord(row)
                guard existing.uuid == uuid else {
                    throw SVirtError(.alreadyExists, "domain '\(name)' already exists with uuid \(existing.uuid); "
                                     + "give the new definition that <uuid>, or another <name>")
                }
                try db.execute(sql: "UPDATE domain SET xml = ?, updated_at = ? WHERE name = ?", arguments: [xml, now, name])
                return .updated
            }
            if let row = try Row.fetchOne(db, sql: "SELECT name FROM domain WHERE uuid = ?", arguments: [uuid]) {
                let other: String = row["name"]
                throw SVirtError(.alreadyExists, "domain '\(other)' already has uuid \(uuid); "
                                 + "remove the <uuid> from the XML so a fresh one is generated, or undefine '\(other)'")
            }
            try db.execute(sql: "INSERT INTO domain (name, uuid, xml, defined_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [name, uuid, xml, now, now])
            return .created
        }
    }

    /// Removes a definition and returns it; `.notFound` when there is none.
    @discardableResult
    public func undefine(name: String) throws -> DomainRecord {
        try transaction { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM domain WHERE name = ?", arguments: [name]) else {
                throw SVirtError(.notFound, "domain '\(name)' is not defined")
            }
            try db.execute(sql: "DELETE FROM domain WHERE name = ?", arguments: [name])
            return Self.domainRecord(row)
        }
    }

    /// The definition of `name`, if any.
    public func definedDomain(named name: String) throws -> DomainRecord? {
        try transaction { db in
            try Row.fetchOne(db, sql: "SELECT * FROM domain WHERE name = ?", arguments: [name]).map(Self.domainRecord)
        }
    }

    /// The definition with `uuid`, if any.
    public func definedDomain(uuid: String) throws -> DomainRecord? {
        try transaction { db in
            try Row.fetchOne(db, sql: "SELECT * FROM domain WHERE uuid = ?", arguments: [uuid.lowercased()]).map(Self.domainRecord)
        }
    }

    /// Every definition, by name.
    public func definedDomains() throws -> [DomainRecord] {
        try transaction { db in
            try Row.fetchAll(db, sql: "SELECT * FROM domain ORDER BY name").map(Self.domainRecord)
        }
    }
}
