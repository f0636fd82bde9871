import Foundation
import Glibc
import Testing

@Suite("etcd registry security: TLS client certificates and etcd auth", .serialized,
       .enabled(if: etcdInstalled && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
                "needs etcd-server, etcd-client and openssl"))
struct EtcdSecurityTests {
    @Test("a TLS cluster with client-certificate auth serves svirt with --registry-cert/--registry-key/--registry-ca and refuses it without")
    func tlsClientCertificates() throws {
        let cluster = try EtcdTestCluster(size: 1, tls: true)
        defer { cluster.stop() }
        guard let tls = cluster.tls else { throw TestFailure("no TLS files") }
        let host = try TestHost(id: "tls-host", cluster: cluster)
        let keeper = try host.startKeeper()
        defer { stop(keeper) }
        try host.waitRegistered()
        let ok = host.svirt(["mcs", "allocate", "--owner", "tls-vm", "--count", "3"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(printedLevels([ok]).count == 3)

        // The same through the command-line options instead of svirt.conf.
        let bare = "\(cluster.directory)/bare"
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        try "categories = c0.c1023\nhost_id = tls-host\nregistry_timeout_seconds = 3\n".write(
            toFile: "\(bare)/svirt.conf", atomically: true, encoding: .utf8)
        let viaFlags = run(svirtBinary, ["mcs", "list", "--cluster", "--json", "--state-dir", bare, "--registry", cluster.url,
                                         "--registry-ca", tls.ca, "--registry-cert", tls.clientCert, "--registry-key", tls.clientKey])
        #expect(viaFlags.status == 0, "\(viaFlags.output)")
        #expect(viaFlags.output.contains("tls-vm"))

        // Without a client certificate the member refuses the handshake: a clear error, nothing reserved.
        let noCert = run(svirtBinary, ["mcs", "allocate", "--owner", "x", "--state-dir", bare, "--registry", cluster.url,
                                       "--registry-ca", tls.ca])
        #expect(noCert.status != 0)
        #expect(noCert.output.contains("TLS") || noCert.output.contains("unreachable"), "\(noCert.output)")
        #expect(noCert.output.contains("127.0.0.1:\(cluster.members[0].clientPort)"))
        // A certificate without its key is a usage error that names the fix.
        let noKey = run(svirtBinary, ["mcs", "list", "--cluster", "--state-dir", bare, "--registry", cluster.url,
                                      "--registry-ca", tls.ca, "--registry-cert", tls.clientCert])
        #expect(noKey.status != 0)
        #expect(noKey.output.contains("--registry-key"))
    }

    @Test("a cluster with etcd auth enabled serves svirt with --registry-user and a password file, and refuses a wrong password")
    func etcdAuth() throws {
        let cluster = try EtcdTestCluster(size: 1)
        defer { cluster.stop() }
        #expect(cluster.etcdctl(0, ["user", "add", "root:s3cret-root"]).status == 0)
        #expect(cluster.etcdctl(0, ["user", "add", "svirt:s3cret"]).status == 0)
        #expect(cluster.etcdctl(0, ["role", "add", "svirt"]).status == 0)
        #expect(cluster.etcdctl(0, ["role", "grant-permission", "svirt", "--prefix=true", "readwrite", "/svirt/"]).status == 0)
        #expect(cluster.etcdctl(0, ["user", "grant-role", "svirt", "svirt"]).status == 0)
        #expect(cluster.etcdctl(0, ["auth", "enable"]).status == 0)
        let password = "\(cluster.directory)/password"
        try "s3cret\n".write(toFile: password, atomically: true, encoding: .utf8)
        let host = try TestHost(id: "auth-host", cluster: cluster,
                                extraConfig: "registry_user = svirt\nregistry_password_file = \(password)\n")
        let keeper = try host.startKeeper()
        defer { stop(keeper) }
        try host.waitRegistered()
        let ok = host.svirt(["mcs", "allocate", "--owner", "auth-vm"])
        #expect(ok.status == 0, "\(ok.stderr)")

        let wrong = "\(cluster.directory)/wrong"
        try "nope\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let refused = host.svirt(["mcs", "allocate", "--owner", "x", "--registry-password-file", wrong])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("authentication failed") || refused.stderr.contains("auth"), "\(refused.stderr)")
    }
}
