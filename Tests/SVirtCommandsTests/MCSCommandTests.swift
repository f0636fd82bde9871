import Foundation
import Glibc
import Testing

@Suite("svirt mcs") struct MCSCommandTests {
    @Test("64 concurrent 'svirt mcs allocate' processes get 64 distinct levels, 20 runs in a row")
    func concurrentAllocate() throws {
        for run in 0..<20 {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // A fresh state directory each run, so the 64 processes also race to create the registry. A small
            // pool (c0..c15, 120 pairs) makes a collision near certain if allocation were not atomic.
            var procs: [(Process, Pipe, Pipe)] = []
            for i in 0..<64 {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: svirtBinary)
                p.arguments = ["mcs", "allocate", "--owner", "p\(i)", "--state-dir", "\(dir)/state", "--categories", "c0.c15"]
                let out = Pipe(), err = Pipe()
                p.standardOutput = out
                p.standardError = err
                try p.run()
                procs.append((p, out, err))
            }
            var levels: [String] = []
            for (p, out, err) in procs {
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                #expect(p.terminationStatus == 0, "run \(run): \(errText)")
                levels.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            #expect(levels.count == 64)
            #expect(Set(levels).count == 64, "run \(run): duplicates in \(levels.sorted())")
            #expect(levels.allSatisfy { $0.hasPrefix("s0:c") })
            let list = try svirt(["mcs", "list", "--json", "--state-dir", "\(dir)/state"])
            let rows = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
            #expect(Set(rows?.compactMap { $0["level"] as? String } ?? []) == Set(levels))
        }
    }

    @Test("a full pool makes 'svirt mcs allocate' fail at once with the counts")
    func exhausted() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["--state-dir", dir, "--categories", "c0.c7"]
        for i in 0..<28 { #expect(try svirt(["mcs", "allocate", "--owner", "v\(i)"] + base).status == 0) }
        let r = try svirt(["mcs", "allocate", "--owner", "late"] + base)
        #expect(r.status != 0)
        #expect(r.stderr.contains("no free category pair: all 28 pairs of s0:c0.c7 are taken"))
        let stats = try svirt(["mcs", "stats", "--json"] + base)
        let obj = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(obj?["freePairs"] as? Int == 0)
        #expect(obj?["reservations"] as? Int == 28)
    }

    @Test("reserve refuses a dominating level and names the holder; release frees it")
    func reserveRelease() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = ["--state-dir", dir]
        #expect(try svirt(["mcs", "reserve", "s0:c2,c1", "--owner", "Dynamic_VM1"] + s).stdout == "s0:c1,c2\n")
        let clash = try svirt(["mcs", "reserve", "s0:c1,c2,c3", "--owner", "Static_VM1"] + s)
        #expect(clash.status != 0)
        #expect(clash.stderr.contains("cannot reserve 's0:c1.c3': it dominates 's0:c1,c2'"))
        #expect(clash.stderr.contains("'Dynamic_VM1'"))
        let released = try svirt(["mcs", "release", "s0:c1,c2"] + s)
        #expect(released.status == 0)
        #expect(released.stdout.contains("released s0:c1,c2"))
        #expect(try svirt(["mcs", "list", "--json"] + s).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
    }

    @Test("reserve refuses a level that dominates the whole pool unless --force, which says what it overrides")
    func reserveWholePool() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = ["--state-dir", dir, "--categories", "c0.c1023"]
        let r = try svirt(["mcs", "reserve", "s0:c0.c1023", "--owner", "greedy"] + s)
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot reserve 's0:c0.c1023': s0:c0.c1023 dominates every pair of the pool s0:c0.c1023, "
                                  + "so no other VM could start"), "\(r.stderr)")
        #expect(r.stderr.contains("--force"))
        #expect(try svirt(["mcs", "list", "--json"] + s).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
        let forced = try svirt(["mcs", "reserve", "s0:c0.c1023", "--owner", "greedy", "--force"] + s)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("warning: --force: reserving 's0:c0.c1023' although"))
        #expect(try svirt(["mcs", "allocate", "--owner", "late"] + s).status != 0)
    }

    @Test("under umask 000 the state directory is made 0700 and the registry and its -wal/-shm files 0600")
    func privateModes() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = "\(dir)/state"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "umask 000 && exec \"$0\" mcs allocate --owner u --state-dir \"$1\" --categories c0.c15", svirtBinary, state]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        func mode(_ path: String) -> mode_t? {
            var st = stat()
            return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
        }
        #expect(mode(state) == 0o700)
        #expect(mode("\(state)/registry.sqlite") == 0o600)
        for side in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: "\(state)/registry.sqlite\(side)") {
            #expect(mode("\(state)/registry.sqlite\(side)") == 0o600, "registry.sqlite\(side)")
        }
    }

    @Test("a malformed level is a usage error that names the input")
    func badLevel() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try svirt(["mcs", "reserve", "s0:c1,c1024", "--owner", "x", "--state-dir", dir])
        #expect(r.status == 64)
        #expect(r.stderr.contains("invalid category 'c1024' in 's0:c1,c1024'"))
    }

    @Test("a reservation tied to a process is released by the next command once the process is gone")
    func reconcileOnOpen() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["600"]
        try sleeper.run()
        let s = ["--state-dir", dir]
        let got = try svirt(["mcs", "allocate", "--owner", "job", "--pid", "\(sleeper.processIdentifier)"] + s)
        #expect(got.status == 0)
        #expect(try svirt(["mcs", "list"] + s).stdout.contains("job"))
        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
        let after = try svirt(["mcs", "list"] + s)
        #expect(!after.stdout.contains("job"))
    }
}

@Suite("svirt host") struct HostCommandTests {
    @Test("with an empty SELinux tree, 'svirt host --json' reports built-in contexts and the kernel's state")
    func builtIn() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try svirt(["host", "--json", "--selinux-root", "\(dir)/none", "--state-dir", "\(dir)/state"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(["disabled", "permissive", "enforcing"].contains(obj["selinux"] as? String ?? ""))
        let contexts = obj["contexts"] as? [[String: Any]] ?? []
        #expect(contexts.first { $0["role"] as? String == "process (KVM)" }?["context"] as? String == "system_u:system_r:svirt_t:s0")
        #expect(contexts.allSatisfy { ($0["source"] as? String ?? "").contains("built-in") })
        #expect(obj["categoryPairs"] as? Int == 523_776)
    }

    @Test("SVIRT_SELINUX_ROOT is honoured like --selinux-root")
    func environment() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/tree/mine/contexts", withIntermediateDirectories: true)
        try "SELINUXTYPE=mine\n".write(toFile: "\(dir)/tree/config", atomically: true, encoding: .utf8)
        try "system_u:system_r:my_vm_t:s0\n".write(toFile: "\(dir)/tree/mine/contexts/virtual_domain_context", atomically: true, encoding: .utf8)
        let r = try svirt(["host", "--state-dir", "\(dir)/state"], env: ["SVIRT_SELINUX_ROOT": "\(dir)/tree"])
        #expect(r.stdout.contains("system_u:system_r:my_vm_t:s0"))
        #expect(r.stdout.contains("\(dir)/tree/mine/contexts/virtual_domain_context:1"))
    }
}
