import Foundation
import Glibc
import SELinux
import Testing

/// Checks that no two reserved levels are comparable (equal, dominating or dominated): what "unique" means for
/// MCS. Pairs are compared by their category sets; every other level against everything.
func dominanceConflicts(_ levels: [String]) throws -> [String] {
    let parsed = try levels.map { try SecurityLevel(parsing: $0) }
    var conflicts: [String] = []
    var pairs: [CategorySet: SecurityLevel] = [:]
    var others: [SecurityLevel] = []
    for l in parsed {
        if l.categories.count == 2 {
            if let old = pairs[l.categories] { conflicts.append("\(old) ~ \(l)") }
            pairs[l.categories] = l
        } else {
            others.append(l)
        }
    }
    for (i, o) in others.enumerated() {
        for p in pairs.values where o.isComparable(with: p) { conflicts.append("\(o) ~ \(p)") }
        for q in others[(i + 1)...] where o.isComparable(with: q) { conflicts.append("\(o) ~ \(q)") }
    }
    return conflicts
}

func printedLevels(_ results: [(status: Int32, stdout: String, stderr: String)]) -> [String] {
    results.flatMap { $0.stdout.split(separator: "\n").map(String.init) }.filter { $0.hasPrefix("s") }
}

let etcdInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcdctl")

@Suite("etcd level registry on a 3-member loopback cluster", .serialized,
       .enabled(if: etcdInstalled, "needs etcd-server and etcd-client (Debian packages)"))
