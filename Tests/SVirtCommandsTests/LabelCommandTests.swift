import Foundation
import Glibc
import SVirtLinux
import Testing

/// `svirt` must have been built: `swift test` builds it, and a missing binary is a failure, never a skip.
func requireSVirt() throws {
    try #require(FileManager.default.isExecutableFile(atPath: svirtBinary),
                 "no svirt binary at \(svirtBinary): build the package first (swift build)")
}

enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Golden").path
}

/// Runs a program; its status is 128+N when it was killed by signal N.
@discardableResult
func run(_ program: String, _ args: [String]) throws -> CLIResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    return CLIResult(status: status, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func scratch(_ prefix: String) throws -> String {
    var t = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let p = mkdtemp(&t) else { throw POSIXError(.EIO) }
    return String(cString: p)
}

func xattr(_ name: String, _ path: String) -> String? {
    (try? ExtendedAttributes.get(name, path: path)).flatMap { $0.map(ExtendedAttributes.string) }
}

func attributeNames(_ path: String) throws -> [String] {
    try ExtendedAttributes.list(path: path).sorted()
}

@Suite("svirt label")
struct LabelCommandTests {
    @Test("label plan prints the golden plan of each chapter VM", arguments: [
        ("Dynamic_VM1", "s0:c585,c813"), ("Dynamic_VM2", "s0:c535,c601"), ("Shareable_VM", "s0:c231,c245"), ("Static_VM1", "s0:c1,c2"),
    ])
    func plan(name: String, level: String) throws {
        try requireSVirt()
        let state = try scratch("svirt-plan")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let r = try svirt(["label", "plan", "--state-dir", state, "--selinux-root", "/etc/selinux", "\(Golden.directory)/\(name).xml", "--level", level])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == (try String(contentsOfFile: "\(Golden.directory)/\(name).plan", encoding: .utf8)))
    }

    @Test("label plan --live uses the labels written in live XML; without --live they are dropped with a warning, as libvirt drops them")
    func live() throws {
        try requireSVirt()
        let dir = try scratch("svirt-live")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xml = """
            <domain type='kvm'><name>live</name><memory>65536</memory><devices>
            <disk type='file'><source file='/var/lib/libvirt/images/live.img'/><target dev='vda'/></disk></devices>
            <seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c41,c264</label>
            <imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel></seclabel></domain>
            """
        try xml.write(toFile: "\(dir)/live.xml", atomically: true, encoding: .utf8)
        let ok = try svirt(["label", "plan", "--state-dir", dir, "--live", "\(dir)/live.xml"])
        #expect(ok.stdout == "/var/lib/libvirt/images/live.img;system_u:object_r:svirt_image_t:s0:c41,c264\n")
        let inactive = try svirt(["label", "plan", "--state-dir", dir, "\(dir)/live.xml", "--level", "s0:c1,c2"])
        #expect(inactive.stderr.contains("is dropped, as libvirt drops it at define"), "\(inactive.stderr)")
        #expect(inactive.status == 0 && inactive.stdout.contains("svirt_image_t:s0:c1,c2") && !inactive.stdout.contains("c41,c264"),
                "\(inactive.stdout)")
    }

    @Test("label plan --verbose adds the labels and a table; --json gives every field")
    func verboseAndJSON() throws {
        try requireSVirt()
        let state = try scratch("svirt-plan")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let v = try svirt(["label", "plan", "--state-dir", state, "\(Golden.directory)/Dynamic_VM1.xml", "--level", "s0:c1,c2", "--verbose"])
        #expect(v.stdout.contains("Process label:   system_u:system_r:svirt_t:s0:c1,c2"))
        #expect(v.stdout.contains("disk 'hda'") && v.stdout.contains("recall"))
        let j = try svirt(["label", "plan", "--state-dir", state, "\(Golden.directory)/Shareable_VM.xml", "--level", "s0:c1,c2", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        let entries = obj?["entries"] as? [[String: Any]]
        #expect(entries?.first?["context"] as? String == "system_u:object_r:svirt_image_t:s0")
        #expect(entries?.first?["restore"] as? String == "leave")
        #expect((obj?["label"] as? [String: Any])?["process"] as? String == "system_u:system_r:svirt_t:s0:c1,c2")
    }

    @Test("label apply and restore round-trip the labels of real files, and the level is released",
          .enabled(if: getuid() == 0, "needs root"))
    func applyRestore() throws {
        try requireSVirt()
        let dir = try scratch("svirt-apply")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = "\(dir)/vm.img"
        #expect(FileManager.default.createFile(atPath: img, contents: Data(count: 4096)))
        #expect(try run("/usr/bin/setfattr", ["-n", "security.selinux", "-v", "unconfined_u:object_r:user_home_t:s0", img]).status == 0)
        try """
            <domain type='kvm'><name>apply-vm</name><memory>65536</memory><devices>
            <disk type='file'><source file='\(img)'/><target dev='vda'/></disk></devices></domain>
            """.write(toFile: "\(dir)/vm.xml", atomically: true, encoding: .utf8)
        let applied = try svirt(["label", "apply", "--state-dir", "\(dir)/state", "\(dir)/vm.xml", "--level", "s0:c17,c71"])
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(try run("/bin/ls", ["-Z", img]).stdout == "system_u:object_r:svirt_image_t:s0:c17,c71 \(img)\n")
        #expect(try svirt(["mcs", "list", "--state-dir", "\(dir)/state"]).stdout.contains("apply-vm"))
        let restored = try svirt(["label", "restore", "--state-dir", "\(dir)/state", "\(dir)/vm.xml"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try run("/bin/ls", ["-Z", img]).stdout == "unconfined_u:object_r:user_home_t:s0 \(img)\n")
        #expect(try attributeNames(img) == ["security.selinux"])
        #expect(!(try svirt(["mcs", "list", "--state-dir", "\(dir)/state"]).stdout.contains("apply-vm")))
    }

    @Test("label apply refuses a host system path and says why", .enabled(if: getuid() == 0, "needs root"))
    func systemPath() throws {
        try requireSVirt()
        let dir = try scratch("svirt-sys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            <domain type='kvm'><name>bad</name><memory>65536</memory><os><type>hvm</type><kernel>/etc/hostname</kernel></os></domain>
            """.write(toFile: "\(dir)/vm.xml", atomically: true, encoding: .utf8)
        let before = xattr("security.selinux", "/etc/hostname")
        let r = try svirt(["label", "apply", "--state-dir", "\(dir)/state", "\(dir)/vm.xml"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("kernel: refusing to relabel /etc/hostname: /etc/hostname is part of the host system (under /etc)"))
        #expect(xattr("security.selinux", "/etc/hostname") == before)
        #expect(!(try svirt(["mcs", "list", "--state-dir", "\(dir)/state"]).stdout.contains("bad")))
    }
}

/// The crash-safety acceptance test: the real `svirt label apply` of a 20-disk domain is SIGKILLed after each
/// single xattr write (strace injects SIGKILL on entry to the n-th setxattr, so exactly n-1 writes happened),
/// then `svirt label restore` must give every file its exact original label.
@Suite("crash safety of svirt label apply", .enabled(if: getuid() == 0, "needs root"))
struct CrashSafetyTests {
    static let originals = [
        "system_u:object_r:virt_image_t:s0", "unconfined_u:object_r:user_home_t:s0", "system_u:object_r:tmp_t:s0",
        "system_u:object_r:virt_content_t:s0", "staff_u:object_r:staff_home_t:s0:c3", "system_u:object_r:default_t:s0",
        "system_u:object_r:svirt_image_t:s0", "system_u:object_r:nfs_t:s0", "system_u:object_r:var_lib_t:s0",
        "unconfined_u:object_r:admin_home_t:s0:c0.c1023",
    ]

    @Test("after a SIGKILL at every xattr write of a 20-disk apply, restore brings back every exact original label")
    func killAtEveryWrite() throws {
        try requireSVirt()
        // .ci/run installs strace; without it the acceptance test fails rather than skips.
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "install strace (apt-get install strace)")
        let dir = try scratch("svirt-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = "\(dir)/state"
        var images: [(String, String)] = []
        for i in 0..<20 {
            let path = "\(dir)/disk\(i).img"
            images.append((path, Self.originals[i % Self.originals.count]))
        }
        let disks = images.enumerated().map { i, img in
            "<disk type='file'><driver name='qemu' type='raw'/><source file='\(img.0)'/><target dev='vd\(String(UnicodeScalar(UInt8(97 + i))))'/></disk>"
        }.joined(separator: "\n")
        try "<domain type='kvm'><name>crash20</name><memory>65536</memory><devices>\n\(disks)\n</devices></domain>"
            .write(toFile: "\(dir)/vm.xml", atomically: true, encoding: .utf8)

        func reset() throws {
            for (path, label) in images {
                #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 512)))
                for name in try attributeNames(path) where name.hasPrefix("trusted.") {
                    try ExtendedAttributes.remove(name, path: path)
                }
                try ExtendedAttributes.set("security.selinux", value: Array(label.utf8) + [0], path: path)
            }
        }
        func checkOriginals(_ when: String) throws {
            for (path, label) in images {
                #expect(xattr("security.selinux", path) == label, "\(when): \(path)")
                #expect(try attributeNames(path) == ["security.selinux"], "\(when): \(path) keeps svirt records")
            }
        }
        /// Restores, and checks that the level the killed apply had reserved was released.
        func restore(_ when: String) throws {
            let r = try svirt(["label", "restore", "--json", "--state-dir", state, "\(dir)/vm.xml"])
            #expect(r.status == 0, "restore \(when): \(r.stderr)")
            let released = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["released"] as? [String]
            #expect(released?.count == 1, "restore \(when) released \(released ?? [])")
        }

        // How many setxattr calls a whole apply makes: 5 per disk (original, timestamp, holders, refcount, label).
        try reset()
        let writes = 5 * images.count
        let whole = try run("/usr/bin/strace", ["-f", "-o", "/dev/null", "-e", "inject=setxattr:signal=KILL:when=\(writes + 1)",
                                                svirtBinary, "label", "apply", "--state-dir", state, "\(dir)/vm.xml"])
        #expect(whole.status == 0, "an apply makes exactly \(writes) writes: \(whole.stderr)")
        for (path, _) in images { #expect(xattr("security.selinux", path)?.hasPrefix("system_u:object_r:svirt_image_t:s0:c") == true) }
        try restore("after a full apply")
        try checkOriginals("after a full apply")

        for n in 1...writes {
            try reset()
            let killed = try run("/usr/bin/strace", ["-f", "-o", "/dev/null", "-e", "inject=setxattr:signal=KILL:when=\(n)",
                                                     svirtBinary, "label", "apply", "--state-dir", state, "\(dir)/vm.xml"])
            #expect(killed.status == 128 + SIGKILL, "apply was not killed at write \(n): \(killed.status) \(killed.stderr)")
            // The first n-1 writes happened: the disk being written when the kill came has its first (n-1) % 5 record attributes.
            let (disk, done) = ((n - 1) / 5, (n - 1) % 5)
            #expect(try attributeNames(images[disk].0).filter { $0.hasPrefix("trusted.") }.count == done, "kill at write \(n)")
            try restore("after a kill at write \(n)")
            try checkOriginals("kill at write \(n)")
        }
        #expect(!(try svirt(["mcs", "list", "--json", "--state-dir", state]).stdout.contains("crash20")), "a level is still reserved")
    }
}
