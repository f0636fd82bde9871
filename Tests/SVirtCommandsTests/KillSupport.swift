import Foundation
import Glibc
import Testing
@testable import SVirtLinux

/// What the kill-at-every-step tests share: a scratch host with one two-disk VM, svirt run under strace (counting
/// the state-changing calls, or killed with SIGKILL at one of them), the choice of kill points, and the checks
/// made after the next command has reconciled.
final class KillHost {
    static let original = "system_u:object_r:virt_image_t:s0"
    static let name = "killme"
    let dir: String
    let state: String
    let images: [String]

    init(_ prefix: String = "svirt-kill") throws {
        dir = try scratch(prefix)
        chmod(dir, 0o755)
        state = "\(dir)/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try "user = nobody\n".write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8)
        images = ["\(dir)/a.img", "\(dir)/b.img"]
        let disks = images.enumerated().map { i, p in
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(p)'/><target dev='vd\(["a", "b"][i])' bus='virtio'/></disk>"
        }.joined()
        try "<domain type='qemu'><name>\(Self.name)</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\(disks)</devices></domain>"
            .write(toFile: "\(dir)/vm.xml", atomically: true, encoding: .utf8)
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// The images' content: some data between holes, so a copy writes something.
    static let content: Data = {
        var d = Data(count: 1 << 16)
        for i in stride(from: 0, to: 4096, by: 1) { d[8192 + i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        return d
    }()

    /// Every image back to its original content, label and owner, with no svirt record.
    func reset() throws {
        for p in images {
            _ = FileManager.default.createFile(atPath: p, contents: Self.content)
            for name in try attributeNames(p) where name.hasPrefix("trusted.") { try ExtendedAttributes.remove(name, path: p) }
            try ExtendedAttributes.set("security.selinux", value: Array(Self.original.utf8) + [0], path: p)
            chown(p, 4242, 4343)
            chmod(p, 0o644)
        }
    }

    func svirtHere(_ args: [String]) throws -> CLIResult { try svirt(args + ["--state-dir", state]) }

    /// One whole run of `args` under strace, returning its result and the calls of `syscalls` it made.
    func count(_ args: [String], _ syscalls: [String]) throws -> (CLIResult, [TracedCall]) {
        let log = "\(dir)/strace.log"
        let r = try run("/usr/bin/strace", ["-f", "-b", "execve", "-xx", "-o", log, "-e", "trace=\(syscalls.joined(separator: ","))",
                                            svirtBinary] + args + ["--state-dir", state])
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (r, text.split(separator: "\n").compactMap(TracedCall.init))
    }

    /// A run of `args` killed with SIGKILL on entry to the kill point's call (strace counts per thread).
    func killed(_ args: [String], at p: KillPoint) throws -> CLIResult {
        try run("/usr/bin/strace", ["-f", "-b", "execve", "-o", "/dev/null", "-e", "trace=\(p.syscall)",
                                    "-e", "inject=\(p.syscall):signal=KILL:when=\(p.n)", svirtBinary] + args + ["--state-dir", state])
    }

    /// Live guest processes of this host's VM.
    func guests() -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap(Int32.init).filter { pid in
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            // The guest is given its disks by path on its command line (a zombie's is empty: it is gone); svirt
            // itself never is.
            return String(decoding: cmd, as: UTF8.self).contains(images[0])
        }
    }

    /// The domains `svirt list --all --json` shows (the command reconciles first): name, state, pid, level.
    func domains(_ when: String) throws -> [(name: String, state: String, pid: Int32?, level: String?)] {
        let r = try svirtHere(["list", "--all", "--json"])
        #expect(r.status == 0, "\(when): list: \(r.stderr)")
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] ?? []
        return rows.map { ($0["name"] as? String ?? "", $0["state"] as? String ?? "", ($0["pid"] as? Int).map { Int32($0) },
                           $0["level"] as? String) }
    }

    /// Reserved levels and their owners.
    func levels() throws -> [(level: String, owner: String)] {
        let r = try svirtHere(["mcs", "list", "--json"])
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] ?? []
        return rows.map { ($0["level"] as? String ?? "", $0["owner"] as? String ?? "") }
    }

