import Foundation
import Glibc
import Testing
@testable import SVirtLinux

/// `svirt start` and `svirt destroy` killed with SIGKILL at each state-changing system call in turn (strace's fault
/// injection): every xattr write and removal, and every owner change. After each kill the next command (`svirt
/// list`) reconciles, and then every file has its exact original label and owner, carries no svirt record, no level
/// is reserved and no guest process is left.
@Suite("kill at every step of start and destroy", .serialized,
       .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") && (try? Landlock.ABI.current()) != nil,
                "needs root, strace and Landlock"))
struct StartStopKillTests {
    static let original = "system_u:object_r:virt_image_t:s0"
    static let syscalls = ["setxattr", "removexattr", "fchownat"]

    final class Host {
        let dir: String
        let state: String
        let images: [String]
        init() throws {
            dir = try scratch("svirt-kill")
            chmod(dir, 0o755)
            state = "\(dir)/state"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            try "user = nobody\n".write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8)
            images = ["\(dir)/a.img", "\(dir)/b.img"]
            let disks = images.enumerated().map { i, p in
                "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(p)'/><target dev='vd\(["a", "b"][i])' bus='virtio'/></disk>"
            }.joined()
            try "<domain type='qemu'><name>killme</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\(disks)</devices></domain>"
                .write(toFile: "\(dir)/vm.xml", atomically: true, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func reset() throws {
            for p in images {
                _ = FileManager.default.createFile(atPath: p, contents: Data(count: 1 << 16))
                for name in try attributeNames(p) where name.hasPrefix("trusted.") { try ExtendedAttributes.remove(name, path: p) }
                try ExtendedAttributes.set("security.selinux", value: Array(StartStopKillTests.original.utf8) + [0], path: p)
                chown(p, 4242, 4343)
                chmod(p, 0o644)
            }
        }

        func svirtHere(_ args: [String]) throws -> CLIResult { try svirt(args + ["--state-dir", state]) }

        /// Runs svirt under strace, killed at the `n`th call of `syscall` (0: counts the calls instead).
        func traced(_ args: [String], killAt syscall: String, _ n: Int) throws -> (CLIResult, Int) {
            let log = "\(dir)/strace.log"
            var options = ["-f", "-b", "execve", "-o", log]
            options += n > 0 ? ["-e", "trace=\(syscall)", "-e", "inject=\(syscall):signal=KILL:when=\(n)"] : ["-e", "trace=\(syscall)"]
            let r = try run("/usr/bin/strace", options + [svirtBinary] + args + ["--state-dir", state])
            let calls = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.contains("\(syscall)(") && !$0.contains("resumed") }.count
            return (r, calls)
        }

        /// Guest processes of this host's VMs that are still alive.
        func guests() -> [Int32] {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return pids.compactMap(Int32.init).filter { pid in
                guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
                return String(decoding: cmd, as: UTF8.self).contains("\(state)/run")
            }
        }

        /// After the next command reconciles: everything is as it was before the start.
        func expectPristine(_ when: String) throws {
            let list = try svirtHere(["list", "--all"])
            #expect(list.status == 0, "\(when): list: \(list.stderr)")
            for p in images {
                #expect(xattr("security.selinux", p) == StartStopKillTests.original, "\(when): \(p) label")
                var st = stat()
                stat(p, &st)
                #expect(st.st_uid == 4242 && st.st_gid == 4343, "\(when): \(p) owner \(st.st_uid):\(st.st_gid)")
                #expect(try attributeNames(p).filter { $0.hasPrefix("trusted.") }.isEmpty, "\(when): \(p) keeps records")
            }
            let levels = try svirtHere(["mcs", "list", "--json"])
            #expect(!levels.stdout.contains("killme"), "\(when): a level is still reserved: \(levels.stdout)")
            #expect(guests().isEmpty, "\(when): a guest is left: \(guests())")
        }
    }

    /// For each state-changing call: one whole run of `command` (counting the calls), then one run killed at each
    /// call in turn, each followed by the next command's reconciliation and the check that nothing is left.
    /// `prepare` readies the VM before each run (nothing for start; a running VM for destroy), `afterWhole` tidies a
    /// whole run. Returns how many kill points there were.
    func killAtEach(_ h: Host, _ command: [String], prepare: () throws -> Void, afterWhole: () throws -> Void) throws -> Int {
        var total = 0
        for call in Self.syscalls {
            try h.reset()
            try prepare()
            let (full, count) = try h.traced(command, killAt: call, 0)
            #expect(full.status == 0, "\(command[0]): \(full.stderr)")
            try afterWhole()
            try h.expectPristine("after a whole \(command[0]) (\(call))")
            for n in stride(from: 1, through: count, by: 1) {
                try h.reset()
                try prepare()
                let (killed, _) = try h.traced(command, killAt: call, n)
                #expect(killed.status == 128 + SIGKILL, "\(command[0]) was not killed at \(call) #\(n): \(killed.status) \(killed.stderr)")
                try h.expectPristine("\(command[0]) killed at \(call) #\(n)")
                total += 1
            }
        }
        return total
    }

    @Test("svirt start killed at each xattr write, xattr removal and owner change: the next command gives everything back")
    func start() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        let total = try killAtEach(h, ["start", "killme", "--stand-in"], prepare: {}, afterWhole: {
            let destroyed = try h.svirtHere(["destroy", "killme"])
            #expect(destroyed.status == 0, "destroy: \(destroyed.stderr)")
        })
        #expect(total >= 10, "only \(total) kill points")
        print("start: killed at \(total) state-changing calls")
    }

    @Test("svirt destroy killed at each xattr write, xattr removal and owner change: the next command finishes the job")
    func destroy() throws {
        let h = try Host()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        let total = try killAtEach(h, ["destroy", "killme"], prepare: {
            let started = try h.svirtHere(["start", "killme", "--stand-in"])
            #expect(started.status == 0, "start: \(started.stderr)")
        }, afterWhole: {})
        #expect(total >= 6, "only \(total) kill points")
        print("destroy: killed at \(total) state-changing calls")
    }
}
