import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

/// The key proof: two guests, each under a Landlock ruleset that grants read-write on its own image only. Over
/// QMP, VM1's `blockdev-add` of VM2's image is refused with "Permission denied" while a second view of its own
/// image opens. Serialized: each test runs two emulators, and the machine has two cores.
@Suite("confined guests", .serialized) struct ConfinedGuestTests {
    @Test("two confined QEMU guests: VM1 is refused VM2's image and opens its own again",
          .enabled(if: isRoot, "needs root"), .enabled(if: hasQEMU, "needs qemu-system"),
          .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func twoQEMUGuests() throws {
        let dir = try TemporaryDirectory("svirt-e2e")
        defer { dir.remove() }
        let img1 = try makeImage(dir, "vm1.img"), img2 = try makeImage(dir, "vm2.img")
        let (c1, run1) = try guestConfiguration("vm1", image: img1, dir: dir)
        let (c2, run2) = try guestConfiguration("vm2", image: img2, dir: dir)
        let vm1 = try startQEMU(c1, run: run1)
        defer { GuestSupervisor.stop(vm1.process, powerdownTimeout: .zero) }
        let vm2 = try startQEMU(c2, run: run2)
        defer { GuestSupervisor.stop(vm2.process, powerdownTimeout: .zero) }
        #expect(vm1.process.identity.pid != vm2.process.identity.pid)
        #expect(try vm1.monitor.execute("query-status")["status"] == "prelaunch")

        // VM1's QEMU opens VM2's image: Landlock refuses it, and QEMU says so in its own words.
        let refused = try #require(throws: QMPError.self) {
            try vm1.monitor.execute("blockdev-add", arguments: [
                "driver": "file", "filename": .string(img2), "node-name": "peek", "read-only": true,
            ])
        }
        #expect(refused.kind == .command)
        #expect(refused.errorClass == "GenericError")
        #expect(refused.message == "Could not open '\(img2)': Permission denied")
        // And read-write, the same.
        let refusedRW = try #require(throws: QMPError.self) {
            try vm1.monitor.execute("blockdev-add", arguments: [
                "driver": "file", "filename": .string(img2), "node-name": "peek-rw",
            ])
        }
        #expect(refusedRW.message == "Could not open '\(img2)': Permission denied")