    func owner(_ p: String) -> (uid_t, gid_t) {
        var st = stat()
        stat(p, &st)
        return (st.st_uid, st.st_gid)
    }

    /// After the next command reconciled: the registry says the VM runs or not, and the host agrees. A running VM
    /// has its live QEMU (and no other), its level and only that reserved, and its files carry its label and
    /// owner with svirt's records of the originals; a VM that does not run has left nothing: see
    /// `expectPristine`. Returns whether it runs.
    @discardableResult
    func expectConsistent(_ when: String) throws -> Bool {
        let rows = try domains(when)
        let vm = rows.first { $0.name == Self.name }
        #expect(vm != nil, "\(when): the definition is gone: \(rows)")
        #expect(vm.map { ["running", "shut off"].contains($0.state) } ?? true, "\(when): left \(vm?.state ?? "")")
        guard let vm, vm.state == "running" else {
            try expectPristine(when)
            return false
        }
        #expect(vm.pid != nil && guests() == [vm.pid!], "\(when): the registry's pid \(vm.pid ?? 0) against the guests \(guests())")
        let reserved = try levels()
        #expect(reserved.map(\.owner) == [Self.name] && reserved.map(\.level) == [vm.level ?? "?"],
                "\(when): the levels reserved are not exactly the running VM's \(vm.level ?? "?"): \(reserved)")
        let nobody = getpwnam("nobody")?.pointee
        for p in images {
            #expect(xattr("security.selinux", p) == "system_u:object_r:svirt_image_t:\(vm.level ?? "?")", "\(when): \(p) label")
            #expect(xattr("trusted.svirt.security.selinux", p) == Self.original, "\(when): \(p) has no record of its label")
            let (uid, gid) = owner(p)
            #expect(uid == nobody?.pw_uid && gid == nobody?.pw_gid, "\(when): \(p) owner \(uid):\(gid)")
            #expect(xattr("trusted.svirt.security.dac", p) == "+4242:+4343", "\(when): \(p) has no record of its owner")
        }
        return true
    }

    /// Everything is as it was before any start: labels, owners, no svirt records, no level, no guest, the VM
    /// shut off.
    func expectPristine(_ when: String) throws {
        let rows = try domains(when)
        #expect(rows.allSatisfy { $0.state == "shut off" }, "\(when): still \(rows)")
        for p in images {
            #expect(xattr("security.selinux", p) == Self.original, "\(when): \(p) label \(xattr("security.selinux", p) ?? "none")")
            let (uid, gid) = owner(p)
            #expect(uid == 4242 && gid == 4343, "\(when): \(p) owner \(uid):\(gid)")
            #expect(try attributeNames(p).filter { $0.hasPrefix("trusted.") }.isEmpty, "\(when): \(p) keeps records")
        }
        let reserved = try levels()
        #expect(reserved.isEmpty, "\(when): a level is still reserved: \(reserved)")
        #expect(guests().isEmpty, "\(when): a guest is left: \(guests())")
    }

    /// For each kill point of `command`: `prepare`, a run killed there, then `check` (which runs the next
    /// command). First one whole run, counted, checked by `whole`. Returns the kill points.
    func killAtEach(_ command: [String], _ syscalls: [String], prepare: () throws -> Void,
                    whole: (CLIResult) throws -> Void, check: (KillPoint) throws -> Void) throws -> [KillPoint] {
        try reset()
        try prepare()
        let (full, calls) = try count(command, syscalls)
        #expect(full.status == 0, "\(command[0]): \(full.stderr)")
        try whole(full)
        let points = KillPoint.choose(calls)
        for p in points {
            try reset()
            try prepare()
            let r = try killed(command, at: p)
            #expect(r.status == 128 + SIGKILL, "\(command[0]) was not killed at \(p): \(r.status) \(r.stderr)")
            try check(p)
        }
        return points
    }
}

