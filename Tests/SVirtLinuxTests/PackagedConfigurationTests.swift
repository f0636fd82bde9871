import Foundation
import Testing
@testable import SVirt
@testable import SVirtLinux
import SVirtTestSupport

/// The `svirt.conf` the Debian package installs in /etc/svirt, and where svirt looks for it.
@Suite("The packaged svirt.conf") struct PackagedConfigurationTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/deb/svirt.conf").path

    @Test("as shipped, every key commented out, it gives the defaults")
    func defaults() throws {
        let text = try String(contentsOfFile: Self.shipped, encoding: .utf8)
        #expect(try SVirtConfiguration.parse(text, path: Self.shipped) == SVirtConfiguration())
    }

    @Test("it names every key svirt reads, and each example value parses when uncommented")
    func everyKey() throws {
        let text = try String(contentsOfFile: Self.shipped, encoding: .utf8)
        for key in SVirtConfiguration.knownKeys {
            #expect(text.contains("\n#\(key) = "), "packaging/deb/svirt.conf lacks \(key)")
        }
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in
                let key = line.dropFirst().prefix { $0 != " " }
                return line.hasPrefix("#") && SVirtConfiguration.knownKeys.contains(String(key)) ? String(line.dropFirst()) : String(line)
            }
            .joined(separator: "\n")
        let c = try SVirtConfiguration.parse(uncommented, path: Self.shipped)
        #expect(c.categories?.description == "s0:c0.c1023")
        #expect(c.coolDownSeconds == 3600)
        #expect(c.registryTimeoutSeconds == 10 && c.hostLeaseSeconds == 10)
        #expect(c.emulators == ["/opt/qemu/bin/qemu-system-x86_64"])
    }

    @Test("only root's state directory without its own svirt.conf reads /etc/svirt/svirt.conf")
    func path() throws {
        let dir = try temporaryDirectory(prefix: "svirt-conf-path")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(StateDirectory(path: dir).configurationPath == "\(dir)/svirt.conf")
        let system = StateDirectory(path: StateDirectory.systemPath)
        let own = "\(StateDirectory.systemPath)/svirt.conf"
        #expect(system.configurationPath == (FileManager.default.fileExists(atPath: own) ? own : "/etc/svirt/svirt.conf"))
    }
}
