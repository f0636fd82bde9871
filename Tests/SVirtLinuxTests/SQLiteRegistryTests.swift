import Foundation
import GRDB
import Glibc
import Testing
@testable import SELinux
@testable import SVirt
@testable import SVirtLinux

@Suite("SQLite registry") struct SQLiteRegistryTests {
    func level(_ s: String) throws -> SecurityLevel { try SecurityLevel(parsing: s) }

    @Test("reservations survive reopening, and a reopened registry still refuses conflicts")
    func persistence() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        let pool = try CategoryPool(categoryCount: 1024)
        var levels: [SecurityLevel] = []
        do {
            let r = try SQLiteRegistry(state: state)
            for i in 0..<50 { levels.append(try r.allocateLevelNow(owner: "vm\(i)", kind: .domain, process: nil, pool: pool)) }
            try r.reserveLevelNow(try level("s0:c1022,c1023"), owner: "Static_VM1", kind: .domain, process: nil)
        }
        let r = try SQLiteRegistry(state: state)
        let stored = try r.reservationsNow()
        #expect(stored.count == 51)
        #expect(Set(stored.map(\.level)) == Set(levels + [try level("s0:c1022,c1023")]))
        do {
            try r.reserveLevelNow(try level("s0:c1021,c1022,c1023"), owner: "Other", kind: .domain, process: nil)
            Issue.record("a dominating level was reserved")
        } catch let e as SVirtError {
            #expect(e.code == .levelConflict)
            #expect(e.message.contains("VM 'Static_VM1'"))
        }
        #expect(try r.statisticsNow(pool: pool).reservations == 51)
    }

    @Test("a released level cools down and is then handed out only when nothing else is free")
    func releaseCools() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path), coolDown: 3600)
        let pool = try CategoryPool(categoryCount: 8)
        let first = try r.allocateLevelNow(owner: "a", kind: .admin, process: nil, pool: pool)
        let released = try r.releaseLevelNow(first)
        #expect(released.owner == "a")
        #expect(try r.coolingNow().map(\.level) == [first])
        var others = Set<SecurityLevel>()
        for i in 0..<27 { others.insert(try r.allocateLevelNow(owner: "b\(i)", kind: .admin, process: nil, pool: pool)) }
        #expect(!others.contains(first))
        #expect(try r.allocateLevelNow(owner: "c", kind: .admin, process: nil, pool: pool) == first)
        #expect(try r.coolingNow().isEmpty)
        do {
            _ = try r.allocateLevelNow(owner: "d", kind: .admin, process: nil, pool: pool)
            Issue.record("a full pool handed out a level")
        } catch let e as SVirtError {
            #expect(e.code == .exhausted)
        }
        #expect(throws: SVirtError.self) { try r.releaseLevelNow(try level("s0:c900,c901")) }
    }

    @Test("a reservation whose process is gone is released by the next open, and one whose pid was reused too")
    func reconcile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: dir.path)
        let proc = ProcFS()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["600"]
        try child.run()
        let identity = try #require(proc.identity(of: child.processIdentifier))
        let pool = try CategoryPool(categoryCount: 1024)
        let r = try SQLiteRegistry(state: state)
        let held = try r.allocateLevelNow(owner: "job", kind: .process, process: identity, pool: pool)
        let reused = try r.allocateLevelNow(owner: "stale", kind: .process,
                                            process: ProcessIdentity(pid: getpid(), startTime: 1), pool: pool)
        let admin = try r.allocateLevelNow(owner: "admin", kind: .admin, process: nil, pool: pool)
        let first = try r.reconcileProcesses(isAlive: proc.isAlive)
        #expect(first.map(\.level) == [reused])
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let second = try SQLiteRegistry(state: state).reconcileProcesses(isAlive: proc.isAlive)
        #expect(second.map(\.level) == [held])
        #expect(try r.reservationsNow().map(\.level) == [admin])
        #expect(try r.events().contains { $0.kind == "reconcile" && $0.message.contains("'job'") })
    }

    @Test("two registry handles in one process never hand out the same level")
    func twoHandles() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: dir.path)
        let a = try SQLiteRegistry(state: state), b = try SQLiteRegistry(state: state)
        let pool = try CategoryPool(categoryCount: 12)
        let results = try await withThrowingTaskGroup(of: [SecurityLevel].self) { group in
            for (i, reg) in [a, b].enumerated() {
                group.addTask {
                    var out: [SecurityLevel] = []
                    for j in 0..<33 { out.append(try await reg.allocateLevel(owner: "h\(i)-\(j)", kind: .admin, process: nil, pool: pool)) }
                    return out
                }
            }
            var all: [SecurityLevel] = []
            for try await r in group { all += r }
            return all
        }
        #expect(results.count == 66)
        #expect(Set(results).count == 66)
    }
}

