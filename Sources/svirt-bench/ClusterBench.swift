import Foundation
import Glibc
import SELinux
import SVirt
import SVirtCluster
import SVirtLinux

/// `svirt-bench cluster`: allocations per second through the etcd registry (a 3-member etcd cluster started
/// on 127.0.0.1 for the run) against the local SQLite registry, both with their data on the same file system.
/// Also the etcd rate with 100,000 levels already taken, which the watch-fed cache keeps cheap.
enum ClusterBench {
    static func run() async {
        do {
            try await measure()
        } catch {
            FileHandle.standardError.write(Data("svirt-bench cluster: \(error)\n".utf8))
            exit(1)
        }
    }

    static func measure() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
            throw SVirtError(.unsupported, "needs /usr/bin/etcd (Debian's etcd-server)")
        }
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/svirt-bench-cluster-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pool = try CategoryPool(categoryCount: 1024)
        let count = 2000

        // Local baseline.
        let sqlite = try SQLiteRegistry(state: StateDirectory(path: "\(dir)/local"))
        var t0 = now()
        for i in 0..<count { _ = try sqlite.allocateLevelNow(owner: "b\(i)", kind: .admin, process: nil, pool: pool) }
        let local = Double(count) / (now() - t0)

        // etcd.
        let etcd = try EtcdProcesses(directory: "\(dir)/etcd", size: 3)
        defer { etcd.stop() }
        var config = EtcdConfiguration(endpoints: etcd.endpoints)
        config.operationTimeout = 20
        let client = try EtcdClient(configuration: config)
        let registry = try EtcdLevelRegistry(client: client, hostID: "bench", coolDown: 3600, local: nil)
        let keeper = HostKeeper(registry: registry, ttl: 30, isAlive: { _ in true }, log: { _ in })
        _ = try await keeper.register()
        let keepalive = Task { try? await keeper.run() }
        defer { keepalive.cancel() }
        // Warm up the cache and the connection.
        _ = try await registry.allocateLevel(owner: "warm", kind: .admin, process: nil, pool: pool)
        t0 = now()
        for i in 0..<count { _ = try await registry.allocateLevel(owner: "e\(i)", kind: .admin, process: nil, pool: pool) }
        let cluster = Double(count) / (now() - t0)
        Figure(name: "cluster.alloc", value: cluster, unit: "allocs/s", baseline: ("sqlite-local", local)).print()
        Figure(name: "cluster.alloc.local", value: local, unit: "allocs/s").print()

        // 100,000 levels taken (written in bulk transactions), then the same allocations.
        t0 = now()
        let filled = try await registry.benchFill(levels: 100_000 - count - 1, pool: pool)
        Figure(name: "cluster.fill", value: Double(filled) / (now() - t0), unit: "levels/s").print()
        // A fresh process's first read of the whole registry at 100,000 levels (the range read that fills its cache).
        let reader = try EtcdLevelRegistry(client: try EtcdClient(configuration: config), hostID: "bench", coolDown: 3600, local: nil)
        t0 = now()
        _ = try await reader.statistics(pool: pool)
        Figure(name: "cluster.load.at100k", value: (now() - t0) * 1000, unit: "ms").print()
        await reader.shutdown()
        t0 = now()
        for i in 0..<500 { _ = try await registry.allocateLevel(owner: "f\(i)", kind: .admin, process: nil, pool: pool) }
        let full = 500 / (now() - t0)
        Figure(name: "cluster.alloc.at100k", value: full, unit: "allocs/s", baseline: ("cluster.alloc", cluster)).print()
        Figure(name: "cluster.taken", value: Double(filled + count + 1), unit: "levels").print()
        await registry.shutdown()
    }
}

/// etcd members on free loopback ports for the benchmark.
final class EtcdProcesses {
    var processes: [Process] = []
    var endpoints: [String] = []

    init(directory: String, size: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = try (0..<(2 * size)).map { _ in try freePort() }
        let cluster = (0..<size).map { "m\($0)=http://127.0.0.1:\(ports[2 * $0 + 1])" }.joined(separator: ",")
        for i in 0..<size {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
            p.arguments = ["--name", "m\(i)", "--data-dir", "\(directory)/m\(i)",
                           "--listen-client-urls", "http://127.0.0.1:\(ports[2 * i])",
                           "--advertise-client-urls", "http://127.0.0.1:\(ports[2 * i])",
                           "--listen-peer-urls", "http://127.0.0.1:\(ports[2 * i + 1])",
                           "--initial-advertise-peer-urls", "http://127.0.0.1:\(ports[2 * i + 1])",
                           "--initial-cluster", cluster, "--initial-cluster-state", "new",
                           "--initial-cluster-token", "bench-\(getpid())"]
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            processes.append(p)
            endpoints.append("127.0.0.1:\(ports[2 * i])")
        }
        // Wait for a leader: a range succeeds.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
            probe.arguments = ["--endpoints", endpoints.joined(separator: ","), "endpoint", "health"]
            probe.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            probe.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try probe.run()
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return }
            usleep(100_000)
        }
        throw SVirtError(.unsupported, "the benchmark's etcd cluster did not start")
    }

    func stop() {
        for p in processes where p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }
}

func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw SVirtError(.unsupported, "cannot find a free port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
