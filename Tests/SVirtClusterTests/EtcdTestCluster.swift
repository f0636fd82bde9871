import Foundation
import Glibc

/// A throwaway etcd cluster on 127.0.0.1 for tests: members on free ports, data in a temporary directory
/// (on /dev/shm when there is one), stopped and removed by `stop()`.
final class EtcdTestCluster: @unchecked Sendable {
    struct Member {
        var name: String
        var clientPort: Int
        var peerPort: Int
        var process: Process?
    }
    let directory: String
    var members: [Member]
    let tls: TLSFiles?

    struct TLSFiles {
        var ca: String, serverCert: String, serverKey: String, clientCert: String, clientKey: String
    }

    /// The registry URL of the live members.
    var url: String {
        (tls == nil ? "etcd://" : "etcds://") + members.map { "127.0.0.1:\($0.clientPort)" }.joined(separator: ",")
    }

    init(size: Int, tls: Bool = false) throws {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        directory = "\(base)/svirt-etcd-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var ports = try freePorts(2 * size)
        members = (0..<size).map { i in Member(name: "m\(i)", clientPort: ports.removeFirst(), peerPort: ports.removeFirst()) }
        self.tls = tls ? try Self.makeCertificates(in: directory) : nil
        for i in members.indices { try start(i) }
        try waitHealthy(members.indices.map { $0 })
    }

    private var initialCluster: String {
        members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
    }

    func start(_ i: Int) throws {
        let m = members[i]
        let scheme = tls == nil ? "http" : "https"
        var args = [
            "--name", m.name, "--data-dir", "\(directory)/\(m.name)",
            "--listen-client-urls", "\(scheme)://127.0.0.1:\(m.clientPort)",
            "--advertise-client-urls", "\(scheme)://127.0.0.1:\(m.clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", (directory as NSString).lastPathComponent,
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]
        if let t = tls {
            args += ["--cert-file", t.serverCert, "--key-file", t.serverKey, "--client-cert-auth", "--trusted-ca-file", t.ca]
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        p.arguments = args
        let log = FileHandle(forWritingAtPath: logPath(i)) ?? {
            _ = FileManager.default.createFile(atPath: logPath(i), contents: nil)
            return FileHandle(forWritingAtPath: logPath(i))
        }()
        log?.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        members[i].process = p
    }

    func logPath(_ i: Int) -> String { "\(directory)/\(members[i].name).log" }

    /// SIGKILLs member `i`.
    func kill(_ i: Int) {
        guard let p = members[i].process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        members[i].process = nil
    }

    /// Restarts a killed member from its data directory.
    func restart(_ i: Int) throws {
        try start(i)
    }

    /// Waits until the given members answer /health with a leader.
    func waitHealthy(_ indices: [Int], timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        for i in indices {
            while true {
                if etcdctl(i, ["endpoint", "health"]).status == 0 { break }
                if Date() > deadline {
                    let log = (try? String(contentsOfFile: logPath(i), encoding: .utf8)) ?? ""
                    throw TestFailure("etcd member \(members[i].name) did not become healthy: \(log.suffix(2000))")
                }
                usleep(100_000)
            }
        }
    }

    /// Runs etcdctl against member `i`.
    @discardableResult
    func etcdctl(_ i: Int, _ args: [String]) -> (status: Int32, output: String) {
        var full = ["--endpoints", "\(tls == nil ? "http" : "https")://127.0.0.1:\(members[i].clientPort)",
                    "--dial-timeout", "1s", "--command-timeout", "2s"]
        if let t = tls { full += ["--cacert", t.ca, "--cert", t.clientCert, "--key", t.clientKey] }
        return run("/usr/bin/etcdctl", full + args, environment: ["ETCDCTL_API": "3"])
    }

    func stop() {
        for i in members.indices { kill(i) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func makeCertificates(in dir: String) throws -> TLSFiles {
        func ssl(_ args: [String]) throws {
            let r = run("/usr/bin/openssl", args)
            guard r.status == 0 else { throw TestFailure("openssl \(args.joined(separator: " ")) failed: \(r.output)") }
        }
        let d = dir
        try ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem",
                 "-days", "1", "-subj", "/CN=svirt-test-ca"])
        for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth"),
                            ("client", "extendedKeyUsage=clientAuth")] {
            try ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/\(name).key", "-out", "\(d)/\(name).csr",
                     "-subj", "/CN=svirt-\(name)"])
            try ext.write(toFile: "\(d)/\(name).ext", atomically: true, encoding: .utf8)
            try ssl(["x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key",
                     "-CAcreateserial", "-out", "\(d)/\(name).pem", "-days", "1", "-extfile", "\(d)/\(name).ext"])
        }
        return TLSFiles(ca: "\(d)/ca.pem", serverCert: "\(d)/server.pem", serverKey: "\(d)/server.key",
                        clientCert: "\(d)/client.pem", clientKey: "\(d)/client.key")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Free TCP ports on 127.0.0.1, as the kernel hands them out.
func freePorts(_ n: Int) throws -> [Int] {
    var fds: [Int32] = []
    defer { for fd in fds { close(fd) } }
    var out: [Int] = []
    for _ in 0..<n {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        fds.append(fd)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        guard ok else { throw TestFailure("bind failed") }
        out.append(Int(UInt16(bigEndian: addr.sin_port)))
    }
    return out
}

/// Runs a program to completion and returns its status and combined output.
@discardableResult
func run(_ path: String, _ args: [String], environment: [String: String] = [:]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
