import Foundation
import GRDB
import SVirt

/// A change to a shared registry that waits locally until the shared registry answers again.
public struct RemoteOperation: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        /// Release a level this host holds (a VM stopped while etcd was unreachable).
        case release
        /// Undo a write whose answer was lost: if the key still holds exactly `value`, put it into cool-down.
        case undo
    }
    public var id: Int64
    public var queuedAt: Double
    public var action: Action
    public var key: String
    public var level: String?
    public var value: Data?
    public var host: String
    public var attempts: Int
    public var lastError: String?
}

extension SQLiteRegistry {
    /// Queues a change for the shared registry.
    public func queueRemoteOperation(action: RemoteOperation.Action, key: String, level: String?, value: Data?,
                                     host: String) throws {
        let now = Self.now()
        try transaction { db in
            try db.execute(sql: "INSERT INTO remote_outbox (queued_at, action, key, level, value, host) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [now, action.rawValue, key, level, value, host])
            try logEvent(db, domain: nil, kind: "remote-queue",
                         message: "queued \(action.rawValue) of \(level ?? key) for the shared registry")
        }
    }

    /// The queued changes, oldest first.
    public func remoteOperations() throws -> [RemoteOperation] {
        try transaction { db in
            try Row.fetchAll(db, sql: "SELECT * FROM remote_outbox ORDER BY id").compactMap { row in
                let action: String = row["action"]
                guard let a = RemoteOperation.Action(rawValue: action) else { return nil }
                return RemoteOperation(id: row["id"], queuedAt: row["queued_at"], action: a, key: row["key"],
                                       level: row["level"], value: row["value"], host: row["host"],
                                       attempts: row["attempts"], lastError: row["last_error"])
            }
        }
    }

    /// Removes a queued change that was done (or is moot), logging why.
    public func finishRemoteOperation(_ op: RemoteOperation, note: String) throws {
        try transaction { db in
            try db.execute(sql: "DELETE FROM remote_outbox WHERE id = ?", arguments: [op.id])
            try logEvent(db, domain: nil, kind: "remote-flush", message: note)
        }
    }

    /// Records a failed attempt at a queued change.
    public func noteRemoteFailure(_ op: RemoteOperation, error: String) throws {
        try transaction { db in
            try db.execute(sql: "UPDATE remote_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                           arguments: [error, op.id])
        }
    }
}