        // A second view of its own image, read-only and read-write, opens.
        try vm1.monitor.execute("blockdev-add", arguments: [
            "driver": "file", "filename": .string(img1), "node-name": "own-ro", "read-only": true,
        ])
        try vm1.monitor.execute("blockdev-add", arguments: [
            "driver": "file", "filename": .string(img1), "node-name": "own-rw",
        ])
        // The same holds the other way round.
        let refused2 = try #require(throws: QMPError.self) {
            try vm2.monitor.execute("blockdev-add", arguments: [
                "driver": "file", "filename": .string(img1), "node-name": "peek", "read-only": true,
            ])
        }
        #expect(refused2.message == "Could not open '\(img1)': Permission denied")

        // Control: the same QEMU command line without Landlock opens VM2's image, so the refusal was Landlock's.
        let img3 = try makeImage(dir, "vm3.img")
        let (c3, run3) = try guestConfiguration("vm3", image: img3, dir: dir)
        let control = try startQEMU(c3, run: run3, confined: false)
        defer { GuestSupervisor.stop(control.process, powerdownTimeout: .zero) }
        try control.monitor.execute("blockdev-add", arguments: [
            "driver": "file", "filename": .string(img2), "node-name": "peek", "read-only": true,
        ])

        // Stop: a guest without an OS ignores the power button, so this is SIGTERM.
        vm1.monitor.close()
        vm2.monitor.close()
        #expect(GuestSupervisor.stop(vm1.process, powerdownTimeout: .milliseconds(300)) == .terminated)
        #expect(GuestSupervisor.stop(vm2.process, powerdownTimeout: .zero) == .terminated)
        #expect(!GuestSupervisor.isRunning(vm1.process) && !GuestSupervisor.isRunning(vm2.process))
    }

    @Test("two confined stand-in guests: VM1 is refused VM2's image and opens its own again",
          .enabled(if: isRoot, "needs root"), .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func twoStandInGuests() throws {
        #expect(FileManager.default.isExecutableFile(atPath: svirtExecutable), "build the svirt product first")
        let dir = try TemporaryDirectory("svirt-e2e")
        defer { dir.remove() }
        let img1 = try makeImage(dir, "vm1.img"), img2 = try makeImage(dir, "vm2.img")
        let (c1, run1) = try guestConfiguration("vm1", image: img1, dir: dir)
        let (c2, run2) = try guestConfiguration("vm2", image: img2, dir: dir)
        let vm1 = try startStandIn(c1, run: run1)
        defer { GuestSupervisor.stop(vm1.process, powerdownTimeout: .zero) }
        let vm2 = try startStandIn(c2, run: run2)
        defer { GuestSupervisor.stop(vm2.process, powerdownTimeout: .zero) }
        #expect(vm1.monitor.greeting.package == "svirt stand-in guest")
        #expect(try vm1.monitor.execute("query-status")["status"] == "running")
        // The stand-in holds its own disk open, as QEMU does.
        let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(vm1.process.identity.pid)/fd")
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(vm1.process.identity.pid)/fd/\($0)") }
        #expect(held.contains(img1))

        let refused = try #require(throws: QMPError.self) {
            try vm1.monitor.execute("blockdev-add", arguments: [
                "driver": "file", "filename": .string(img2), "node-name": "peek", "read-only": true,
            ])
        }
        #expect(refused.message == "Could not open '\(img2)': Permission denied")
        try vm1.monitor.execute("blockdev-add", arguments: [
            "driver": "raw", "node-name": "own", "file": ["driver": "file", "filename": .string(img1)],
        ])
        // Unconfined, the same stand-in opens VM2's image.
        let img3 = try makeImage(dir, "vm3.img")
        let (c3, run3) = try guestConfiguration("vm3", image: img3, dir: dir)
        let control = try startStandIn(c3, run: run3, confined: false)
        defer { GuestSupervisor.stop(control.process, powerdownTimeout: .zero) }
        try control.monitor.execute("blockdev-add", arguments: [
            "driver": "file", "filename": .string(img2), "node-name": "peek", "read-only": true,
        ])

        // The stand-in honours the power button.
        vm1.monitor.close()
        vm2.monitor.close()
        #expect(GuestSupervisor.stop(vm1.process, powerdownTimeout: .seconds(10)) == .poweredOff)
        #expect(GuestSupervisor.stop(vm2.process, powerdownTimeout: .seconds(10)) == .poweredOff)
    }

    @Test("a confined QEMU runs as an unprivileged user and group, as libvirt's DAC driver starts it",
          .enabled(if: isRoot, "needs root"), .enabled(if: hasQEMU, "needs qemu-system"),
          .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func unprivilegedQEMU() throws {
        let dir = try TemporaryDirectory("svirt-e2e")
        defer { dir.remove() }
        chmod(dir.path, 0o755)
        let img = try makeImage(dir, "dac.img")
        let (uid, gid): (UInt32, UInt32) = (65534, 65534)
        #expect(chown(img, uid, gid) == 0)
        var (c, run) = try guestConfiguration("dac", image: img, dir: dir)
        // /dev/kvm is root:kvm 0660: the guest needs the kvm group, as libvirt's qemu user has it.
        var groups: [UInt32] = []
        if let kvm = getgrnam("kvm") { groups.append(kvm.pointee.gr_gid) }
        if groups.isEmpty { c.accelerator = .tcg }
        let emulator = try #require(qemuEmulator)
        var d = try QEMUCommandLine(c, emulator: emulator).launchDescription()
        d.landlock = .guest(c, system: try QEMUSystemPaths.compute(for: emulator, kvm: c.accelerator == .kvm))
        d.credentials = .init(uid: uid, gid: gid, groups: groups)
        let g = try GuestSupervisor.start(d, qmpSocket: run.qmpSocket, logFile: run.logFile, timeout: .seconds(60))
        defer { GuestSupervisor.stop(g.process, powerdownTimeout: .zero) }
        let status = readText("/proc/\(g.process.identity.pid)/status")
        #expect(status.contains("Uid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)"))
        #expect(status.contains("Gid:\t\(gid)\t\(gid)\t\(gid)\t\(gid)"))
        #expect(status.contains("NoNewPrivs:\t1"))
        try g.monitor.execute("blockdev-add", arguments: [
            "driver": "file", "filename": .string(img), "node-name": "own-ro", "read-only": true,
        ])
    }
}
