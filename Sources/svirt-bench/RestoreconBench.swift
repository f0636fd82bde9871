import Foundation
import Glibc
import SELinux
import SVirtLinux

/// `fcontext.restorecon`: `svirt restorecon -R -n` against `setfiles -n` (policycoreutils) over the same tree of
/// 100,000 files, after both agree the tree is labelled (so neither prints anything). svirt's side runs the
/// engine `svirt restorecon` uses, in this process, including the load of file_contexts; setfiles runs as a
/// process, once single-threaded and once with `-T 0` (a thread per CPU, as svirt walks): the ratio is against the
/// threaded run. Wall-clock time; CPU time (of the single-threaded run) is printed too.
enum RestoreconBench {
    static let files = 100_000

    static func run(fileContexts fc: String, workDirectory: String) throws {
        // A tree where images live: libselinux has to try the /var lines for every file.
        let root = "/var/lib/svirt-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try makeTree(root)
        let loaded = try FileContexts.load(path: fc)
        // Label the tree first, so that -n finds nothing to change and neither side prints per file.
        let first = Restorecon(fileContexts: loaded, options: .init(recursive: true)).run([root], events: { _ in })
        guard first.failed == 0 else {
            throw FContextBench.BenchError(description: "labelling the bench tree failed for \(first.failed) files")
        }

        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        let childCPU0 = cpuSeconds(usage)
        var t0 = now()
        try FContextBench.shell(["setfiles", "-n", fc, root])
        let singleWall = now() - t0
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        let baseCPU = cpuSeconds(usage) - childCPU0
        // setfiles with as many threads as svirt walks with (-T 0: one per CPU), the like-for-like baseline.
        t0 = now()
        try FContextBench.shell(["setfiles", "-T", "0", "-n", fc, root])
        let baseWall = now() - t0

        getrusage(RUSAGE_SELF.rawValue, &usage)
        let selfCPU0 = cpuSeconds(usage)
        t0 = now()
        let contexts = try FileContexts.load(path: fc)
        let summary = Restorecon(fileContexts: contexts, options: .init(dryRun: true, recursive: true))
            .run([root], events: { _ in })
        let ourWall = now() - t0
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let ourCPU = cpuSeconds(usage) - selfCPU0
        guard summary.checked >= files, summary.relabeled == 0, summary.failed == 0 else {
            throw FContextBench.BenchError(description: "svirt restorecon -n on the labelled tree: \(summary)")
        }

        Figure(name: "fcontext.restorecon", value: ourWall, unit: "s", baseline: ("setfiles-T0-n", baseWall)).print()
        Figure(name: "fcontext.restorecon.single-thread-baseline", value: ourWall, unit: "s",
               baseline: ("setfiles-n", singleWall)).print()
        Figure(name: "fcontext.restorecon.rate", value: Double(summary.checked) / ourWall, unit: "files/s",
               baseline: ("setfiles-T0-n", Double(summary.checked) / baseWall)).print()
        Figure(name: "fcontext.restorecon.cpu", value: ourCPU, unit: "s", baseline: ("setfiles-n", baseCPU)).print()
        Figure(name: "fcontext.restorecon.files", value: Double(summary.checked), unit: "files").print()
    }

    static func cpuSeconds(_ u: rusage) -> Double {
        Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    /// 100 directories of 10 directories of 100 files, with names like a VM host's.
    static func makeTree(_ root: String) throws {
        let perLeaf = files / 1000
        for d in 0..<100 {
            for s in 0..<10 {
                let dir = "\(root)/pool\(d)/vm\(s)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for f in 0..<perLeaf {
                    let fd = open("\(dir)/disk\(f).qcow2", O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                    guard fd >= 0 else {
                        throw FContextBench.BenchError(description: "cannot create \(dir)/disk\(f).qcow2: \(String(cString: strerror(errno)))")
                    }
                    close(fd)
                }
            }
        }
    }
}
