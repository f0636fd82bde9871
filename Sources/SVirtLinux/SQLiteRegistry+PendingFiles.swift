import Foundation
import GRDB
import SVirt

extension SQLiteRegistry {
    /// Files an svirt process is creating for the domain `owner` (a clone's copies), recorded before the first is
    /// created so that a process killed midway leaves a record of them for the next one.
    public struct PendingFiles: Sendable, Hashable {
        public var owner: String
        public var holder: ProcessIdentity
        public var paths: [String]
    }

    /// Records `paths` as being created by `holder` for `owner`. Refused when another svirt process is creating
    /// one of them.
    public func addPendingFiles(_ paths: [String], owner: String, holder: ProcessIdentity) throws {
        let now = Self.now()
        try transaction { db in
            for p in paths {
                if let other = try String.fetchOne(db, sql: "SELECT owner FROM pending_file WHERE path = ?", arguments: [p]) {
                    throw SVirtError(.state, "\(p) is being created for '\(other)' by another svirt process")
                }
                try db.execute(sql: """
                    INSERT INTO pending_file (path, owner, holder_pid, holder_start, created_at) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [p, owner, Int64(holder.pid), Int64(bitPattern: holder.startTime), now])
            }
        }
    }

    /// Forgets the files being created for `owner` (they are complete and the domain is defined, or removed).
    public func removePendingFiles(owner: String) throws {
        try transaction { db in try db.execute(sql: "DELETE FROM pending_file WHERE owner = ?", arguments: [owner]) }
    }

    /// The files being created, by owner and holder.
    public func pendingFiles() throws -> [PendingFiles] {
        try transaction { db in
            var out: [PendingFiles] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM pending_file ORDER BY owner, holder_pid, path") {
                let owner: String = row["owner"], pid: Int64 = row["holder_pid"], start: Int64 = row["holder_start"]
                let holder = ProcessIdentity(pid: Int32(truncatingIfNeeded: pid), startTime: UInt64(bitPattern: start))
                if let i = out.firstIndex(where: { $0.owner == owner && $0.holder == holder }) {
                    out[i].paths.append(row["path"])
                } else {
                    out.append(PendingFiles(owner: owner, holder: holder, paths: [row["path"]]))
                }
            }
            return out
        }
    }
}
