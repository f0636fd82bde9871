import Foundation
import GRDB
import SVirt

extension SQLiteRegistry {
    static func runningDomain(_ row: Row) throws -> RunningDomain {
        let stateText: String = row["state"]
        guard let state = RunningDomain.State(rawValue: stateText) else {
            let name: String = row["name"]
            throw SVirtError(.registry, "the running record of '\(name)' has the unknown state '\(stateText)'; "
                             + "a newer svirt wrote it, or the registry is damaged")
        }
        func identity(_ pid: String, _ start: String) -> ProcessIdentity? {
            let p: Int64? = row[pid], s: Int64? = row[start]
            guard let p, let s, let pid32 = Int32(exactly: p) else { return nil }
            return ProcessIdentity(pid: pid32, startTime: UInt64(bitPattern: s))
        }
        var details = RunningDomain.Details()
        if let text: String = row["details"], let d = try? JSONDecoder().decode(RunningDomain.Details.self, from: Data(text.utf8)) {
            details = d
        }
        let id: Int64 = row["domain_id"]
        return RunningDomain(
            name: row["name"], uuid: row["uuid"], id: Int(truncatingIfNeeded: id), state: state,
            process: identity("pid", "pid_start"), holder: identity("holder_pid", "holder_start"),
            label: row["label"], imageLabel: row["image_label"], level: row["level"], mechanism: row["mechanism"],
            liveXML: row["live_xml"], runtimeDirectory: row["runtime_dir"], startedAt: row["started_at"], details: details)
    }

