import Foundation
import SELinux
import SVirt
import SVirtLinux
import Testing

@Suite("the host's file_contexts", .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/contexts/files/file_contexts"),
                                            "needs selinux-policy-default"))
struct FileContextsHostTests {
    @Test("the Debian policy labels libvirt images virt_image_t, and the aliases and <<none>> lines apply")
    func debianDefaults() throws {
        let host = try HostSELinuxConfiguration.load(root: "/etc/selinux")
        let fc = try #require(try host.loadFileContexts())
        #expect(fc.files.first == host.fileContextsPath)
        #expect(fc.context(for: "/var/lib/libvirt/images/x.img", fileType: .regular)?.description
                == "system_u:object_r:virt_image_t:s0")
        #expect(fc.context(for: "/var/lib/libvirt/images", fileType: .directory)?.type == "virt_image_t")
        // /var/run is an alias of /run in file_contexts.subs_dist, and /run/.* is <<none>>.
        #expect(fc.lookup("/var/run/x").rawContext == fc.lookup("/run/x").rawContext)
        if case .noLabel = fc.lookup("/tmp/anything") {} else { Issue.record("/tmp/anything should be <<none>>") }
        #expect(fc.context(for: "/lib64/ld-linux-x86-64.so.2") == fc.context(for: "/usr/lib/ld-linux-x86-64.so.2"))
    }

    @Test("as the driver's default label source, file_contexts gives restore the image default and nil for <<none>>")
    func driverDefaults() throws {
        let fc = try FileContexts.loadHost(root: "/etc/selinux")
        let source: any DefaultLabelSource = fc
        #expect(try source.defaultLabel(for: "/var/lib/libvirt/images/x.img", kind: .regular)?.description
                == "system_u:object_r:virt_image_t:s0")
        #expect(try source.defaultLabel(for: "/tmp/guest.img", kind: .regular) == nil)
        #expect(try source.defaultLabel(for: "/dev/kvm", kind: .characterDevice)?.type == "kvm_device_t")
        #expect(FileType(FileKind.fifo) == .namedPipe)
        #expect(FileType(FileKind.unknown) == nil)
    }

    @Test("loadHost reads the policy that the config file names, and says so when there is none")
    func loadHost() throws {
        let fc = try FileContexts.loadHost(root: "/etc/selinux")
        #expect(fc.count > 1_000)
        let empty = NSTemporaryDirectory() + "svirt-noselinux-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: SELinuxError.self) { try FileContexts.loadHost(root: empty) }
    }
}
