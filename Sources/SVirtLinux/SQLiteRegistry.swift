import Foundation
import GRDB
import Glibc
import SELinux
import SVirt

/// The local registry: SQLite (through GRDB) in the state directory, in WAL mode where this process may map the
/// `-shm` file, else with a rollback journal (`Journal`).
///
/// It holds defined domains, running domains and level reservations. Every change runs in an `IMMEDIATE`
/// transaction, so concurrent `svirt` processes are serialised by SQLite's write lock and a level can never be
/// handed out twice: the allocator is rebuilt from the rows inside the transaction that inserts its choice, and
/// the `level` column is the primary key. Opening takes an advisory `flock` on `registry.lock` while the schema
/// is created or migrated.
public final class SQLiteRegistry: LevelRegistry {
    public let state: StateDirectory
    let db: DatabaseQueue
    let coolDown: Double
    let host: String?
    /// The journal it keeps.
    public let journal: Journal

    /// Opens (creating if needed) the registry in `state`. `journal` nil: WAL where this process may map a file
    /// in the state directory, else a rollback journal.
    public init(state: StateDirectory, coolDown: Double = 3600, host: String? = nil, journal: Journal? = nil) throws {
        self.state = state
        self.coolDown = coolDown
        self.host = host
        try state.create()
        let journal = journal ?? Self.journal(for: state.path)
        self.journal = journal
        var config = Configuration()
        config.journalMode = journal == .wal ? .wal : .default
        config.busyMode = .timeout(120)
        config.label = "svirt-registry"
        let lock = try FileLock(path: "\(state.path)/registry.lock")
        defer { lock.unlock() }
        // An existing file must be an svirt registry: an empty or foreign file is refused, never given a fresh
        // schema (that would silently lose every definition). A missing one is created whole.
        if try Self.inspectExisting(state.registryPath) {
            if journal == .rollback, Self.isWAL(state.registryPath) { try Self.leaveWAL(state.registryPath) }
            try Self.checkIsRegistry(state.registryPath)
        } else {
            try Self.createNew(state.registryPath)
        }
        do {
            db = try DatabaseQueue(path: state.registryPath, configuration: config)
            try Self.migrator.migrate(db)
        } catch let e as SVirtError {
            throw e
        } catch {
            throw StateDirectory.failure(at: state.registryPath, "cannot open the registry \(state.registryPath): \(error)",
                                         remedy: "check the state directory or choose another with --state-dir",
                                         cause: String(describing: error))
        }
    }

