import Foundation
import SELinux
import SVirt
import Testing
@testable import SVirtCluster

@Suite("registry configuration")
struct RegistryConfigurationTests {
    @Test("etcd URLs parse into endpoints, and bad ones are refused with the fix")
    func parseURLs() throws {
        let c = try EtcdConfiguration.parse("etcd://127.0.0.1:2379,host2:2380,[::1]:2381", source: "--registry")
        #expect(c.endpoints == ["127.0.0.1:2379", "host2:2380", "[::1]:2381"])
        #expect(!c.useTLS)
        #expect(try EtcdConfiguration.parse("etcds://h:1", source: "x").useTLS)
        for bad in ["http://h:1", "etcd://", "etcd://h", "etcd://h:0", "etcd://h:99999", "etcd://u:p@h:1", "etcd://h:1,,h:2",
                    "etcd://h:1/prefix"] {
            #expect(throws: SVirtError.self) { try EtcdConfiguration.parse(bad, source: "--registry") }
        }
        do {
            _ = try EtcdConfiguration.parse("etcd://h", source: "svirt.conf:3")
            Issue.record("no error")
        } catch let e as SVirtError {
            #expect(e.message.contains("svirt.conf:3"))
            #expect(e.message.contains("h:2379"))
        }
    }

    @Test("svirt.conf's registry keys are read, and bad values name the line")
    func configurationKeys() throws {
        let text = """
            registry = etcd://10.0.0.1:2379
            registry_ca = /etc/svirt/ca.pem
            registry_cert = /etc/svirt/c.pem
            registry_key = /etc/svirt/k.pem
            registry_user = svirt
            registry_password_file = /etc/svirt/pw
            registry_timeout_seconds = 7
            host_id = hv-01
            host_lease_seconds = 4
            """
        let c = try SVirtConfiguration.parse(text, path: "svirt.conf")
        #expect(c.registry == "etcd://10.0.0.1:2379")
        #expect(c.registrySource == "svirt.conf:1")
        #expect(c.registryCA == "/etc/svirt/ca.pem")
        #expect(c.registryCertificate == "/etc/svirt/c.pem")
        #expect(c.registryKey == "/etc/svirt/k.pem")
        #expect(c.registryUser == "svirt")
        #expect(c.registryPasswordFile == "/etc/svirt/pw")
        #expect(c.registryTimeoutSeconds == 7)
        #expect(c.hostID == "hv-01")
        #expect(c.hostLeaseSeconds == 4)
        for (bad, needle) in [("registry = mysql://x", "etcd://"), ("host_id = a/b", "host_id"),
                              ("registry_ca = relative.pem", "absolute"), ("host_lease_seconds = 0", "1 to 3600")] {
            do {
                _ = try SVirtConfiguration.parse("# c\n" + bad, path: "svirt.conf")
                Issue.record("accepted \(bad)")
            } catch let e as SVirtError {
                #expect(e.message.hasPrefix("svirt.conf:2:"))
                #expect(e.message.contains(needle))
            }
        }
    }

    @Test("pairs are keyed by their categories alone, so comparable pairs share a key; other levels by their text")
    func keys() throws {
        let a = try SecurityLevel(parsing: "s0:c12,c800"), b = try SecurityLevel(parsing: "s1:c800,c12")
        #expect(RegistryKeys.key(for: a) == "/svirt/v1/levels/pair/c12,c800")
        #expect(RegistryKeys.key(for: a) == RegistryKeys.key(for: b))
        #expect(RegistryKeys.key(for: try SecurityLevel(parsing: "s0:c5")) == "/svirt/v1/levels/other/s0:c5")
        #expect(RegistryKeys.key(for: try SecurityLevel(parsing: "s0:c1.c3")) == "/svirt/v1/levels/other/s0:c1.c3")
        #expect(EtcdLevelRegistry.level(fromKey: RegistryKeys.key(for: a)) == a)
    }

    @Test("a prefix's range end is the prefix with its last byte raised")
    func rangeEnd() {
        #expect(prefixEnd("/svirt/v1/") == Data("/svirt/v10".utf8))
    }
}
