import Foundation
import Glibc
import Testing
@testable import SVirtLinux

/// `svirt start` and `svirt destroy` killed with SIGKILL at each state-changing system call in turn (strace's fault
/// injection): every xattr write and removal, every owner change, every registry transaction (its first write to
/// the WAL, and the checkpoint), every sync, and the fork of the guest. After each kill the next command (`svirt
/// list`) reconciles, and then the registry and the host agree: either the VM runs (its QEMU alive and recorded,
/// its level and only that reserved, its files with its label and owner and svirt's records of the originals) and
/// a destroy gives everything back, or every file has its exact original label and owner, carries no svirt
/// record, no level is reserved and no guest process is left.
@Suite("kill at every step of start and destroy", .serialized,
       .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") && (try? Landlock.ABI.current()) != nil,
                "needs root, strace and Landlock"))
struct StartStopKillTests {
    static let syscalls = ["setxattr", "removexattr", "fchownat", "pwrite64", "fdatasync", "fsync", "rename", "renameat2", "clone"]

    /// After a kill and the next command: consistent; a VM left running is destroyed, and then nothing is left.
    static func settle(_ h: KillHost, _ when: String) throws -> Bool {
        guard try h.expectConsistent(when) else { return false }
        let destroyed = try h.svirtHere(["destroy", KillHost.name])
        #expect(destroyed.status == 0, "\(when): destroy: \(destroyed.stderr)")
        try h.expectPristine("\(when), then destroyed")
        return true
    }

    @Test("svirt start killed at each xattr write and removal, owner change, registry transaction, sync and the guest's fork: the next command reconciles")
    func start() throws {
        let h = try KillHost()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        var running: [KillPoint] = []
        let points = try h.killAtEach(["start", KillHost.name, "--stand-in"], Self.syscalls, prepare: {}, whole: { _ in
            #expect(try h.expectConsistent("after a whole start"), "a whole start left no running VM")
            let destroyed = try h.svirtHere(["destroy", KillHost.name])
            #expect(destroyed.status == 0, "destroy: \(destroyed.stderr)")
            try h.expectPristine("after a whole start and destroy")
        }, check: { p in
            if try Self.settle(h, "start killed at \(p)") { running.append(p) }
        })
        for s in ["setxattr", "fchownat", "pwrite64", "clone"] {
            #expect(points.contains { $0.syscall == s }, "no kill point at \(s): \(points.summary)")
        }
        #expect(points.count >= 20, "only \(points.summary)")
        // A kill leaves the VM running only once the running row is committed: the last kill points, and only those.
        #expect(!running.isEmpty && running == Array(points.suffix(running.count)),
                "left running after kills at \(running) of \(points)")
        print("kill-every-step: start: \(points.summary); left running after \(running.count)")
    }

    @Test("svirt destroy killed at each xattr write and removal, owner change, registry transaction and sync: the next command finishes the job")
    func destroy() throws {
        let h = try KillHost()
        try h.reset()
        #expect(try h.svirtHere(["define", "\(h.dir)/vm.xml"]).status == 0)
        let start = {
            let started = try h.svirtHere(["start", KillHost.name, "--stand-in"])
            #expect(started.status == 0, "start: \(started.stderr)")
        }
        var running: [KillPoint] = []
        let points = try h.killAtEach(["destroy", KillHost.name], Self.syscalls, prepare: start, whole: { _ in
            try h.expectPristine("after a whole destroy")
        }, check: { p in
            if try Self.settle(h, "destroy killed at \(p)") { running.append(p) }
        })
        for s in ["setxattr", "removexattr", "fchownat", "pwrite64"] {
            #expect(points.contains { $0.syscall == s }, "no kill point at \(s): \(points.summary)")
        }
        #expect(points.count >= 12, "only \(points.summary)")
        // The VM still runs only after a kill before the stop was claimed: the first kill points, and only those.
        #expect(running == Array(points.prefix(running.count)), "left running after kills at \(running) of \(points)")
        print("kill-every-step: destroy: \(points.summary); left running after \(running.count)")
    }
}