    /// Schema migrations. New versions are appended; existing ones never change.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-foundation") { db in
            try db.execute(sql: """
                CREATE TABLE reservation (
                    level TEXT PRIMARY KEY NOT NULL,
                    owner TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    pid INTEGER,
                    pid_start INTEGER,
                    host TEXT,
                    created_at REAL NOT NULL);
                CREATE TABLE cooling (
                    level TEXT PRIMARY KEY NOT NULL,
                    owner TEXT NOT NULL,
                    released_at REAL NOT NULL);
                CREATE TABLE domain (
                    name TEXT PRIMARY KEY NOT NULL,
                    uuid TEXT NOT NULL UNIQUE,
                    xml TEXT NOT NULL,
                    defined_at REAL NOT NULL,
                    updated_at REAL NOT NULL);
                CREATE TABLE running (
                    name TEXT PRIMARY KEY NOT NULL,
                    uuid TEXT NOT NULL,
                    state TEXT NOT NULL,
                    pid INTEGER,
                    pid_start INTEGER,
                    label TEXT,
                    image_label TEXT,
                    level TEXT,
                    mechanism TEXT,
                    live_xml TEXT NOT NULL,
                    runtime_dir TEXT,
                    started_at REAL NOT NULL);
                CREATE TABLE event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    domain TEXT,
                    kind TEXT NOT NULL,
                    message TEXT NOT NULL);
                """)
        }
        m.registerMigration("v2-remote-outbox") { db in
            // Changes to a shared (etcd) registry that could not be made while it was unreachable.
            try db.execute(sql: """
                CREATE TABLE remote_outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    queued_at REAL NOT NULL,
                    action TEXT NOT NULL,
                    key TEXT NOT NULL,
                    level TEXT,
                    value BLOB,
                    host TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT);
                """)
        }
        m.registerMigration("v3-lifecycle") { db in
            // The svirt process acting on a running row (starting or stopping it), the libvirt-style domain id,
            // and what a later svirt process needs to reach and restore the VM (JSON).
            try db.execute(sql: """
                ALTER TABLE running ADD COLUMN domain_id INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE running ADD COLUMN holder_pid INTEGER;
                ALTER TABLE running ADD COLUMN holder_start INTEGER;
                ALTER TABLE running ADD COLUMN details TEXT;
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL);
                CREATE TABLE boolean (
                    name TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL,
                    updated_at REAL NOT NULL);
                CREATE TABLE emulator (
                    identity TEXT PRIMARY KEY NOT NULL,
                    sandbox INTEGER NOT NULL,
                    data_directories TEXT NOT NULL,
                    probed_at REAL NOT NULL);
                """)
        }
        m.registerMigration("v4-pending-files") { db in
            // Files an svirt process is creating (a clone's copies): removed by the next command when that
            // process died before the domain they belong to was defined.
            try db.execute(sql: """
                CREATE TABLE pending_file (
                    path TEXT PRIMARY KEY NOT NULL,
                    owner TEXT NOT NULL,
                    holder_pid INTEGER NOT NULL,
                    holder_start INTEGER NOT NULL,
                    created_at REAL NOT NULL);
                """)
        }
        return m
    }

    /// Runs `body` in an IMMEDIATE transaction, mapping database errors to `SVirtError`.
    func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try db.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { throw SVirtError(.registry, "the registry transaction returned nothing") }
                return result
            }
        } catch let e as SVirtError {
            throw e
        } catch {
            throw StateDirectory.failure(at: state.registryPath, "registry \(state.registryPath): \(error)",
                                         cause: String(describing: error))
        }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    // MARK: Rows

    static func reservation(from row: Row) throws -> Reservation {
        let text: String = row["level"]
        let level = try SecurityLevel(parsing: text)
        let pid: Int64? = row["pid"]
        let start: Int64? = row["pid_start"]
        let kindText: String = row["kind"]
        return Reservation(
            level: level, owner: row["owner"], kind: Reservation.Kind(rawValue: kindText) ?? .admin,
            process: pid.flatMap { p in start.map { ProcessIdentity(pid: Int32(truncatingIfNeeded: p), startTime: UInt64(bitPattern: $0)) } },
            createdAt: row["created_at"], host: row["host"])
    }

    func loadReservations(_ db: Database) throws -> [Reservation] {
        try Row.fetchAll(db, sql: "SELECT * FROM reservation").map(Self.reservation(from:))
    }

    func loadCooling(_ db: Database) throws -> [CoolingLevel] {
        try Row.fetchAll(db, sql: "SELECT * FROM cooling").map { row in
            let text: String = row["level"]
            return CoolingLevel(level: try SecurityLevel(parsing: text), releasedAt: row["released_at"], owner: row["owner"])
        }
    }

    func allocator(_ db: Database, pool: CategoryPool, now: Double) throws -> MCSAllocator {
        var a = MCSAllocator(pool: pool, coolDown: coolDown)
        for r in try loadReservations(db) { a.restore(r) }
        for c in try loadCooling(db) {
            if c.releasedAt + coolDown <= now {
                try db.execute(sql: "DELETE FROM cooling WHERE level = ?", arguments: [c.level.description])
            } else {
                a.restoreCooling(c)
            }
        }
        return a
    }

    func insert(_ r: Reservation, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO reservation (level, owner, kind, pid, pid_start, host, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [r.level.description, r.owner, r.kind.rawValue, r.process.map { Int64($0.pid) },
                        r.process.map { Int64(bitPattern: $0.startTime) }, r.host, r.createdAt])
        // A reserved level consumes the cooling levels it dominates.
        for c in try loadCooling(db) where r.level.dominates(c.level) {
            try db.execute(sql: "DELETE FROM cooling WHERE level = ?", arguments: [c.level.description])
        }
    }

    // MARK: LevelRegistry

    public func allocateLevel(owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                              pool: CategoryPool) async throws -> SecurityLevel {
        try allocateLevelNow(owner: owner, kind: kind, process: process, pool: pool)
    }

    /// The synchronous form of `allocateLevel`.
    public func allocateLevelNow(owner: String, kind: Reservation.Kind, process: ProcessIdentity?,
                                 pool: CategoryPool) throws -> SecurityLevel {
        let now = Self.now()
        return try transaction { db in
            var a = try allocator(db, pool: pool, now: now)
            var rng = SystemRandomNumberGenerator()
            let level = try a.allocate(owner: owner, kind: kind, process: process, now: now, host: host, using: &rng)
            guard let r = a.reservation(of: level) else { throw SVirtError(.registry, "allocator lost its reservation") }
            try insert(r, db)
            return level
        }
    }

    public func reserveLevel(_ level: SecurityLevel, owner: String, kind: Reservation.Kind,
                             process: ProcessIdentity?) async throws {
        try reserveLevelNow(level, owner: owner, kind: kind, process: process)
    }

    /// The synchronous form of `reserveLevel`.
    public func reserveLevelNow(_ level: SecurityLevel, owner: String, kind: Reservation.Kind,
                                process: ProcessIdentity?) throws {
        let now = Self.now()
        try transaction { db in
            try MCSAllocator.checkReservable(level, against: try loadReservations(db))
            try insert(Reservation(level: level, owner: owner, kind: kind, process: process, createdAt: now, host: host), db)
        }
    }

    public func releaseLevel(_ level: SecurityLevel) async throws -> Reservation {
        try releaseLevelNow(level)
    }

    /// The synchronous form of `releaseLevel`.
    @discardableResult
    public func releaseLevelNow(_ level: SecurityLevel) throws -> Reservation {
        let now = Self.now()
        return try transaction { db in try release(level, now: now, db) }
    }

    func release(_ level: SecurityLevel, now: Double, _ db: Database) throws -> Reservation {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM reservation WHERE level = ?", arguments: [level.description]) else {
            throw SVirtError(.notReserved, "'\(level)' is not reserved; 'svirt mcs list' shows the reserved levels")
        }
        let r = try Self.reservation(from: row)
        try db.execute(sql: "DELETE FROM reservation WHERE level = ?", arguments: [level.description])
        try db.execute(sql: "INSERT OR REPLACE INTO cooling (level, owner, released_at) VALUES (?, ?, ?)",
                       arguments: [level.description, r.owner, now])
        return r
    }

    public func reservations() async throws -> [Reservation] { try reservationsNow() }

    /// The synchronous form of `reservations`.
    public func reservationsNow() throws -> [Reservation] {
        try transaction { db in try loadReservations(db) }.sorted { $0.level < $1.level }
    }

    /// Levels that are cooling down.
    public func coolingNow() throws -> [CoolingLevel] {
        try transaction { db in try loadCooling(db) }.sorted { $0.releasedAt < $1.releasedAt }
    }

    public func statistics(pool: CategoryPool) async throws -> MCSStatistics { try statisticsNow(pool: pool) }

    /// The synchronous form of `statistics`.
    public func statisticsNow(pool: CategoryPool) throws -> MCSStatistics {
        let now = Self.now()
        return try transaction { db in try allocator(db, pool: pool, now: now).statistics() }
    }

    // MARK: Reconciliation

    /// Releases every `.process` reservation whose process is gone (a dead pid, or a pid reused by another
    /// process, told apart by its start time). Returns what it released. Every command calls this when it
    /// opens the registry; `.domain` reservations are reconciled with their VMs by the lifecycle code.
    @discardableResult
    public func reconcileProcesses(isAlive: (ProcessIdentity) -> Bool) throws -> [Reservation] {
        let now = Self.now()
        return try transaction { db in
            var released: [Reservation] = []
            for r in try loadReservations(db) where r.kind == .process {
                guard let p = r.process, !isAlive(p) else { continue }
                released.append(try release(r.level, now: now, db))
                try logEvent(db, domain: nil, kind: "reconcile",
                             message: "released \(r.level) held by '\(r.owner)': its process \(p) is gone")
            }
            return released
        }
    }

    // MARK: Events

    func logEvent(_ db: Database, domain: String?, kind: String, message: String) throws {
        try db.execute(sql: "INSERT INTO event (at, domain, kind, message) VALUES (?, ?, ?, ?)",
                       arguments: [Self.now(), domain, kind, message])
    }

    /// Records an event in the registry's log.
    public func log(domain: String?, kind: String, message: String) throws {
        try transaction { db in try logEvent(db, domain: domain, kind: kind, message: message) }
    }

    /// The newest events (of one domain, of one kind, when given), oldest first.
    public func events(domain: String? = nil, kind: String? = nil, limit: Int = 100) throws -> [(at: Double, domain: String?, kind: String, message: String)] {
        try transaction { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM event WHERE (? IS NULL OR domain = ?) AND (? IS NULL OR kind = ?) ORDER BY id DESC LIMIT ?",
                arguments: [domain, domain, kind, kind, limit])
            return rows.reversed().map { ($0["at"], $0["domain"], $0["kind"], $0["message"]) }
        }
    }
}

/// An advisory whole-file lock (`flock(LOCK_EX)`), released by `unlock()` or when the process exits.
struct FileLock {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StateDirectory.failure(at: path, "cannot open the lock file \(path): \(String(cString: strerror(errno)))",
                                         remedy: "check the state directory's permissions or choose another with --state-dir")
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw SVirtError(.registry, "cannot lock \(path): \(String(cString: strerror(e)))")
        }
    }

    func unlock() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
