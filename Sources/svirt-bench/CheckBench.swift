import Foundation
import Glibc
import SVirt
import SVirtLinux

/// `svirt-bench check`: `svirt list --all`, `svirt mcs stats` and the command `svirt check` (a fresh process: open the registry, build every VM's label
/// plan, read each disk's kind, decide the matrix, print the findings) over 100, 1,000 and 10,000 defined VMs,
/// each with a private disk of its own; one in four also uses a shared disk, one in ten is a static VM at a level
/// of its own, one in twenty has a read-only ISO. Wall time and the process's peak resident memory (`wait4`'s
/// rusage), and the growth from each size to the next (1.0 per tenfold is linear, 10 is quadratic).
///
/// It runs the `svirt` executable built next to `svirt-bench`, under Debian's default policy when it is
/// installed (else svirt's built-in policy). There is no baseline: libvirt has no such check.
enum CheckBench {
    static func run(sizes: [Int] = [100, 1_000, 10_000]) {
        let exe = (StartDestroyBench.canonicalPath("/proc/self/exe") as NSString).deletingLastPathComponent + "/svirt"
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            print("check: skipped, no svirt executable next to svirt-bench (\(exe)); build both first: swift build -c release")
            return
        }
        let policy = "/etc/selinux/default/policy/policy.33"
        let policyArgs = FileManager.default.fileExists(atPath: policy) ? ["--policy", policy] : []
        var previous: (n: Int, seconds: Double)?
        for n in sizes {
            let dir = "/tmp/svirt-bench-check-\(getpid())-\(n)"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                try populate(dir: dir, count: n)
            } catch {
                print("check.vms\(n): could not define the VMs: \(error)")
                return
            }
            var best: (seconds: Double, rssKiB: Int)?
            for _ in 0..<3 {
                guard let r = timed(exe, ["check", "--state-dir", "\(dir)/state"] + policyArgs) else {
                    print("check.vms\(n): svirt check did not run")
                    return
                }
                guard r.status == 0 || r.status == 1 else {
                    print("check.vms\(n): svirt check exited \(r.status); run it by hand: \(exe) check --state-dir \(dir)/state")
                    return
                }
                if best == nil || r.seconds < best!.seconds { best = (r.seconds, r.rssKiB) }
            }
            guard let b = best else { return }
            // The listings the console's pages show, over the same registry.
            for (figure, command) in [("list.vms\(n)", ["list", "--all"]), ("mcs.stats.vms\(n)", ["mcs", "stats"])] {
                let runs = (0..<3).compactMap { _ in timed(exe, command + ["--state-dir", "\(dir)/state"]) }
                guard runs.count == 3, runs.allSatisfy({ $0.status == 0 }) else {
                    print("\(figure): svirt \(command.joined(separator: " ")) failed")
                    continue
                }
                Figure(name: figure, value: runs.map(\.seconds).min()! * 1000, unit: "ms").print()
            }
            Figure(name: "check.vms\(n)", value: b.seconds * 1000, unit: "ms").print()
            Figure(name: "check.vms\(n).rss", value: Double(b.rssKiB) / 1024, unit: "MiB").print()
            if let p = previous {
                // Time per VM grows by this factor per tenfold: 1 is linear, 10 quadratic.
                let growth = (b.seconds / Double(n)) / (p.seconds / Double(p.n))
                Figure(name: "check.growth.\(p.n)_to_\(n)", value: growth, unit: "x-per-vm").print()
            }
            previous = (n, b.seconds)
        }
        print("# svirt check over N defined VMs (\(exe)), best of 3, peak RSS of that run; growth is time per VM, per tenfold")
    }

    /// N defined VMs in a registry at `dir/state`, with their image files in `dir`.
    static func populate(dir: String, count: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let registry = try SQLiteRegistry(state: StateDirectory(path: "\(dir)/state"))
        func file(_ path: String) {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            close(fd)
        }
        file("\(dir)/shared.img")
        file("\(dir)/install.iso")
        for i in 0..<count {
            let name = "vm\(i)"
            file("\(dir)/\(name).img")
            var disks = "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(dir)/\(name).img'/><target dev='vda' bus='virtio'/></disk>"
            if i % 4 == 0 {
                disks += "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(dir)/shared.img'/><target dev='vdb' bus='virtio'/><shareable/></disk>"
            }
            if i % 20 == 0 {
                disks += "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='\(dir)/install.iso'/><target dev='sda' bus='sata'/><readonly/></disk>"
            }
            // A static VM at a pair of its own, above the pool's first pairs that planned levels take.
            let seclabel = i % 10 == 0
                ? "<seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c\(1000 - i / 10 % 500),c\(1001 + i / 10 % 20)</label></seclabel>"
                : "<seclabel type='dynamic' model='selinux' relabel='yes'/>"
            let xml = """
                <domain type='kvm'><name>\(name)</name><uuid>\(uuid(i))</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
                <os><type arch='x86_64' machine='q35'>hvm</type></os>\(seclabel)<devices>\(disks)</devices></domain>
                """
            _ = try registry.define(name: name, uuid: uuid(i), xml: xml)
        }
    }

    static func uuid(_ i: Int) -> String { String(format: "00000000-0000-4000-8000-%012x", i) }

    /// Runs a program with its output discarded; its exit status, wall seconds and peak RSS. The peak comes from
    /// GNU time (`/usr/bin/time -f %M`) run between: a child spawned straight from this process shares its memory
    /// until exec (posix_spawn is vfork-like), and the kernel counts that memory in the child's `ru_maxrss`.
    static func timed(_ path: String, _ args: [String]) -> (status: Int32, seconds: Double, rssKiB: Int)? {
        // In a directory of its own (mkdtemp): GNU time writes to the path as root, and /tmp is anyone's.
        var template = Array("/tmp/svirt-bench-time-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { return nil }
        let directory = String(cString: made)
        let report = "\(directory)/report"
        defer {
            unlink(report)
            rmdir(directory)
        }
        let viaTime = FileManager.default.isExecutableFile(atPath: "/usr/bin/time")
        let start = now()
        guard let pid = try? DirectQEMU.spawn(viaTime ? "/usr/bin/time" : path,
                                              viaTime ? ["-f", "%M", "-o", report, path] + args : args) else { return nil }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = now() - start
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let rss = viaTime
            ? (try? String(contentsOfFile: report, encoding: .utf8)).flatMap { text in
                text.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } } ?? -1
            : Int(usage.ru_maxrss)
        return (code, seconds, rss)
    }
}
