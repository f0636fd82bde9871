import Foundation
import Glibc
import Testing
@testable import SVirtLinux

/// The filesystems svirt writes to, in the states a host reaches: the state directory full (at every point of a
/// start, not only before it) or mounted read-only, an image's filesystem with no room for svirt's record, and an
/// image deleted while its VM runs. Each gives an error naming the filesystem or file and the fix (never "the
/// registry is damaged, move it aside" for a disk that is only full), and nothing is lost: once the filesystem is
/// writable again, every file has its original label and owner, or the VM's while the registry says it runs.
@Suite("hostile filesystems: full, read-only, deleted under a running VM", .serialized,
       .enabled(if: isRoot && (try? Landlock.ABI.current()) != nil, "needs root (mounts) and Landlock"))
struct HostileFilesystemTests {
    static let original = "system_u:object_r:virt_image_t:s0"

    /// A scratch host whose state directory is a small tmpfs of its own, and one VM with one image outside it.
    final class Host {
        let dir: String
        let state: String
        let image: String
        let name: String

        init(name: String = "hostile", stateSize: String = "2m") throws {
            self.name = name
            dir = try scratch("svirt-hostile")
            chmod(dir, 0o755)
            state = "\(dir)/state"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let m = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(stateSize),mode=0700", "tmpfs", state])
            guard m.status == 0 else { throw SVirtTestFailure("mount tmpfs: \(m.stderr)") }
            try "user = nobody\n".write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8)
            image = "\(dir)/disk.img"
            try write(domain: name, image: image)
        }

        deinit {
            _ = try? run("/bin/umount", ["-l", state])
            try? FileManager.default.removeItem(atPath: dir)
        }

        func write(domain: String, image: String) throws {
            try """
                <domain type='qemu'><name>\(domain)</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
                <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
                <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(image)'/>\
                <target dev='vda' bus='virtio'/></disk></devices></domain>
                """.write(toFile: "\(dir)/\(domain).xml", atomically: true, encoding: .utf8)
        }

        /// The image as a user left it: its own label and owner, no svirt record.
        func reset(_ path: String? = nil) throws {
            let p = path ?? image
            _ = FileManager.default.createFile(atPath: p, contents: Data(count: 1 << 16))
            for a in try attributeNames(p) where a.hasPrefix("trusted.") { try ExtendedAttributes.remove(a, path: p) }
            try ExtendedAttributes.set("security.selinux", value: Array(HostileFilesystemTests.original.utf8) + [0], path: p)
            chown(p, 4242, 4343)
        }

        func svirtHere(_ args: [String]) throws -> CLIResult { try svirt(args + ["--state-dir", state]) }

        /// Fills the state filesystem until `leaving` bytes (rounded to its pages) are free.
        func fill(leaving: UInt64 = 0) throws {
            unfill()
            var s = statvfs()
            guard statvfs(state, &s) == 0 else { throw SVirtTestFailure("statvfs \(state)") }
            let free = UInt64(s.f_bavail) * UInt64(s.f_frsize)
            guard free > leaving else { return }
            let fd = open("\(state)/filler", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SVirtTestFailure("create filler") }
            defer { close(fd) }
            let rc = posix_fallocate(fd, 0, off_t(free - leaving))
            guard rc == 0 else { throw SVirtTestFailure("fallocate: \(String(cString: strerror(rc)))") }
        }

        func unfill() { unlink("\(state)/filler") }

        /// Makes the state directory read-only (a read-only bind mount over it, as a remount would, but allowed while
        /// a running VM's log is open for writing), or writable again.
        func remount(readOnly: Bool) throws {
            let steps = readOnly ? [["--bind", state, state], ["-o", "remount,ro,bind", state]] : [["-u", state]]
            for args in steps {
                let r = try run(args[0] == "-u" ? "/bin/umount" : "/bin/mount", args[0] == "-u" ? [state] : args)
                guard r.status == 0 else { throw SVirtTestFailure("\(args): \(r.stderr)") }
            }
        }

        func owner(_ path: String) -> (UInt32, UInt32) {
            var st = stat()
            stat(path, &st)
            return (st.st_uid, st.st_gid)
        }

