import Foundation
import Glibc
import SVirt
import SVirtLinux

/// `lifecycle.start_destroy`: the wall time of the commands `svirt start NAME` then `svirt destroy NAME` (two
/// fresh processes: open and reconcile the registry, label, give the image to the QEMU user, check every
/// Landlock grant against the policy, spawn confined, wait for the monitor; then stop, give everything back,
/// release the level), against the same QEMU command line started directly (posix_spawn, wait for the monitor's
/// greeting and `qmp_capabilities`, as svirt waits) and killed (SIGTERM, wait).
///
/// It runs the `svirt` executable built next to `svirt-bench` (same configuration), in a scratch state
/// directory.
enum StartDestroyBench {
    static func run(emulator: QEMUEmulator, kvm: Bool) {
        let exe = (canonicalPath("/proc/self/exe") as NSString).deletingLastPathComponent + "/svirt"
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            print("lifecycle.start_destroy: skipped, no svirt executable next to svirt-bench (\(exe)); build both first: "
                  + "swift build -c release")
            return
        }
        guard getuid() == 0 else {
            print("lifecycle.start_destroy: skipped, svirt start writes security.* labels and needs root")
            return
        }
        let dir = "/tmp/svirt-bench-start-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = "\(dir)/bench.img"
        let fd = open(image, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        _ = ftruncate(fd, 16 << 20)
        close(fd)
        let xml = """
            <domain type='\(kvm ? "kvm" : "qemu")'>
              <name>bench</name>
              <memory unit='MiB'>64</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64' machine='q35'>hvm</type></os>
              <devices>
                <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(image)'/><target dev='vda' bus='virtio'/></disk>
              </devices>
            </domain>
            """
        let state = "\(dir)/state"
        do {
            try xml.write(toFile: "\(dir)/bench.xml", atomically: true, encoding: .utf8)
            guard try command(exe, ["define", "\(dir)/bench.xml", "--state-dir", state]) == 0 else {
                print("lifecycle.start_destroy: svirt define failed")
                return
            }
        } catch {
            print("lifecycle.start_destroy: \(error)")
            return
        }
        // The same command line svirt builds for this domain.
        let arguments: [String]
        do {
            let domain = try DomainDefinition(xml: xml)
            var c = try QEMUConfiguration(domain: domain, qmpSocket: "\(dir)/direct.sock", kvm: (kvm, ""))
            c.startPaused = false
            arguments = try QEMUCommandLine(c, emulator: emulator).arguments
        } catch {
            print("lifecycle.start_destroy: \(error)")
            return
        }

        let rounds = 10
        var ours: [Double] = [], starts: [Double] = [], destroys: [Double] = [], direct: [Double] = []
        for i in 0..<rounds {
            let order = i % 2 == 0 ? [true, false] : [false, true]
            for svirt in order {
                if svirt {
                    let t0 = now()
                    let a = (try? command(exe, ["start", "bench", "--state-dir", state])) ?? -1
                    let t1 = now()
                    let b = (try? command(exe, ["destroy", "bench", "--state-dir", state])) ?? -1
                    let t2 = now()
                    guard a == 0, b == 0 else {
                        print("lifecycle.start_destroy: svirt start/destroy failed (exit \(a), \(b)); run '\(exe) start bench --state-dir \(state)' to see why")
                        return
                    }
                    ours.append(t2 - t0)
                    starts.append(t1 - t0)
                    destroys.append(t2 - t1)
                } else {
                    guard let t = directRound(emulator.path, arguments, qmp: "\(dir)/direct.sock") else {
                        print("lifecycle.start_destroy: the direct QEMU start failed")
                        return
                    }
                    direct.append(t)
                }
            }
        }
        let m = LifecycleBench.median(ours), b = LifecycleBench.median(direct)
        Figure(name: "lifecycle.start_destroy", value: m * 1000, unit: "ms", baseline: ("qemu-direct", b * 1000)).print()
        Figure(name: "lifecycle.start_destroy.qemu-direct", value: b * 1000, unit: "ms").print()
        Figure(name: "lifecycle.svirt_start", value: LifecycleBench.median(starts) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.svirt_destroy", value: LifecycleBench.median(destroys) * 1000, unit: "ms").print()
        print("# svirt start + svirt destroy as processes (\(exe)), \(rounds) rounds, medians")
    }

    /// Runs a program with its output discarded and waits for it; returns its exit status. posix_spawn and waitpid
    /// directly: Foundation's `Process.waitUntilExit` polls its run loop and would add up to 50 ms per command.
    static func command(_ path: String, _ args: [String]) throws -> Int32 {
        DirectQEMU.wait(try DirectQEMU.spawn(path, args))
    }

    /// Starts QEMU with the command line (its monitor on a path QEMU makes itself), waits until the monitor
    /// answers `qmp_capabilities`, sends SIGTERM and waits. Returns the seconds it took.
    static func directRound(_ emulator: String, _ arguments: [String], qmp: String) -> Double? {
        (try? DirectQEMU.round(emulator, arguments, qmp: qmp))?.total
    }

    static func canonicalPath(_ p: String) -> String {
        guard let r = realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }
}
