import Foundation
import SELinux
import SELinuxPolicy

/// `svirt-bench policy`: svirt's policy engine against libsepol on the same policy and the same queries, in one
/// invocation. libsepol runs in bench/policy_baseline.c, built by bench/build.sh.
///
/// - policy.load: median time to read and load the policy file (ratio below 1 is better).
/// - policy.decide.uncached: decisions per second from context strings, no cache, over many distinct contexts
///   (each VM has its own category pair), warm, repeated passes for a second, against sepol_context_to_sid +
///   sepol_compute_av on the same footing: warm, repeated, and libsepol's SID table (a linear list) kept to at most
///   400 contexts by reloading the policy, untimed, every 200 queries. `policy.decide.uncached.libsepol.tableN` is
///   the baseline's curve as its table grows (a reload every N queries), and `.cold` the first, cold pass.
/// - policy.decide.cached: decisions per second through the AccessVectorCache, one core. No ratio: libsepol has
///   no cache, so a ratio against its full computation would compare a hit with a miss. The fair baseline is the
///   kernel's AVC, and the only enforcing kernel here runs under TCG (the enforcing-guest suite), where its rate
///   would measure the emulator, not the cache.
/// - policy.memory: resident memory the loaded policy adds (ratio below 1 is better).
enum PolicyBench {
    static func repositoryRoot() -> String {
        let cwd = FileManager.default.currentDirectoryPath
        if FileManager.default.fileExists(atPath: cwd + "/bench/build.sh") { return cwd }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    static func residentKB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }

    /// glibc's malloc_trim (not in the Glibc module): returns freed heap pages to the system before RSS is read.
    static func malloc_trim(_ pad: Int) {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        typealias Trim = @convention(c) (Int) -> Int32
        _ = unsafeBitCast(sym, to: Trim.self)(pad)
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("svirt-bench policy: \(message)\n".utf8))
        exit(1)
    }

    static func run() {
        let root = repositoryRoot()
        let env = ProcessInfo.processInfo.environment
        var policyPath = env["SVIRT_BENCH_POLICY"] ?? "/etc/selinux/default/policy/policy.33"
        if !FileManager.default.fileExists(atPath: policyPath) { policyPath = root + "/policy/builtin/svirt.33" }
        print("# policy \(policyPath)")

        // Memory first, in a process that has loaded nothing else.
        malloc_trim(0)
        let rssBefore = residentKB()
        guard let first = load(policyPath) else { fail("cannot load \(policyPath)") }
        malloc_trim(0)
        let rssAfter = residentKB()
        var loadTimes: [Double] = []
        for _ in 0..<5 {
            let t0 = now()
            _ = load(policyPath)
            loadTimes.append(now() - t0)
        }
        loadTimes.sort()
        let policy = first

        let queries = makeQueries(policy, count: 5000)
        let dir = NSTemporaryDirectory() + "svirt-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let qfile = dir + "/queries.tsv"
        let text = queries.map { "\($0.0)\t\($0.1)\t\($0.2)" }.joined(separator: "\n") + "\n"
        guard (try? text.write(toFile: qfile, atomically: true, encoding: .utf8)) != nil else { fail("cannot write \(qfile)") }
        let base = baseline(root: root, policy: policyPath, queries: qfile)

        // Uncached: strings in, decision out, every time.
        var passes = 0
        var allowedCount = 0
        let t0 = now()
        repeat {
            for q in queries {
                guard let d = try? policy.decide(source: q.0, target: q.1, class: q.2) else { fail("query refused: \(q)") }
                allowedCount &+= Int(d.allowed.rawValue & 1)
            }
            passes += 1
        } while now() - t0 < 1.0
        let uncached = Double(passes * queries.count) / (now() - t0)

        // Cached: SIDs in, vectors out.
        let cache = AccessVectorCache(policy: policy, capacity: 1 << 20)
        var triples: [(SecurityID, SecurityID, Int)] = []
        for q in queries {
            guard let s = try? policy.resolve(q.0), let t = try? policy.resolve(q.1),
                  let c = policy.policyClass(named: q.2) else { fail("query refused: \(q)") }
            triples.append((cache.sid(for: s), cache.sid(for: t), c.value))
        }
        for (s, t, c) in triples { _ = cache.accessVectors(source: s, target: t, classValue: c) }
        var n = 0
        let t1 = now()
        repeat {
            for (s, t, c) in triples {
                allowedCount &+= Int(cache.accessVectors(source: s, target: t, classValue: c).allowed.rawValue & 1)
            }
            n += triples.count
        } while now() - t1 < 1.0
        let cached = Double(n) / (now() - t1)
        if allowedCount == -1 { print("") }

        let ms = loadTimes[2] * 1000
        Figure(name: "policy.load", value: ms, unit: "ms", baseline: ("libsepol", base["load_ms"] ?? 0)).print()
        Figure(name: "policy.decide.uncached", value: uncached, unit: "decisions/s",
               baseline: ("libsepol-sepol_compute_av-table200", base["uncached_per_s"] ?? 0)).print()
        Figure(name: "policy.decide.cached", value: cached, unit: "decisions/s").print()
        Figure(name: "policy.memory", value: Double(rssAfter - rssBefore) / 1024, unit: "MB",
               baseline: ("libsepol", (base["rss_kb"] ?? 0) / 1024)).print()
        Figure(name: "policy.load.libsepol", value: base["load_ms"] ?? 0, unit: "ms").print()
        Figure(name: "policy.decide.uncached.libsepol", value: base["uncached_per_s"] ?? 0, unit: "decisions/s").print()
        for n in [50, 200, 1000, 5000] {
            Figure(name: "policy.decide.uncached.libsepol.table\(n)", value: base["uncached_table\(n)_per_s"] ?? 0,
                   unit: "decisions/s").print()
        }
        Figure(name: "policy.decide.uncached.libsepol.cold", value: base["cold_per_s"] ?? 0, unit: "decisions/s").print()
        Figure(name: "policy.decide.sid.libsepol", value: base["sid_per_s"] ?? 0, unit: "decisions/s").print()
        Figure(name: "policy.memory.libsepol", value: (base["rss_kb"] ?? 0) / 1024, unit: "MB").print()
    }

    static func load(_ path: String) -> PolicyDatabase? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return data.withUnsafeBytes { try? PolicyDatabase(bytes: $0, source: path) }
    }

    /// sVirt-shaped queries: VMs with their own category pairs against their images, other VMs' images, shared
    /// and unlabeled images, and each other.
    static func makeQueries(_ p: PolicyDatabase, count: Int) -> [(String, String, String)] {
        var rng = SystemRandomNumberGenerator()
        let cats = max(2, p.categories.count)
        func pair() -> String {
            let a = Int.random(in: 0..<cats, using: &rng)
            var b = Int.random(in: 0..<cats, using: &rng)
            while b == a { b = Int.random(in: 0..<cats, using: &rng) }
            return "s0:c\(min(a, b)),c\(max(a, b))"
        }
        let domains = ["svirt_t", "svirt_tcg_t"].filter { p.type(named: $0) != nil }
        let objects = ["svirt_image_t", "virt_image_t", "virt_content_t", "etc_t", "tmp_t", "user_home_t", "virt_etc_t"]
            .filter { p.type(named: $0) != nil }
        let classes = ["file", "dir", "chr_file", "blk_file", "sock_file"].filter { p.policyClass(named: $0) != nil }
        var out: [(String, String, String)] = []
        while out.count < count {
            let d = domains.randomElement(using: &rng) ?? "svirt_t"
            let level = pair()
            let s = "system_u:system_r:\(d):\(level)"
            let t: String, c: String
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: t = "system_u:object_r:svirt_image_t:\(level)"; c = classes.randomElement(using: &rng) ?? "file"
            case 1: t = "system_u:system_r:\(d):\(pair())"; c = "process"
            case 2: t = "system_u:object_r:svirt_image_t:\(pair())"; c = classes.randomElement(using: &rng) ?? "file"
            default: t = "system_u:object_r:\(objects.randomElement(using: &rng) ?? "svirt_image_t"):s0"; c = "file"
            }
            guard (try? p.resolve(s)) != nil, (try? p.resolve(t)) != nil else { continue }
            out.append((s, t, c))
        }
        return out
    }

    /// Builds (if needed) and runs the libsepol baseline; returns its figures.
    static func baseline(root: String, policy: String, queries: String) -> [String: Double] {
        let binary = root + "/.build/bench/policy_baseline"
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/bin/bash")
        build.arguments = [root + "/bench/build.sh"]
        do {
            try build.run()
            build.waitUntilExit()
        } catch { fail("cannot run bench/build.sh: \(error)") }
        guard build.terminationStatus == 0 else { fail("bench/build.sh failed (needs cc and libsepol-dev)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = [policy, queries]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { fail("cannot run \(binary): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { fail("\(binary) exited \(p.terminationStatus)") }
        var figures: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = Double(f[1]) { figures[String(f[0])] = v }
        }
        return figures
    }
}