/// One system call in strace's log (`-f -xx`).
struct TracedCall {
    var tid: Int
    var name: String
    var args: Substring

    init?(_ line: Substring) {
        let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, let tid = Int(parts[0]) else { return nil }
        let rest = parts[1].drop { $0 == " " }
        guard !rest.hasPrefix("<..."), !rest.hasPrefix("+++"), !rest.hasPrefix("---"),
              let open = rest.firstIndex(of: "(") else { return nil }
        self.tid = tid
        name = String(rest[..<open])
        args = rest[rest.index(after: open)...]
    }

    /// The bytes of the first string argument (strace -xx writes every byte as \xHH).
    var firstString: [UInt8] {
        guard let start = args.firstIndex(of: "\"") else { return [] }
        let after = args[args.index(after: start)...]
        guard let end = after.firstIndex(of: "\"") else { return [] }
        return after[..<end].split(separator: "\\", omittingEmptySubsequences: true).compactMap { UInt8($0.dropFirst(), radix: 16) }
    }

    /// The first argument (a descriptor).
    var firstArgument: Substring { args.prefix { $0 != "," } }

    /// pwrite64's count: the number after the string.
    var writeSize: Int? {
        guard let end = args.range(of: "\", ") else { return nil }
        return Int(args[end.upperBound...].prefix { $0.isNumber })
    }
}

/// Where svirt is killed: on entry to the `n`th call of `syscall` in its thread.
struct KillPoint: CustomStringConvertible, Hashable {
    var syscall: String
    var n: Int
    var description: String { "\(syscall) #\(n)" }

    /// The kill points among the calls of a whole run: every call, except that of the registry's writes
    /// (`pwrite64`) only the first of each transaction counts (SQLite makes a transaction visible with its commit
    /// frame's write, so a kill at any write of one transaction leaves the same state as a kill at its first), and
    /// of `clone` only the forks (threads are not state).
    static func choose(_ calls: [TracedCall]) -> [KillPoint] {
        var counters: [Int: [String: Int]] = [:]
        // Per thread: the previous write's descriptor, whether it was a WAL commit frame's header, and whether the
        // previous write closed a transaction.
        var last: [Int: (fd: Substring, commitHeader: Bool, closed: Bool)] = [:]
        var out: [KillPoint] = []
        for c in calls {
            let n = (counters[c.tid]?[c.name] ?? 0) + 1
            counters[c.tid, default: [:]][c.name] = n
            switch c.name {
            case "pwrite64":
                let fd = c.firstArgument, size = c.writeSize ?? 0
                let prev = last[c.tid]
                // A 24-byte write is a WAL frame header; a nonzero database size (bytes 4-7) marks a commit.
                let bytes = c.firstString
                let commitHeader = size == 24 && bytes.count >= 8 && bytes[4..<8].contains { $0 != 0 }
                // The one-byte writes extend the WAL index at open: before anything is written.
                if size != 1, prev == nil || prev!.fd != fd || prev!.closed { out.append(KillPoint(syscall: c.name, n: n)) }
                last[c.tid] = (fd, commitHeader, prev?.commitHeader == true && size != 24)
            case "clone":
                if !c.args.contains("CLONE_THREAD") { out.append(KillPoint(syscall: c.name, n: n)) }
            default:
                out.append(KillPoint(syscall: c.name, n: n))
            }
        }
        var seen = Set<KillPoint>()
        return out.filter { seen.insert($0).inserted }
    }
}

extension Array where Element == KillPoint {
    /// "12 (setxattr 8, fchownat 2, ...)".
    var summary: String {
        var bySyscall: [String: Int] = [:]
        for p in self { bySyscall[p.syscall, default: 0] += 1 }
        return "\(count) (" + bySyscall.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }
}
