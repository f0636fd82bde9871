import Foundation
import Glibc
import SVirt
import SVirtLinux

/// `svirt-bench lifecycle`: the wall time to start a guest until its monitor greets, then destroy it (SIGTERM,
/// wait for exit), through svirt's launcher against the same QEMU command line started and killed directly.
///
/// svirt's side does what a fresh `svirt start` process does: probe the emulator, compute the system paths,
/// build and apply the Landlock ruleset in the C spawn, create the monitor socket in the child, wait for the
/// greeting; then `GuestSupervisor.stop` without powerdown. The baseline posix_spawns QEMU with the monitor on
/// a path QEMU creates itself, waits for the greeting and the answer to `qmp_capabilities` (the same
/// `QMPClient` handshake svirt does), sends SIGTERM and waits. Both use `-S` (no guest code).
///
/// `lifecycle.launcher_*` measure the launcher alone; `lifecycle.start_destroy` (`StartDestroyBench`) measures the
/// commands `svirt start` and `svirt destroy` themselves.
enum LifecycleBench {
    static func run() {
        guard let emulator = try? QEMUEmulator.find() else {
            print("lifecycle: skipped, qemu-system-\(QEMUEmulator.hostArchitecture()) is not on PATH")
            return
        }
        let kvm = HostProbe().kvm().usable
        let dir = "/tmp/svirt-bench-lifecycle-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = "\(dir)/disk.img"
        let fd = open(image, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        _ = ftruncate(fd, 16 << 20)
        close(fd)

        let rounds = 15
        var ours: [Double] = [], base: [Double] = [], probes: [Double] = [], paths: [Double] = []
        var starts: [Double] = [], stops: [Double] = [], unconfined: [Double] = [], directStarts: [Double] = []
        for i in 0..<rounds {
            // Alternate which goes first, so neither always runs on a warmer page cache.
            let order = i % 2 == 0 ? [true, false] : [false, true]
            for svirt in order {
                if svirt {
                    guard let t = try? svirtRound(emulator: emulator, kvm: kvm, image: image, dir: dir, round: i) else {
                        print("lifecycle: svirt's launcher failed; see \(dir)")
                        return
                    }
                    ours.append(t.total)
                    probes.append(t.probe)
                    paths.append(t.paths)
                    starts.append(t.start)
                    stops.append(t.stop)
                } else {
                    guard let t = try? directRound(emulator: emulator, kvm: kvm, image: image, dir: dir, round: i) else {
                        print("lifecycle: the direct QEMU start failed")
                        return
                    }
                    base.append(t.total)
                    directStarts.append(t.start)
                }
            }
            if let t = try? svirtRound(emulator: emulator, kvm: kvm, image: image, dir: dir, round: 1000 + i, confined: false) {
                unconfined.append(t.start)
            }
        }
        let m = median(ours), b = median(base)
        Figure(name: "lifecycle.launcher_start_destroy", value: m * 1000, unit: "ms",
               baseline: ("qemu-direct", b * 1000)).print()
        Figure(name: "lifecycle.launcher_start_destroy.qemu-direct", value: b * 1000, unit: "ms").print()
        Figure(name: "lifecycle.emulator_probe", value: median(probes) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.system_paths", value: median(paths) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.launcher_start", value: median(starts) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.launcher_destroy", value: median(stops) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.launcher_start.unconfined", value: median(unconfined) * 1000, unit: "ms").print()
        Figure(name: "lifecycle.start.qemu-direct", value: median(directStarts) * 1000, unit: "ms").print()
        print("# accel=\(kvm ? "kvm" : "tcg"), \(rounds) rounds, medians")
        StartDestroyBench.run(emulator: emulator, kvm: kvm)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    static func configuration(kvm: Bool, image: String, qmp: String) -> QEMUConfiguration {
        var c = QEMUConfiguration(name: "bench", accelerator: kvm ? .kvm : .tcg, memoryMiB: 64, qmpSocket: qmp)
        c.disks = [.init(path: image)]
        c.startPaused = true
        return c
    }

    static func svirtRound(emulator: QEMUEmulator, kvm: Bool, image: String, dir: String,
                           round: Int, confined: Bool = true) throws -> (total: Double, probe: Double, paths: Double, start: Double, stop: Double) {
        let t0 = now()
        let e = try QEMUEmulator.probe(emulator.path, cached: false)
        let t1 = now()
        let system = try QEMUSystemPaths.compute(for: e, kvm: kvm, cached: false)
        let t2 = now()
        let run = try RuntimeDirectory.create(name: "s\(round)", root: dir)
        let c = configuration(kvm: kvm, image: image, qmp: run.qmpSocket)
        var d = try QEMUCommandLine(c, emulator: e).launchDescription()
        if confined { d.landlock = .guest(c, system: system) }
        let ta = now()
        let g = try GuestSupervisor.start(d, qmpSocket: run.qmpSocket, logFile: run.logFile)
        let tb = now()
        g.monitor.close()
        _ = GuestSupervisor.stop(g.process, powerdownTimeout: .zero)
        let t3 = now()
        run.remove()
        return (t3 - t0, t1 - t0, t2 - t1, tb - ta, t3 - tb)
    }

    static func directRound(emulator: QEMUEmulator, kvm: Bool, image: String, dir: String,
                            round: Int) throws -> (total: Double, start: Double) {
        let qmp = "\(dir)/d\(round).sock"
        let args = try QEMUCommandLine(configuration(kvm: kvm, image: image, qmp: qmp), emulator: emulator).arguments
        let r = try DirectQEMU.round(emulator.path, args, qmp: qmp)
        return (r.total, r.ready)
    }
}