@Suite("the registry file and the state directory") struct RegistryFileTests {
    func mode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    func size(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    func openError(_ state: StateDirectory) -> SVirtError? {
        do {
            _ = try SQLiteRegistry(state: state)
            return nil
        } catch let e as SVirtError {
            return e
        } catch {
            return SVirtError(.registry, "unexpected \(error)")
        }
    }

    @Test("a zero-length registry is refused, naming the file and the fix, and left as it is")
    func emptyRegistry() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        try state.create()
        #expect(FileManager.default.createFile(atPath: state.registryPath, contents: Data()))
        let e = try #require(openError(state))
        #expect(e.code == .registry)
        #expect(e.message.contains("the registry \(state.registryPath) is empty (0 bytes)"), "\(e.message)")
        #expect(e.message.contains("restore it from a backup, or move it aside"))
        #expect(e.message.contains("mv \(state.registryPath) \(state.registryPath).broken"))
        #expect(size(state.registryPath) == 0)
        #expect(!FileManager.default.fileExists(atPath: state.registryPath + "-wal"))
    }

    @Test("a registry that is not an SQLite database is refused and left as it is")
    func notSQLite() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        try state.create()
        let junk = Data(repeating: 0x41, count: 5000)
        #expect(FileManager.default.createFile(atPath: state.registryPath, contents: junk))
        let e = try #require(openError(state))
        #expect(e.message.contains("\(state.registryPath) is not an SQLite database (5000 bytes"), "\(e.message)")
        #expect(e.message.contains("move it aside"))
        #expect(FileManager.default.contents(atPath: state.registryPath) == junk)
    }

    @Test("another program's SQLite database is refused and gets no svirt schema")
    func foreignDatabase() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        try state.create()
        do {
            let q = try DatabaseQueue(path: state.registryPath)
            try q.write { try $0.execute(sql: "CREATE TABLE notes (text TEXT)") }
            try q.close()
        }
        let e = try #require(openError(state))
        #expect(e.message.contains("is an SQLite database but not an svirt registry (its tables are notes"), "\(e.message)")
        let q = try DatabaseQueue(path: state.registryPath)
        let tables = try q.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(tables == ["notes"])
    }

    @Test("a missing registry is created whole, mode 0600, and keeps its rows when reopened")
    func freshRegistry() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        let pool = try CategoryPool(categoryCount: 16)
        let level = try SQLiteRegistry(state: state).allocateLevelNow(owner: "vm", kind: .domain, process: nil, pool: pool)
        #expect(mode(state.registryPath) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: state.registryPath + ".new"))
        #expect(try SQLiteRegistry(state: state).reservationsNow().map(\.level) == [level])
    }

    @Test("an open state directory and a world-readable registry are made 0700 and 0600")
    func modesFixed() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        do { let r = try SQLiteRegistry(state: state); try r.log(domain: nil, kind: "test", message: "made") }
        #expect(mode(state.path) == 0o700)
        chmod(state.path, 0o755)
        chmod(state.registryPath, 0o644)
        let wal = state.registryPath + "-wal"
        if !FileManager.default.fileExists(atPath: wal) { #expect(FileManager.default.createFile(atPath: wal, contents: Data())) }
        chmod(wal, 0o666)
        let r = try SQLiteRegistry(state: state)
        #expect(mode(state.path) == 0o700)
        #expect(mode(state.registryPath) == 0o600)
        #expect(mode(wal) == 0o600)
        #expect(try r.events(kind: "test").map(\.message) == ["made"])
    }

    @Test("a state directory another user owns and others may use is refused with the reason",
          .enabled(if: getuid() == 0, "needs root"))
    func foreignStateDirectory() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: "\(dir.path)/state")
        try FileManager.default.createDirectory(atPath: state.path, withIntermediateDirectories: true)
        chmod(state.path, 0o755)
        chown(state.path, 65534, 65534)
        let e = try #require(openError(state))
        #expect(e.message.contains("the state directory \(state.path) is mode 755 and owned by uid 65534, not by svirt's user"),
                "\(e.message)")
        #expect(e.message.contains("chmod 0700"))
        #expect(mode(state.path) == 0o755)
    }
}
