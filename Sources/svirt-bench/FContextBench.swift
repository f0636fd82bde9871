import Foundation
import Glibc
import SELinux
import SVirtLinux

/// `svirt-bench fcontext`: svirt's file_contexts against libselinux on the same input, in the same run.
///
/// - `fcontext.open`: load (read, parse, compile) the host's file_contexts and companions, against
///   `selabel_open` of the same text files (copied to a directory without `file_contexts.bin`).
/// - `fcontext.lookup`: lookups per second over the same 100,000 real paths (an even sample of `find / -xdev`,
///   with their lstat file types), starting from a freshly opened FileContexts, so the lazily built DFA
///   states are paid for inside the measurement; `fcontext.lookup.warm` repeats the pass.
/// - `fcontext.restorecon`: `svirt restorecon -R -n` against `setfiles -n` over a tree of 100,000 files.
enum FContextBench {
    static func run() {
        do {
            try runThrowing()
        } catch {
            FileHandle.standardError.write(Data("svirt-bench fcontext: \(error)\n".utf8))
            exit(1)
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        var description: String
    }

    static func runThrowing() throws {
        let repo = FileManager.default.currentDirectoryPath
        try shell(["bash", "\(repo)/bench/build.sh"])
        let baseline = "\(repo)/.build/bench/fcontext_baseline"

        let host = try HostSELinuxConfiguration.load(root: HostSELinuxConfiguration.resolveRoot(nil))
        guard let fcPath = host.fileContextsPath else {
            throw BenchError(description: "the host has no file_contexts; install selinux-policy-default")
        }
        let work = try makeTextCopy(of: fcPath)
        defer { try? FileManager.default.removeItem(atPath: work.directory) }
        let fc = work.fileContexts

        // fcontext.open
        let opens = 20
        var t0 = threadCPU()
        for _ in 0..<opens { _ = try FileContexts.load(path: fc) }
        let ourOpen = (threadCPU() - t0) * 1e3 / Double(opens)
        let baseOpen = try number(try shell([baseline, "open", fc, String(opens)]), "open_ms")
        Figure(name: "fcontext.open", value: ourOpen, unit: "ms", baseline: ("libselinux-selabel_open", baseOpen)).print()

        // fcontext.lookup
        let records = try samplePaths(count: 100_000)
        var input: [UInt8] = []
        for r in records {
            input += Array(String(r.mode, radix: 8).utf8)
            input.append(0x20)
            input += r.path
            input.append(0)
        }
        let baselineResults = "\(work.directory)/baseline.out"
        let inputPath = "\(work.directory)/records"
        try Data(input).write(to: URL(fileURLWithPath: inputPath))
        let out = try shell([baseline, "lookup", fc], inputPath: inputPath, environment: ["FCONTEXT_BASELINE_OUT": baselineResults])
        let baseSeconds = try number(out, "lookup_s")
        let baseRate = Double(records.count) / baseSeconds

        let loaded = try FileContexts.load(path: fc)
        let matcher = loaded.makeMatcher()
        var ours: [FileContextsMatch] = []
        ours.reserveCapacity(records.count)
        t0 = threadCPU()
        for r in records { ours.append(matcher.lookup(path: r.path, fileType: FileType(mode: r.mode))) }
        let cold = threadCPU() - t0
        t0 = threadCPU()
        var warmHits = 0
        for r in records { if case .labeled = matcher.lookup(path: r.path, fileType: FileType(mode: r.mode)) { warmHits += 1 } }
        let warm = threadCPU() - t0
        let expected = (try String(contentsOfFile: baselineResults, encoding: .utf8)).split(separator: "\n")
        var mismatches = 0
        for (k, m) in ours.enumerated() where k >= expected.count || expected[k] != m.rawContext { mismatches += 1 }

        // The same paths in random order, with a fresh matcher: no help from the previous path's prefix.
        var rng = SystemRandomNumberGenerator()
        let shuffled = records.shuffled(using: &rng)
        let fresh = loaded.makeMatcher()
        t0 = threadCPU()
        for r in shuffled { if case .labeled = fresh.lookup(path: r.path, fileType: FileType(mode: r.mode)) { warmHits += 1 } }
        let random = threadCPU() - t0

        let rate = Double(records.count) / cold
        Figure(name: "fcontext.lookup", value: rate, unit: "lookups/s", baseline: ("libselinux", baseRate)).print()
        Figure(name: "fcontext.lookup.warm", value: Double(records.count) / warm, unit: "lookups/s",
               baseline: ("libselinux", baseRate)).print()
        Figure(name: "fcontext.lookup.shuffled", value: Double(records.count) / random, unit: "lookups/s",
               baseline: ("libselinux", baseRate)).print()
        Figure(name: "fcontext.lookup.libselinux", value: baseRate, unit: "lookups/s").print()
        Figure(name: "fcontext.lookup.paths", value: Double(records.count), unit: "paths").print()
        Figure(name: "fcontext.lookup.dfa_states", value: Double(matcher.stateCount), unit: "states").print()
        Figure(name: "fcontext.lookup.mismatches", value: Double(mismatches), unit: "paths").print()
        _ = warmHits

        try RestoreconBench.run(fileContexts: fc, workDirectory: work.directory)
    }

    /// Copies the text file_contexts and its text companions to a new directory, so that libselinux cannot
    /// prefer a `file_contexts.bin`.
    static func makeTextCopy(of path: String) throws -> (directory: String, fileContexts: String) {
        let dir = "/tmp/svirt-bench-fcontext-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let target = "\(dir)/file_contexts"
        for suffix in ["", ".homedirs", ".local", ".subs_dist", ".subs"] {
            if FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.copyItem(atPath: path + suffix, toPath: target + suffix)
            }
        }
        return (dir, target)
    }

    struct Record { var mode: UInt32; var path: [UInt8] }

    /// An even sample of `count` paths from `find / -xdev`, with their lstat modes.
    static func samplePaths(count: Int) throws -> [Record] {
        let listing = try shell(["find", "/", "-xdev", "-printf", "%y %p\\0"], allowFailure: true)
        var all: [Record] = []
        let modes: [UInt8: UInt32] = [UInt8(ascii: "f"): 0o100000, UInt8(ascii: "d"): 0o040000,
                                      UInt8(ascii: "l"): 0o120000, UInt8(ascii: "p"): 0o010000,
                                      UInt8(ascii: "s"): 0o140000, UInt8(ascii: "c"): 0o020000,
                                      UInt8(ascii: "b"): 0o060000]
        for rec in listing.split(separator: 0) where rec.count > 2 {
            guard let m = modes[rec[rec.startIndex]] else { continue }
            all.append(Record(mode: m, path: Array(rec.dropFirst(2))))
        }
        guard all.count > count else { return all }
        let stride = Double(all.count) / Double(count)
        return (0..<count).map { all[Int(Double($0) * stride)] }
    }

    static func number(_ output: [UInt8], _ key: String) throws -> Double {
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key, let v = Double(parts[1]) { return v }
        }
        throw BenchError(description: "the baseline printed no '\(key)'")
    }

    /// Runs a program and returns its stdout.
    @discardableResult
    static func shell(_ argv: [String], inputPath: String? = nil, environment: [String: String] = [:],
                      allowFailure: Bool = false) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let outPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = FileHandle.nullDevice
        if let inputPath { p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath)) }
        try p.run()
        let data = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 && !allowFailure {
            throw BenchError(description: "\(argv.joined(separator: " ")) exited with \(p.terminationStatus)")
        }
        return Array(data)
    }
}