    static func detailsJSON(_ d: RunningDomain.Details) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(d)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Claims `name` for a start: inserts a `starting` row held by `holder` and gives it the next domain id.
    /// Only one claim per name can exist, so of two concurrent `svirt start` calls for one VM exactly one gets
    /// here; the other gets `.state` naming what the VM is doing.
    public func claimStart(name: String, uuid: String, xml: String, holder: ProcessIdentity,
                           details: RunningDomain.Details) throws -> RunningDomain {
        let now = Self.now()
        return try transaction { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM running WHERE name = ?", arguments: [name]) {
                let r = try Self.runningDomain(row)
                throw SVirtError(.state, r.state == .running ? "domain is already active"
                                 : "domain is already being \(r.state == .starting ? "started" : "stopped")"
                                 + (r.holder.map { " by svirt (pid \($0.pid))" } ?? ""))
            }
            let last = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_domain_id'") ?? 0
            let id = last >= Int64(Int32.max) ? 1 : last + 1
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_domain_id', ?)", arguments: [id])
            let r = RunningDomain(name: name, uuid: uuid, id: Int(id), state: .starting, holder: holder, liveXML: xml,
                                  startedAt: now, details: details)
            try db.execute(sql: """
                INSERT INTO running (name, uuid, state, live_xml, started_at, domain_id, holder_pid, holder_start, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [name, uuid, r.state.rawValue, xml, now, id, Int64(holder.pid),
                                 Int64(bitPattern: holder.startTime), Self.detailsJSON(details)])
            return r
        }
    }

    /// Writes every column of a running row (it must exist).
    public func updateRunning(_ r: RunningDomain) throws {
        try transaction { db in
            try db.execute(sql: """
                UPDATE running SET uuid = ?, state = ?, pid = ?, pid_start = ?, label = ?, image_label = ?, level = ?,
                    mechanism = ?, live_xml = ?, runtime_dir = ?, started_at = ?, domain_id = ?, holder_pid = ?,
                    holder_start = ?, details = ?
                WHERE name = ?
                """, arguments: [
                    r.uuid, r.state.rawValue, r.process.map { Int64($0.pid) }, r.process.map { Int64(bitPattern: $0.startTime) },
                    r.label, r.imageLabel, r.level, r.mechanism, r.liveXML, r.runtimeDirectory, r.startedAt, Int64(r.id),
                    r.holder.map { Int64($0.pid) }, r.holder.map { Int64(bitPattern: $0.startTime) }, Self.detailsJSON(r.details),
                    r.name,
                ])
            guard db.changesCount == 1 else {
                throw SVirtError(.registry, "the running record of '\(r.name)' disappeared while svirt updated it")
            }
        }
    }

    /// Claims a row for stopping: a `running` row, or a `starting`/`stopping` row whose holder is gone (as
    /// `isAlive` tells), becomes `stopping` held by `holder`. Returns the row as it was before the claim.
    ///
    /// Throws `.notFound` when the domain does not run and `.state` when a live svirt process holds it (another
    /// one, or another operation of this one).
    public func claimStop(name: String, holder: ProcessIdentity, isAlive: (ProcessIdentity) -> Bool) throws -> RunningDomain {
        try transaction { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM running WHERE name = ?", arguments: [name]) else {
                throw SVirtError(.notFound, "domain is not running")
            }
            let r = try Self.runningDomain(row)
            // A live holder may be this very process: the console runs many operations at once, and a destroy that
            // took over its own start's row would undo the start under it (and could leave a QEMU with no record).
            if r.state != .running, let h = r.holder, isAlive(h) {
                throw SVirtError(.state, "domain is being \(r.state == .starting ? "started" : "stopped") by svirt (pid \(h.pid))")
            }
            try db.execute(sql: "UPDATE running SET state = 'stopping', holder_pid = ?, holder_start = ? WHERE name = ?",
                           arguments: [Int64(holder.pid), Int64(bitPattern: holder.startTime), name])
            return r
        }
    }

    /// Claims a row for stopping only if `stale` holds for the row as it is inside the claim's transaction (a
    /// reconciliation's snapshot may be old by the time it acts: the VM it saw starting may be running now).
    /// Returns the row as it was, or nil when there is no row or `stale` is false.
    public func claimIfStale(name: String, holder: ProcessIdentity, stale: (RunningDomain) -> Bool) throws -> RunningDomain? {
        try transaction { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM running WHERE name = ?", arguments: [name]) else { return nil }
            let r = try Self.runningDomain(row)
            guard stale(r) else { return nil }
            try db.execute(sql: "UPDATE running SET state = 'stopping', holder_pid = ?, holder_start = ? WHERE name = ?",
                           arguments: [Int64(holder.pid), Int64(bitPattern: holder.startTime), name])
            return r
        }
    }

    /// Removes a running row (the domain is shut off).
    public func removeRunning(name: String) throws {
        try transaction { db in try db.execute(sql: "DELETE FROM running WHERE name = ?", arguments: [name]) }
    }

    /// The running row of `name`, if any.
    public func runningDomain(named name: String) throws -> RunningDomain? {
        try transaction { db in
            try Row.fetchOne(db, sql: "SELECT * FROM running WHERE name = ?", arguments: [name]).map(Self.runningDomain)
        }
    }

    /// Every running row, by domain id.
    public func runningDomains() throws -> [RunningDomain] {
        try transaction { db in
            try Row.fetchAll(db, sql: "SELECT * FROM running ORDER BY domain_id, name").map(Self.runningDomain)
        }
    }

    // MARK: Emulators

    /// The emulator at `path` as probed once and kept, keyed by the binary's identity (device, inode, size,
    /// modification time), so a replaced binary is probed again. Probing runs QEMU once (`-L help`), which costs a
    /// start about as much as everything else svirt does.
    public func emulator(at given: String, allowed: [String] = [], user: GuestUser? = nil) throws -> QEMUEmulator {
        // The rule is checked on every use, the cache notwithstanding: svirt.conf or the file's owner may change.
        // From here on only the canonical path that passed is used.
        let path = try QEMUEmulator.checkAllowed(given, allowed: allowed)
        let key = try QEMUEmulator.identity(of: path)
        if let row = try transaction({ db in try Row.fetchOne(db, sql: "SELECT * FROM emulator WHERE identity = ?", arguments: [key]) }) {
            let sandbox: Int64 = row["sandbox"], dirs: String = row["data_directories"]
            return QEMUEmulator(path: path, supportsSandbox: sandbox != 0,
                                dataDirectories: dirs.split(separator: "\n").map(String.init))
        }
        let e = try QEMUEmulator.probe(path, allowed: allowed, user: user)
        try transaction { db in
            try db.execute(sql: "DELETE FROM emulator WHERE identity LIKE ?", arguments: [path + "|%"])
            try db.execute(sql: "INSERT OR REPLACE INTO emulator (identity, sandbox, data_directories, probed_at) VALUES (?, ?, ?, ?)",
                           arguments: [key, e.supportsSandbox ? 1 : 0, e.dataDirectories.joined(separator: "\n"), Self.now()])
        }
        return e
    }

    // MARK: Booleans

    /// svirt's own boolean settings, which override the policy's defaults in svirt's decisions where SELinux is
    /// off (where it is on, the kernel's booleans decide).
    public func booleanSettings() throws -> [String: Bool] {
        try transaction { db in
            var out: [String: Bool] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM boolean") {
                let name: String = row["name"], value: Int64 = row["value"]
                out[name] = value != 0
            }
            return out
        }
    }

    /// Sets one of svirt's booleans.
    public func setBoolean(_ name: String, _ value: Bool) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw SVirtError(.configuration, "'\(name)' is not a boolean name; boolean names are letters, digits and '_'")
        }
        try transaction { db in
            try db.execute(sql: "INSERT OR REPLACE INTO boolean (name, value, updated_at) VALUES (?, ?, ?)",
                           arguments: [name, value ? 1 : 0, Self.now()])
            try logEvent(db, domain: nil, kind: "boolean", message: "\(name) set to \(value ? "on" : "off")")
        }
    }

    /// Removes svirt's setting of a boolean, so the policy's default applies again.
    public func clearBoolean(_ name: String) throws {
        try transaction { db in try db.execute(sql: "DELETE FROM boolean WHERE name = ?", arguments: [name]) }
    }
}