struct EtcdRegistryClusterTests {
    @Test("two hosts allocating 2,000 levels each over 8 processes per host get no duplicate and no dominance conflict")
    func twoHostsNoDuplicates() throws {
        let cluster = try EtcdTestCluster(size: 3)
        defer { cluster.stop() }
        let a = try TestHost(id: "hostA", cluster: cluster), b = try TestHost(id: "hostB", cluster: cluster)
        let keepers = [try a.startKeeper(), try b.startKeeper()]
        defer { keepers.forEach(stop) }
        try a.waitRegistered()
        try b.waitRegistered()
        // User-given levels that are not pairs: every allocation must avoid what they dominate or are dominated by.
        let single = a.svirt(["mcs", "reserve", "s0:c1000", "--owner", "static-single"])
        #expect(single.status == 0, "\(single.stderr)")
        let triple = b.svirt(["mcs", "reserve", "s0:c1001,c1002,c1003", "--owner", "static-triple"])
        #expect(triple.status == 0, "\(triple.stderr)")
        // A level that conflicts with one of them is refused, naming the holder.
        let refused = b.svirt(["mcs", "reserve", "s0:c1000,c7", "--owner", "clash"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("static-single"))

        var jobs: [(TestHost, [String])] = []
        for host in [a, b] {
            for i in 0..<8 { jobs.append((host, ["mcs", "allocate", "--owner", "\(host.id)-p\(i)", "--count", "250"])) }
        }
        // A reservation under the fence while the allocations run.
        jobs.append((a, ["mcs", "reserve", "s0:c1010,c1011,c1012,c1013", "--owner", "static-quad"]))
        let results = runConcurrently(jobs)
        for (i, r) in results.enumerated() where i < 16 {
            #expect(r.status == 0, "process \(i) failed: \(r.stderr)")
        }
        let allocated = printedLevels(Array(results.prefix(16)))
        #expect(allocated.count == 4000)
        #expect(Set(allocated).count == allocated.count, "duplicates among the printed levels")

        let rows = try a.clusterLevels().filter { $0.state == "reserved" }
        let reserved = rows.map(\.level)
        #expect(Set(allocated).isSubset(of: Set(reserved)))
        #expect(reserved.count == 4000 + 2 + (results[16].status == 0 ? 1 : 0))
        #expect(try dominanceConflicts(reserved).isEmpty)
        #expect(rows.filter { $0.host == "hostA" }.count >= 2000)
        #expect(rows.filter { $0.host == "hostB" }.count >= 2000)
        // The pool statistics agree with the cluster's content.
        let stats = b.svirt(["mcs", "stats", "--json"])
        #expect(stats.stdout.contains("\"reservations\" : \(reserved.count)"))
    }

    @Test("killing one etcd member mid-run does not stop allocation or produce duplicates")
    func oneMemberDown() throws {
        let cluster = try EtcdTestCluster(size: 3)
        defer { cluster.stop() }
        let a = try TestHost(id: "hostA", cluster: cluster), b = try TestHost(id: "hostB", cluster: cluster)
        let keepers = [try a.startKeeper(), try b.startKeeper()]
        defer { keepers.forEach(stop) }
        try a.waitRegistered()
        try b.waitRegistered()
        var jobs: [(TestHost, [String])] = []
        for host in [a, b] {
            for i in 0..<4 { jobs.append((host, ["mcs", "allocate", "--owner", "\(host.id)-p\(i)", "--count", "150"])) }
        }
        let killer = Thread {
            usleep(700_000)
            cluster.kill(0)
        }
        killer.start()
        let results = runConcurrently(jobs)
        for r in results { #expect(r.status == 0, "\(r.stderr)") }
        let allocated = printedLevels(results)
        #expect(allocated.count == 1200)
        #expect(Set(allocated).count == allocated.count)
        let reserved = try b.clusterLevels().filter { $0.state == "reserved" }.map(\.level)
        #expect(Set(reserved) == Set(allocated), "etcd holds exactly what the processes were given")
        #expect(try dominanceConflicts(reserved).isEmpty)
    }

    @Test("with quorum lost allocations refuse naming the endpoints, nothing stays half-reserved, and they resume with quorum")
    func quorumLost() throws {
        let cluster = try EtcdTestCluster(size: 3)
        defer { cluster.stop() }
        let a = try TestHost(id: "hostA", cluster: cluster, timeoutSeconds: 4)
        let keeper = try a.startKeeper()
        defer { stop(keeper) }
        try a.waitRegistered()
        let before = a.svirt(["mcs", "allocate", "--owner", "before", "--count", "20"])
        #expect(before.status == 0, "\(before.stderr)")

        // Allocations running while two members die.
        let killer = Thread {
            usleep(500_000)
            cluster.kill(1)
            cluster.kill(2)
        }
        killer.start()
        let during = runConcurrently((0..<4).map { i in (a, ["mcs", "allocate", "--owner", "during\(i)", "--count", "400"]) })
        while !killer.isFinished { usleep(10_000) }
        var failed = 0
        for r in during where r.status != 0 {
            failed += 1
            #expect(r.stderr.contains("unreachable or has no quorum"), "\(r.stderr)")
        }
        #expect(failed > 0, "the allocations did not notice the lost quorum")

        // A new allocation refuses with the endpoints named and no local fallback.
        let t0 = Date()
        let refused = a.svirt(["mcs", "allocate", "--owner", "refused"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("127.0.0.1:\(cluster.members[0].clientPort)"))
        #expect(refused.stderr.contains("does not fall back"))
        #expect(Date().timeIntervalSince(t0) < 30)
        let localList = a.svirt(["mcs", "list", "--registry", "sqlite", "--json"]).stdout
        let localRows = try JSONSerialization.jsonObject(with: Data(localList.utf8)) as? [Any]
        #expect(localRows?.isEmpty == true, "nothing was reserved in the local registry: \(localList)")

        // Quorum back.
        try cluster.restart(1)
        try cluster.waitHealthy([0, 1])
        let flushed = a.svirt(["cluster", "flush"])
        #expect(flushed.status == 0, "\(flushed.stderr)")
        let given = Set(printedLevels([before] + during))
        let reserved = Set(try a.clusterLevels().filter { $0.state == "reserved" }.map(\.level))
        #expect(reserved == given, "reserved levels nobody was given: \(reserved.subtracting(given)); given but not reserved: \(given.subtracting(reserved))")
        let after = a.svirt(["mcs", "allocate", "--owner", "after", "--count", "5"])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(printedLevels([after]).count == 5)
    }

    @Test("killing a host's process group lets its lease expire and puts its levels into cool-down")
    func hostDies() throws {
        let cluster = try EtcdTestCluster(size: 3)
        defer { cluster.stop() }
        let a = try TestHost(id: "hostA", cluster: cluster, leaseSeconds: 3)
        let b = try TestHost(id: "hostB", cluster: cluster, leaseSeconds: 3)
        let keeperB = try b.startKeeper()
        defer { stop(keeperB) }
        try b.waitRegistered()
        // Host A: its keeper and four allocating processes in one process group.
        let args = a.baseArguments.map { "'\($0)'" }.joined(separator: " ")
        let script = """
            '\(svirtBinary)' cluster keepalive \(args) > '\(a.stateDir)/keeper.log' 2>&1 &
            sleep 1
            for i in 1 2 3 4; do '\(svirtBinary)' mcs allocate --owner dying$i --count 1000 \(args) > '\(a.stateDir)/levels'$i.txt 2>/dev/null & done
            wait
            """
        let groupID = try spawnProcessGroup("/bin/sh", ["-c", script])
        try a.waitRegistered()
        // Let it allocate for a while, then kill the whole group.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let count = (1...4).reduce(0) { n, i in
                n + ((try? String(contentsOfFile: "\(a.stateDir)/levels\(i).txt", encoding: .utf8)) ?? "").split(separator: "\n").count
            }
            if count >= 200 { break }
            usleep(50_000)
        }
        Glibc.kill(-groupID, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(groupID, &status, 0)
        // Whole lines only: a process killed while printing may leave a cut last line, so each process prints
        // to its own file (appending to one shared file would glue a cut line to another process's line).
        var given = Set<String>()
        for i in 1...4 {
            let printed = (try? String(contentsOfFile: "\(a.stateDir)/levels\(i).txt", encoding: .utf8)) ?? ""
            var lines = printed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.removeLast()
            given.formUnion(lines.filter { $0.hasPrefix("s") })
        }
        #expect(given.count >= 200)

        // Host B's keeper sees the lease expire and cools every level host A held.
        var rows: [ClusterRow] = []
        let wait = Date().addingTimeInterval(30)
        repeat {
            usleep(300_000)
            rows = try b.clusterLevels().filter { $0.host == "hostA" }
        } while Date() < wait && rows.contains { $0.state == "reserved" }
        #expect(!rows.isEmpty)
        #expect(rows.allSatisfy { $0.state == "cooling" }, "still reserved: \(rows.filter { $0.state == "reserved" }.map(\.level))")
        #expect(given.isSubset(of: Set(rows.map(\.level))), "given but not cooling: \(given.subtracting(Set(rows.map(\.level))))")
        #expect(!(b.svirt(["cluster", "hosts"]).stdout.contains("hostA")))
        // Cooling levels are not handed out again while other pairs are free.
        let fresh = b.svirt(["mcs", "allocate", "--owner", "after", "--count", "300"])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(Set(printedLevels([fresh])).isDisjoint(with: Set(rows.map(\.level))))
    }

    @Test("the keeper releases this host's process-held level once the process is gone, and its release cools down")
    func processReconciled() throws {
        let cluster = try EtcdTestCluster(size: 1)
        defer { cluster.stop() }
        let a = try TestHost(id: "hostA", cluster: cluster, leaseSeconds: 3)
        let keeper = try a.startKeeper()
        defer { stop(keeper) }
        try a.waitRegistered()
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["2"]
        try sleeper.run()
        let held = a.svirt(["mcs", "allocate", "--owner", "short-lived", "--pid", "\(sleeper.processIdentifier)"])
        #expect(held.status == 0, "\(held.stderr)")
        let level = held.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try a.clusterLevels().first { $0.level == level }?.state == "reserved")
        sleeper.waitUntilExit()
        var state: String?
        let deadline = Date().addingTimeInterval(15)
        repeat {
            usleep(300_000)
            state = try a.clusterLevels().first { $0.level == level }?.state
        } while state == "reserved" && Date() < deadline
        #expect(state == "cooling")
    }
}
