import Foundation
import Glibc
import Testing
@testable import SVirtLinux

let killEveryStep = ProcessInfo.processInfo.environment["SVIRT_KILL_ALL"] == "1"

/// The longer kill-at-every-step runs (scripts/kill-every-step; SVIRT_KILL_ALL=1): `svirt shutdown`, `svirt clone`,
/// `svirt label restore` and `svirt restorecon` killed with SIGKILL at each state-changing system call in turn,
/// each kill followed by the next command and the check that nothing is lost or half done.
@Suite("kill at every step of shutdown, clone, label restore and restorecon", .serialized,
       .enabled(if: killEveryStep && isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
                    && (try? Landlock.ABI.current()) != nil,
                "SVIRT_KILL_ALL=1 (scripts/kill-every-step), root, strace and Landlock"))
struct KillEveryStepTests {
    static let syscalls = ["setxattr", "fsetxattr", "lsetxattr", "removexattr", "fremovexattr", "lremovexattr", "fchownat",
                           "fchown", "fchmod", "ftruncate", "pwrite64", "fdatasync", "fsync", "rename", "renameat", "renameat2",
                           "unlink", "unlinkat", "clone"]

    @Test("svirt shutdown killed at each step: the next command finishes the job, or the VM still runs with everything it holds")
    func shutdown() throws {
        let h = try KillHost()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        var running: [KillPoint] = []
        let points = try h.killAtEach(["shutdown", KillHost.name, "--timeout", "10"], Self.syscalls, prepare: {
            let started = try h.svirtHere(["start", KillHost.name, "--stand-in"])
            #expect(started.status == 0, "start: \(started.stderr)")
        }, whole: { _ in
            try h.expectPristine("after a whole shutdown")
        }, check: { p in
            if try StartStopKillTests.settle(h, "shutdown killed at \(p)") { running.append(p) }
        })
        #expect(points.count >= 12, "only \(points.summary)")
        #expect(running == Array(points.prefix(running.count)), "left running after kills at \(running) of \(points)")
        print("kill-every-step: shutdown: \(points.summary); left running after \(running.count)")
    }

    @Test("svirt clone killed at each step: after the next command there is no clone and no copy, or the whole clone; the source is untouched")
    func clone() throws {
        let h = try KillHost()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        let copies = ["\(h.dir)/c.img", "\(h.dir)/d.img"]
        let expectedFiles = Set(["a.img", "b.img", "state", "vm.xml", "strace.log"])
        let prepare = {
            _ = try h.svirtHere(["undefine", "kclone"])
            for c in copies { unlink(c) }
        }
        /// Returns whether the clone exists (complete).
        func check(_ when: String) throws -> Bool {
            let rows = try h.domains(when)
            let cloned = rows.contains { $0.name == "kclone" }
            #expect(rows.contains { $0.name == KillHost.name && $0.state == "shut off" }, "\(when): the source: \(rows)")
            for p in h.images {
                #expect(FileManager.default.contents(atPath: p) == KillHost.content, "\(when): \(p) content")
                #expect(xattr("security.selinux", p) == KillHost.original, "\(when): \(p) label")
                #expect(h.owner(p) == (4242, 4343), "\(when): \(p) owner")
                #expect(try attributeNames(p) == ["security.selinux"], "\(when): \(p) attributes")
            }
            let files = Set((try? FileManager.default.contentsOfDirectory(atPath: h.dir)) ?? [])
            if cloned {
                #expect(files == expectedFiles.union(["c.img", "d.img"]), "\(when): files \(files.sorted())")
                for c in copies {
                    #expect(FileManager.default.contents(atPath: c) == KillHost.content, "\(when): \(c) content")
                    #expect(xattr("security.selinux", c) == KillHost.original, "\(when): \(c) label")
                    #expect(h.owner(c) == (4242, 4343), "\(when): \(c) owner")
                    var st = stat()
                    stat(c, &st)
                    #expect(st.st_mode & 0o7777 == 0o644, "\(when): \(c) mode")
                }
                let xml = try h.svirtHere(["dumpxml", "kclone"]).stdout
                #expect(copies.allSatisfy { xml.contains($0) }, "\(when): the clone's disks: \(xml)")
            } else {
                #expect(files == expectedFiles, "\(when): a copy is left without a clone: \(files.subtracting(expectedFiles).sorted())")
            }
            return cloned
        }
        var cloned: [KillPoint] = []
        let points = try h.killAtEach(["clone", KillHost.name, "kclone", "--file", copies[0], "--file", copies[1]], Self.syscalls,
                                      prepare: prepare, whole: { r in
            let complete = try check("after a whole clone")
            #expect(complete, "no clone: \(r.stderr)")
        }, check: { p in
            if try check("clone killed at \(p)") { cloned.append(p) }
        })
        #expect(points.count >= 10, "only \(points.summary)")
        // Once a kill leaves the whole clone, every later one does.
        #expect(cloned == Array(points.suffix(cloned.count)), "complete after kills at \(cloned) of \(points)")
        print("kill-every-step: clone: \(points.summary); complete after \(cloned.count)")
    }