        /// The image has its own label and owner and carries no svirt record; no level is reserved.
        func expectPristine(_ when: String, _ path: String? = nil) throws {
            let p = path ?? image
            #expect(xattr("security.selinux", p) == HostileFilesystemTests.original, "\(when): label of \(p)")
            #expect(owner(p) == (4242, 4343), "\(when): owner of \(p) is \(owner(p))")
            #expect(try attributeNames(p).filter { $0.hasPrefix("trusted.") }.isEmpty, "\(when): \(p) keeps svirt records")
            let levels = try svirtHere(["mcs", "list", "--json"])
            #expect(levels.status == 0 && !levels.stdout.contains("\"\(name)\""), "\(when): a level is still reserved: \(levels.stdout) \(levels.stderr)")
        }

        /// The image has the VM's label and owner and svirt's record of the original.
        func expectLabelledForVM(_ when: String) throws {
            #expect(xattr("security.selinux", image)?.hasPrefix("system_u:object_r:svirt_image_t:s0:c") == true,
                    "\(when): label \(xattr("security.selinux", image) ?? "none")")
            #expect(owner(image) == (65534, 65534), "\(when): owner \(owner(image))")
            #expect(xattr("trusted.svirt.security.selinux", image) == HostileFilesystemTests.original, "\(when): record")
        }

        func state(of domain: String) throws -> String {
            let r = try svirtHere(["dominfo", domain])
            let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("State:") } ?? ""
            return line.dropFirst("State:".count).trimmingCharacters(in: .whitespaces)
        }
    }

    /// What a full state filesystem must be called, and what it must never be called.
    static func expectFullMessage(_ r: CLIResult, _ when: String) {
        #expect(r.status != 0, "\(when): succeeded on a full filesystem")
        #expect(r.stderr.contains("is full") && r.stderr.contains("free space on it"), "\(when): \(r.stderr)")
        #expect(!r.stderr.contains("move it aside") && !r.stderr.contains(".broken"),
                "\(when): a full disk was reported as a damaged registry: \(r.stderr)")
    }

    @Test("a full state directory: start and destroy refuse, naming the full filesystem and the fix (never a damaged registry); with space again they finish, and nothing was lost")
    func fullStateDirectory() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/\(h.name).xml"]).status == 0)

        try h.fill()
        Self.expectFullMessage(try h.svirtHere(["start", h.name, "--stand-in"]), "start on a full state directory")
        Self.expectFullMessage(try h.svirtHere(["list", "--all"]), "list on a full state directory")
        h.unfill()
        try h.expectPristine("after a start refused for a full disk")

        let started = try h.svirtHere(["start", h.name, "--stand-in"])
        #expect(started.status == 0, "start: \(started.stderr)")
        try h.fill()
        Self.expectFullMessage(try h.svirtHere(["destroy", h.name]), "destroy on a full state directory")
        h.unfill()
        // The refused destroy changed nothing: the VM still runs with its labels.
        #expect(try h.state(of: h.name) == "running")
        try h.expectLabelledForVM("after a destroy refused for a full disk")
        let destroyed = try h.svirtHere(["destroy", h.name])
        #expect(destroyed.status == 0, "destroy: \(destroyed.stderr)")
        try h.expectPristine("after destroy with space again")
    }

    /// Runs `command` once for each amount of free space on the state filesystem, from none up in 4 KiB steps, until
    /// it succeeds; `prepare` readies the VM before each run. After each failure the space comes back, `svirt list`
    /// reconciles, and `afterFailure` checks what is left. Returns the failing points and the space that sufficed.
    func atEveryFullness(_ h: Host, _ command: [String], prepare: () throws -> Void,
                         afterFailure: (CLIResult, String) throws -> Void) throws -> (failures: Int, succeededAt: UInt64?) {
        var failures = 0
        for leaving in stride(from: UInt64(0), through: 1 << 20, by: 4096) {
            try h.reset()
            try prepare()
            try h.fill(leaving: leaving)
            let r = try h.svirtHere(command)
            h.unfill()
            let when = "\(command[0]) with \(leaving) bytes free"
            if r.status == 0 { return (failures, leaving) }
            failures += 1
            #expect(!r.stderr.contains("move it aside"), "\(when): called the registry damaged: \(r.stderr)")
            let list = try h.svirtHere(["list", "--all"])
            #expect(list.status == 0, "list after the \(when): \(list.stderr)")
            try afterFailure(r, when)
        }
        return (failures, nil)
    }

    @Test("the state directory runs out of space at every point of a start in turn: each failed start is given back by the next command once there is space, and no message calls the registry damaged")
    func fullAtEveryPointOfStart() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/\(h.name).xml"]).status == 0)
        let (failures, succeededAt) = try atEveryFullness(h, ["start", h.name, "--stand-in"], prepare: {}) { r, when in
            #expect(r.stderr.contains("is full") || r.stderr.contains("No space left"), "\(when): \(r.stderr)")
            // The next command reconciled whatever the failed start left (a row it could not remove).
            #expect(try h.state(of: h.name) == "shut off", "\(when)")
            try h.expectPristine("after a \(when)")
        }
        #expect(try h.svirtHere(["destroy", h.name]).status == 0)
        try h.expectPristine("after the first whole start")
        #expect(succeededAt != nil, "no start succeeded with up to 1 MiB free")
        #expect(failures >= 3, "only \(failures) failing points")
        print("a start failed for space at \(failures) points; it first succeeded with \(succeededAt ?? 0) bytes free")
    }

    @Test("the state directory runs out of space at every point of a destroy in turn: the VM either still runs with its labels, or is given back whole by the next command")
    func fullAtEveryPointOfDestroy() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/\(h.name).xml"]).status == 0)
        let (failures, succeededAt) = try atEveryFullness(h, ["destroy", h.name], prepare: {
            let started = try h.svirtHere(["start", h.name, "--stand-in"])
            #expect(started.status == 0, "start: \(started.stderr)")
        }) { _, when in
            // Whatever the registry says is what the files show.
            if try h.state(of: h.name) == "running" {
                try h.expectLabelledForVM("a \(when) left it running")
                let again = try h.svirtHere(["destroy", h.name])
                #expect(again.status == 0, "destroy with space again: \(again.stderr)")
            }
            try h.expectPristine("after a \(when) and the next commands")
        }
        try h.expectPristine("after the first whole destroy")
        #expect(succeededAt != nil, "no destroy succeeded with up to 1 MiB free")
        #expect(failures >= 3, "only \(failures) failing points")
        print("a destroy failed for space at \(failures) points; it first succeeded with \(succeededAt ?? 0) bytes free")
    }

    @Test("a read-only state directory: list, start and destroy refuse, naming the read-only filesystem and the fix; nothing is lost")
    func readOnlyStateDirectory() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/\(h.name).xml"]).status == 0)
        try h.remount(readOnly: true)
        for args in [["start", h.name, "--stand-in"], ["list", "--all"]] {
            let r = try h.svirtHere(args)
            #expect(r.status != 0, "\(args[0]) succeeded on a read-only state directory")
            #expect(r.stderr.contains("read-only") && r.stderr.contains("remount"), "\(args[0]): \(r.stderr)")
        }
        try h.remount(readOnly: false)
        try h.expectPristine("after a start refused on a read-only state directory")

        #expect(try h.svirtHere(["start", h.name, "--stand-in"]).status == 0)
        try h.remount(readOnly: true)
        let refused = try h.svirtHere(["destroy", h.name])
        #expect(refused.status != 0 && refused.stderr.contains("read-only"), "destroy: \(refused.stderr)")
        try h.remount(readOnly: false)
        #expect(try h.state(of: h.name) == "running")
        try h.expectLabelledForVM("after a destroy refused on a read-only state directory")
        #expect(try h.svirtHere(["destroy", h.name]).status == 0)
        try h.expectPristine("after destroy")
    }

    @Test("an image deleted while its VM runs: destroy says so, releases the level, and leaves alone the new file at that path")
    func imageDeletedWhileRunning() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/\(h.name).xml"]).status == 0)
        #expect(try h.svirtHere(["start", h.name, "--stand-in"]).status == 0)
        unlink(h.image)
        // Another file takes the path: it is not the VM's image, and destroy must not give it anything.
        _ = FileManager.default.createFile(atPath: h.image, contents: Data("someone else's".utf8))
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:user_home_t:s0".utf8) + [0], path: h.image)
        chown(h.image, 1000, 1000)
        let r = try h.svirtHere(["destroy", h.name])
        #expect(r.status == 0, "destroy: \(r.stderr)")
        #expect(r.stderr.contains("\(h.image) was deleted while '\(h.name)' ran"), "no word of the deleted image: \(r.stderr)")
        #expect(xattr("security.selinux", h.image) == "system_u:object_r:user_home_t:s0")
        #expect(h.owner(h.image) == (1000, 1000))
        #expect(try attributeNames(h.image).filter { $0.hasPrefix("trusted.") }.isEmpty)
        let levels = try h.svirtHere(["mcs", "list", "--json"])
        #expect(!levels.stdout.contains("\"\(h.name)\""), "level kept: \(levels.stdout)")
        #expect(try h.state(of: h.name) == "shut off")
    }

    /// A small ext4 filesystem with 128-byte inodes, so every extended attribute lives in one block per file.
    static let canMountExt4: Bool = {
        guard isRoot, FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.ext4") else { return false }
        guard let dir = try? scratch("svirt-ext4-probe") else { return false }
        defer {
            _ = try? run("/bin/umount", ["\(dir)/m"])
            try? FileManager.default.removeItem(atPath: dir)
        }
        try? FileManager.default.createDirectory(atPath: "\(dir)/m", withIntermediateDirectories: true)
        guard (try? run("/usr/bin/truncate", ["-s", "4M", "\(dir)/fs"]))?.status == 0,
              (try? run("/usr/sbin/mkfs.ext4", ["-q", "-F", "\(dir)/fs"]))?.status == 0 else { return false }
        return (try? run("/bin/mount", ["-o", "loop", "\(dir)/fs", "\(dir)/m"]))?.status == 0
    }()

    @Test("an image whose filesystem has no room for svirt's record: start refuses, naming the image and the fix, and the image keeps its label, owner and attributes",
          .enabled(if: canMountExt4, "needs mkfs.ext4 and a loop device"))
    func imageFilesystemFull() throws {
        let h = try Host(name: "noroom")
        let fs = "\(h.dir)/ext4.fs", mnt = "\(h.dir)/ext4"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        #expect(try run("/usr/bin/truncate", ["-s", "8M", fs]).status == 0)
        #expect(try run("/usr/sbin/mkfs.ext4", ["-q", "-F", "-I", "128", "-m", "0", "-b", "1024", fs]).status == 0)
        #expect(try run("/bin/mount", ["-o", "loop", fs, mnt]).status == 0)
        defer { _ = try? run("/bin/umount", ["-l", mnt]) }
        chmod(mnt, 0o755)
        let image = "\(mnt)/disk.img"
        try h.reset(image)
        // The file's one attribute block is nearly used up by an attribute of its own, and the filesystem is full,
        // so the block cannot grow and no other can be had.
        let pad = String(repeating: "x", count: 560)
        try ExtendedAttributes.set("user.pad", value: Array(pad.utf8), path: image)
        let filler = open("\(mnt)/filler", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        var buffer = [UInt8](repeating: 0, count: 1024)
        while buffer.withUnsafeMutableBytes({ Glibc.write(filler, $0.baseAddress, $0.count) }) > 0 {}
        close(filler)
        try h.write(domain: "noroom", image: image)
        #expect(try h.svirtHere(["define", "\(h.dir)/noroom.xml"]).status == 0)

        let r = try h.svirtHere(["start", "noroom", "--stand-in"])
        #expect(r.status != 0, "start succeeded with no room for the record")
        #expect(r.stderr.contains(image) && r.stderr.contains("no room") && r.stderr.contains("free space"), "\(r.stderr)")
        try h.expectPristine("after a start refused for no room", image)
        #expect(xattr("user.pad", image) == pad)
        #expect(try h.state(of: "noroom") == "shut off")
    }
}

struct SVirtTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
