import Foundation
import Glibc

/// The `svirt` binary built beside the test bundle.
let svirtBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("svirt")
}()

/// A "host" for tests: a state directory with its own svirt.conf and host id, talking to a test etcd cluster.
struct TestHost: Sendable {
    let id: String
    let stateDir: String
    let registry: String
    let extraArguments: [String]

    init(id: String, cluster: EtcdTestCluster, leaseSeconds: Int = 10, timeoutSeconds: Int = 6,
         extraConfig: String = "", extraArguments: [String] = []) throws {
        self.id = id
        stateDir = "\(cluster.directory)/host-\(id)"
        registry = cluster.url
        self.extraArguments = extraArguments
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        var conf = """
            categories = c0.c1023
            registry = \(cluster.url)
            host_id = \(id)
            host_lease_seconds = \(leaseSeconds)
            registry_timeout_seconds = \(timeoutSeconds)

            """
        if let t = cluster.tls {
            conf += "registry_ca = \(t.ca)\nregistry_cert = \(t.clientCert)\nregistry_key = \(t.clientKey)\n"
        }
        conf += extraConfig
        try conf.write(toFile: "\(stateDir)/svirt.conf", atomically: true, encoding: .utf8)
    }

    var baseArguments: [String] { ["--state-dir", stateDir] + extraArguments }

    /// Runs `svirt <args...> --state-dir DIR` to completion.
    func svirt(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: svirtBinary)
        p.arguments = args + baseArguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "", "\(error)") }
        // Read both pipes concurrently so neither fills up.
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while t.isExecuting || !t.isFinished { usleep(1000) }
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Starts `svirt cluster keepalive` for this host as a child process.
    func startKeeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: svirtBinary)
        p.arguments = ["cluster", "keepalive"] + baseArguments
        let log = "\(stateDir)/keeper-test.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = p.standardOutput
        try p.run()
        return p
    }

    /// Waits until this host's key exists in etcd.
    func waitRegistered(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = (status: Int32(0), stdout: "", stderr: "")
        while Date() < deadline {
            last = svirt(["cluster", "hosts", "--json"])
            if last.status == 0, last.stdout.contains("\"\(id)\"") { return }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: "\(stateDir)/keeper-test.log", encoding: .utf8)) ?? "(no keeper log)"
        throw TestFailure("host \(id) did not register its lease in time: \(last); keeper log: \(log)")
    }

    /// Every level in the cluster (`svirt mcs list --cluster --json`).
    func clusterLevels() throws -> [ClusterRow] {
        let r = svirt(["mcs", "list", "--cluster", "--json"])
        guard r.status == 0 else { throw TestFailure("mcs list --cluster failed: \(r.stderr)") }
        return try JSONDecoder().decode([ClusterRow].self, from: Data(r.stdout.utf8))
    }
}

struct ClusterRow: Decodable, Hashable {
    var level: String
    var state: String
    var host: String
    var hostAlive: Bool
    var owner: String
}

/// Runs several `svirt` processes at once and collects each one's result.
func runConcurrently(_ jobs: [(TestHost, [String])]) -> [(status: Int32, stdout: String, stderr: String)] {
    nonisolated(unsafe) var results = [(status: Int32, stdout: String, stderr: String)](repeating: (0, "", ""), count: jobs.count)
    let group = DispatchGroup()
    let lock = NSLock()
    for (i, job) in jobs.enumerated() {
        group.enter()
        Thread {
            let r = job.0.svirt(job.1)
            lock.lock()
            results[i] = r
            lock.unlock()
            group.leave()
        }.start()
    }
    group.wait()
    return results
}

/// Kills a process and reaps it.
func stop(_ p: Process) {
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}

/// Starts a program as the leader of a new process group; returns its pid (= the group id).
func spawnProcessGroup(_ path: String, _ args: [String]) throws -> pid_t {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attr, 0)
    let argv = ([path] + args).map { strdup($0) }
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, nil, &attr, argv + [nil], environ)
    guard rc == 0 else { throw TestFailure("cannot start \(path): \(rc)") }
    return pid
}