    @Test("svirt label restore killed at each step: every file keeps the VM's label with its record, or has its original back; a second restore finishes")
    func labelRestore() throws {
        let h = try KillHost()
        try h.reset()
        let xml = "\(h.dir)/vm.xml"
        let level = "s0:c17,c71"
        var between: [KillPoint] = []
        let points = try h.killAtEach(["label", "restore", xml], Self.syscalls, prepare: {
            let applied = try h.svirtHere(["label", "apply", xml, "--level", level])
            #expect(applied.status == 0, "apply: \(applied.stderr)")
        }, whole: { _ in
            try h.expectPristine("after a whole restore")
        }, check: { p in
            let when = "label restore killed at \(p)"
            _ = try h.domains(when)
            var recorded = false
            for f in h.images {
                let label = xattr("security.selinux", f)
                let names = try attributeNames(f).filter { $0.hasPrefix("trusted.") }
                if label == "system_u:object_r:svirt_image_t:\(level)" {
                    #expect(xattr("trusted.svirt.security.selinux", f) == KillHost.original
                            && xattr("trusted.svirt.security.ref_selinux", f) == "1", "\(when): \(f) has the VM's label without its record: \(names)")
                } else {
                    // The original is back. Its record goes after it (the other order could lose it), so a kill in
                    // between leaves what is left of the record, naming that same original: a second restore
                    // removes it.
                    #expect(label == KillHost.original, "\(when): \(f) has \(label ?? "no label")")
                    let original = xattr("trusted.svirt.security.selinux", f)
                    #expect(original == nil || original == KillHost.original, "\(when): \(f) records \(original ?? "")")
                    if !names.isEmpty && !between.contains(p) { between.append(p) }
                }
                recorded = recorded || !names.isEmpty
                #expect(h.owner(f) == (4242, 4343), "\(when): \(f) owner")
            }
            // While any file keeps svirt's record the level stays reserved: no other VM can be given it meanwhile.
            if recorded { #expect(try h.levels().map(\.level) == [level], "\(when): the level was released before every record went") }
            let again = try h.svirtHere(["label", "restore", xml])
            #expect(again.status == 0, "\(when): restore again: \(again.stderr)")
            try h.expectPristine("\(when), restored again")
        })
        #expect(points.count >= 10, "only \(points.summary)")
        print("kill-every-step: label restore: \(points.summary); original back with the record still to remove after \(between.count)")
    }

    @Test("svirt restorecon killed at each step: every file has its original label or its default, and a second run finishes")
    func restorecon() throws {
        let h = try KillHost()
        let dir = "\(h.dir)/rc"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let originals = ["system_u:object_r:tmp_t:s0", "unconfined_u:object_r:user_home_t:s0", "system_u:object_r:virt_image_t:s0",
                         "system_u:object_r:default_t:s0", "staff_u:object_r:staff_home_t:s0:c3", "system_u:object_r:etc_t:s0"]
        let files = originals.indices.map { "\(dir)/f\($0)" }
        let wanted = "system_u:object_r:virt_content_t:s0"
        let contexts = "\(h.dir)/file_contexts"
        try "\(dir)/.*\t\(wanted)\n".write(toFile: contexts, atomically: true, encoding: .utf8)
        let prepare = {
            for (f, l) in zip(files, originals) {
                _ = FileManager.default.createFile(atPath: f, contents: Data("x".utf8))
                try ExtendedAttributes.set("security.selinux", value: Array(l.utf8) + [0], path: f)
            }
        }
        // One thread, so that strace counts every label write in it.
        let command = ["restorecon", "-R", "--threads", "1", "--file", contexts, dir]
        let points = try h.killAtEach(command, Self.syscalls, prepare: prepare, whole: { r in
            #expect(files.allSatisfy { xattr("security.selinux", $0) == wanted }, "a whole restorecon: \(r.stderr)")
        }, check: { p in
            let when = "restorecon killed at \(p)"
            _ = try h.domains(when)
            var done = 0
            for (f, l) in zip(files, originals) {
                let label = xattr("security.selinux", f)
                #expect(label == l || label == wanted, "\(when): \(f) has \(label ?? "none")")
                #expect(try attributeNames(f) == ["security.selinux"], "\(when): \(f) attributes")
                if label == wanted { done += 1 }
            }
            #expect(done == p.n - 1 || p.syscall != "lsetxattr" && p.syscall != "setxattr", "\(when): \(done) files relabelled")
            let again = try h.svirtHere(command)
            #expect(again.status == 0, "\(when): again: \(again.stderr)")
            #expect(files.allSatisfy { xattr("security.selinux", $0) == wanted }, "\(when): after a second run")
        })
        #expect(points.filter { $0.syscall.hasSuffix("setxattr") }.count == files.count, "\(points.summary)")
        print("kill-every-step: restorecon: \(points.summary)")
    }
}
