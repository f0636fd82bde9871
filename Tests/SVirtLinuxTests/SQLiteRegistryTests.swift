import Foundation
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
