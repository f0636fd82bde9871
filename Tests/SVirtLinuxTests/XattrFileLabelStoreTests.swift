import Foundation
import Glibc
import SELinux
import SVirt
import Testing
@testable import SVirtLinux

@Suite("labels on real files", .enabled(if: isRoot, "needs root for security.* and trusted.* attributes"))
struct XattrFileLabelStoreTests {
    let store = XattrFileLabelStore()

    func label(_ path: String) throws -> String? {
        try ExtendedAttributes.get("security.selinux", path: path).map(ExtendedAttributes.string)
    }

    @Test("a regular file, a FIFO and a socket are labelled through O_PATH descriptors")
    func kinds() throws {
        let dir = try ScratchDirectory()
        let file = try dir.file("image.img", "data")
        let fifo = "\(dir.path)/pipe.in"
        #expect(mkfifo(fifo, 0o600) == 0)
        let sock = "\(dir.path)/agent.sock"
        #expect(try run("/usr/bin/python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", sock]).status == 0)
        for (path, kind) in [(file, FileKind.regular), (fifo, .fifo), (sock, .socket), (dir.path, .directory)] {
            let f = try store.open(try store.resolve(path))
            #expect(f.kind == kind)
            try f.setSELinuxContext("system_u:object_r:svirt_image_t:s0:c1,c2")
            #expect(try f.selinuxContext() == "system_u:object_r:svirt_image_t:s0:c1,c2")
            #expect(try label(path) == "system_u:object_r:svirt_image_t:s0:c1,c2")
            try f.setAttribute("trusted.svirt.security.ref_selinux", Array("1".utf8))
            #expect(try ExtendedAttributes.get("trusted.svirt.security.ref_selinux", path: path) == Array("1".utf8))
            try f.removeAttribute("trusted.svirt.security.ref_selinux")
            try f.removeAttribute("trusted.svirt.security.ref_selinux")  // absent: not an error
            #expect(try ExtendedAttributes.get("trusted.svirt.security.ref_selinux", path: path) == nil)
        }
        // The FIFO was never opened for reading, which would have blocked.
        #expect(try store.open(fifo).filesystem != nil)
    }

    @Test("resolve follows symlinks to the canonical path, and a missing path is not-found")
    func resolve() throws {
        let dir = try ScratchDirectory()
        let file = try dir.file("real/image.img")
        try FileManager.default.createSymbolicLink(atPath: "\(dir.path)/link.img", withDestinationPath: "real/image.img")
        #expect(try store.resolve("\(dir.path)/link.img") == (try store.resolve(file)))
        #expect { try store.resolve("\(dir.path)/nope") } throws: { e in (e as? SVirtError)?.code == .notFound }
    }

    @Test("a symlink swapped in after the check, on the file or a directory above it, cannot redirect a label")
    func swappedSymlink() throws {
        let dir = try ScratchDirectory()
        let victim = try dir.file("victim", "host file")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:etc_t:s0".utf8), path: victim)
        let image = try dir.file("images/vm.img")
        let canonical = try store.resolve(image)
        // The image is replaced by a symlink to the victim between resolve and open.
        try FileManager.default.removeItem(atPath: image)
        try FileManager.default.createSymbolicLink(atPath: image, withDestinationPath: victim)
        #expect { try store.open(canonical) } throws: { e in
            (e as? SVirtError)?.message.contains("changed while svirt labelled it") == true
        }
        // The directory above is replaced by a symlink.
        let other = try dir.file("elsewhere/vm.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:etc_t:s0".utf8), path: other)
        try FileManager.default.removeItem(atPath: "\(dir.path)/images")
        try FileManager.default.createSymbolicLink(atPath: "\(dir.path)/images", withDestinationPath: "\(dir.path)/elsewhere")
        #expect { try store.open(canonical) } throws: { e in
            (e as? SVirtError)?.message.contains("changed while svirt labelled it") == true
        }
        #expect(try label(victim) == "system_u:object_r:etc_t:s0")
        #expect(try label(other) == "system_u:object_r:etc_t:s0")
    }

    @Test("a filesystem without xattrs (ramfs) is reported as unsupported, with the virt_use_nfs hint")
    func noXattrFilesystem() throws {
        let dir = try ScratchDirectory()
        let mnt = "\(dir.path)/ramfs"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        #expect(try run("/bin/mount", ["-t", "ramfs", "none", mnt]).status == 0)
        defer { _ = try? run("/bin/umount", [mnt]) }
        let img = "\(mnt)/nfs-like.img"
        #expect(FileManager.default.createFile(atPath: img, contents: Data([1, 2, 3])))
        let local = try dir.file("local.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0".utf8), path: local)
        let xml = """
            <domain type='kvm'><name>nfsvm</name><memory>65536</memory><devices>
              <disk type='file'><source file='\(img)'/><target dev='vda'/></disk>
              <disk type='file'><source file='\(local)'/><target dev='vdb'/></disk>
            </devices></domain>
            """
        let d = try DomainDefinition(xml: xml)
        let contexts = ContextsConfiguration.builtIn(reason: "test")
        let gen = LabelGenerator(contexts: contexts, manager: try SecurityContext(parsing: "system_u:system_r:virtd_t:s0-s0:c0.c1023"),
                                 pool: try CategoryPool(categoryCount: 1024))
        let vmLabel = try gen.generateLabel(for: d, level: try SecurityLevel(parsing: "s0:c7,c9")).label
        let plan = try LabelPlanner(contexts: contexts, host: LinuxHostInspector()).plan(for: d, label: vmLabel)
        let relabeler = Relabeler(store: store, defaults: FallbackDefaultLabels(contexts.restoreFallback.context), bootTime: 1)
        let report = try relabeler.labelAll(plan)
        guard case .unsupported(let why)? = report.unsupported.first?.outcome else {
            Issue.record("no unsupported outcome: \(report.items.map(\.outcome))")
            return
        }
        #expect(why.contains("(ramfs) does not support SELinux labels") && why.contains("virt_use_nfs"))
        #expect(try label(local) == "system_u:object_r:svirt_image_t:s0:c7,c9")
        _ = relabeler.restoreAll(plan)
        #expect(try label(local) == "system_u:object_r:virt_image_t:s0")
    }

    @Test("ls -Z (coreutils) shows the labels svirt set")
    func lsZ() throws {
        let dir = try ScratchDirectory()
        let file = try dir.file("Dynamic_VM1.img")
        try store.open(try store.resolve(file)).setSELinuxContext("system_u:object_r:svirt_image_t:s0:c585,c813")
        let out = try run("/bin/ls", ["-Z", file]).out
        #expect(out == "system_u:object_r:svirt_image_t:s0:c585,c813 \(file)\n")
    }
}
