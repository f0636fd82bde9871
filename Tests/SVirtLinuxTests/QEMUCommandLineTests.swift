import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

private let fakeEmulator = QEMUEmulator(path: "/usr/bin/qemu-system-x86_64", supportsSandbox: true, dataDirectories: [])

/// The value that follows `flag` each time it occurs.
private func values(_ args: [String], _ flag: String) -> [String] {
    args.indices.filter { args[$0] == flag && $0 + 1 < args.count }.map { args[$0 + 1] }
}

@Suite("QEMU command line") struct QEMUCommandLineTests {
    @Test("machine, accelerator, memory, vcpus, no display, sandbox and the monitor on descriptor 3")
    func basics() throws {
        var c = QEMUConfiguration(name: "Dynamic_VM1", machine: "q35", accelerator: .kvm, memoryMiB: 256, vcpus: 2,
                                  qmpSocket: "/run/svirt/vm1/qmp.sock")
        c.startPaused = true
        let cl = try QEMUCommandLine(c, emulator: fakeEmulator)
        let a = cl.arguments
        #expect(values(a, "-machine") == ["q35,accel=kvm"])
        #expect(values(a, "-m") == ["256"])
        #expect(values(a, "-smp") == ["2"])
        #expect(values(a, "-display") == ["none"])
        #expect(values(a, "-name") == ["guest=Dynamic_VM1,debug-threads=on"])
        #expect(values(a, "-sandbox").first?.hasPrefix("on,") == true)
        #expect(a.contains("-nodefaults") && a.contains("-no-user-config") && a.contains("-S"))
        #expect(values(a, "-chardev").first == "socket,id=charmonitor,fd=3,server=on,wait=off")
        #expect(values(a, "-mon") == ["chardev=charmonitor,id=monitor,mode=control"])
        #expect(cl.listeningSockets == [.init(path: "/run/svirt/vm1/qmp.sock", descriptor: 3)])
        c.accelerator = .tcg
        c.startPaused = false
        let tcg = try QEMUCommandLine(c, emulator: fakeEmulator).arguments
        #expect(values(tcg, "-machine") == ["q35,accel=tcg"])
        #expect(!tcg.contains("-S"))
    }

    @Test("-sandbox is left out when the emulator lacks seccomp or the configuration turns it off")
    func sandbox() throws {
        let c = QEMUConfiguration(name: "a", qmpSocket: "/r/q.sock")
        let noSeccomp = QEMUEmulator(path: "/q", supportsSandbox: false, dataDirectories: [])
        #expect(!(try QEMUCommandLine(c, emulator: noSeccomp).arguments.contains("-sandbox")))
        var off = c
        off.sandbox = false
        #expect(!(try QEMUCommandLine(off, emulator: fakeEmulator).arguments.contains("-sandbox")))
    }

    @Test("disks become blockdev nodes with devices: format, read-only, share-rw and cdroms")
    func disks() throws {
        var c = QEMUConfiguration(name: "d", qmpSocket: "/r/q.sock")
        c.disks = [
            .init(path: "/img/a,b.qcow2", format: .qcow2),
            .init(path: "/img/shared.img", shareable: true),
            .init(path: "/img/ro.img", readOnly: true),
            .init(path: "/img/cd.iso", device: .cdrom),
        ]
        let a = try QEMUCommandLine(c, emulator: fakeEmulator).arguments
        let blockdevs = try values(a, "-blockdev").map { try JSONValue.parse(Array($0.utf8)) }
        #expect(blockdevs.count == 8)
        #expect(blockdevs[0] == ["driver": "file", "filename": "/img/a,b.qcow2", "node-name": "svirt-0-storage",
                                 "read-only": false, "discard": "unmap"])
        #expect(blockdevs[1] == ["driver": "qcow2", "file": "svirt-0-storage", "node-name": "svirt-0-format", "read-only": false])
        #expect(blockdevs[5]["read-only"] == true)
        #expect(blockdevs[7]["read-only"] == true)  // a cdrom is read-only
        #expect(values(a, "-device") == [
            "virtio-blk-pci,drive=svirt-0-format,id=disk0",
            "virtio-blk-pci,drive=svirt-1-format,id=disk1,share-rw=on",
            "virtio-blk-pci,drive=svirt-2-format,id=disk2",
            "ide-cd,drive=svirt-3-format,id=cdrom3",
        ])
        #expect(c.writableFiles == ["/img/a,b.qcow2", "/img/shared.img"])
        #expect(c.readOnlyFiles == ["/img/ro.img", "/img/cd.iso"])
    }

    @Test("kernel, initrd, command line and the three serial kinds")
    func kernelAndSerial() throws {
        var c = QEMUConfiguration(name: "k", qmpSocket: "/r/q.sock")
        c.kernel = "/boot/vmlinuz"
        c.initrd = "/boot/initrd.img"
        c.kernelCommandLine = "console=ttyS0 root=/dev/vda"
        c.serial = .file("/var/log/svirt/k,serial.log")
        var a = try QEMUCommandLine(c, emulator: fakeEmulator).arguments
        #expect(values(a, "-kernel") == ["/boot/vmlinuz"])
        #expect(values(a, "-initrd") == ["/boot/initrd.img"])
        #expect(values(a, "-append") == ["console=ttyS0 root=/dev/vda"])
        #expect(values(a, "-chardev").last == "file,id=charserial0,path=/var/log/svirt/k,,serial.log,append=on")
        #expect(values(a, "-serial") == ["chardev:charserial0"])
        #expect(c.writableFiles == ["/var/log/svirt/k,serial.log"])
        #expect(c.readOnlyFiles == ["/boot/vmlinuz", "/boot/initrd.img"])
        c.serial = .pty
        a = try QEMUCommandLine(c, emulator: fakeEmulator).arguments
        #expect(values(a, "-chardev").last == "pty,id=charserial0")
        c.serial = .unixSocket("/r/serial.sock")
        let cl = try QEMUCommandLine(c, emulator: fakeEmulator)
        #expect(values(cl.arguments, "-chardev").last == "socket,id=charserial0,fd=4,server=on,wait=off")
        #expect(cl.listeningSockets.map(\.descriptor) == [3, 4])
    }

    @Test("bad values are refused with the guest's name and the fix")
    func validation() throws {
        var c = QEMUConfiguration(name: "v", qmpSocket: "/r/q.sock")
        c.memoryMiB = 0
        let e = try #require(throws: SVirtError.self) { _ = try QEMUCommandLine(c, emulator: fakeEmulator) }
        #expect(e.code == .invalidDomain && e.message.contains("guest 'v'"))
        c.memoryMiB = 64
        c.machine = "q35,accel=tcg"
        #expect(throws: SVirtError.self) { _ = try QEMUCommandLine(c, emulator: fakeEmulator) }
        c.machine = "q35"
        c.disks = [.init(path: "relative.img")]
        let rel = try #require(throws: SVirtError.self) { _ = try QEMUCommandLine(c, emulator: fakeEmulator) }
        #expect(rel.message.contains("not absolute"))
    }

    @Test("the emulator is found on PATH or at an explicit path, and a missing one names the fix")
    func emulatorLookup() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let e = try #require(throws: SVirtError.self) { _ = try QEMUEmulator.find(arch: "x86_64", searchPath: dir.path) }
        #expect(e.code == .notFound && e.message.contains("qemu-system-x86_64 is not on PATH"))
        let e2 = try #require(throws: SVirtError.self) { _ = try QEMUEmulator.find(path: dir.file("qemu")) }
        #expect(e2.message.contains("<emulator>"))
        #expect(QEMUEmulator.qemuArchitecture("i686") == "i386")
        #expect(QEMUEmulator.qemuArchitecture("amd64") == "x86_64")
        if hasQEMU {
            let found = try QEMUEmulator.find(arch: "x86_64", searchPath: "/nonexistent:/usr/bin")
            #expect(found.path == "/usr/bin/qemu-system-x86_64")
            #expect(try QEMUEmulator.find(path: "/usr/bin/qemu-system-x86_64") == found)
        }
    }

    @Test("the probe asks QEMU for its sandbox support and data directories", .enabled(if: hasQEMU, "needs qemu-system"))
    func probe() throws {
        let e = try #require(qemuEmulator)
        #expect(e.supportsSandbox == (try QEMUEmulator.runCapturing(e.path, ["-sandbox", "on", "-version"]).status == 0))
        #expect(!e.dataDirectories.isEmpty)
        // The q35 machine's default BIOS is in one of them.
        #expect(e.dataDirectories.contains { FileManager.default.fileExists(atPath: "\($0)/bios-256k.bin") })
    }
}

@Suite("QEMU system paths", .enabled(if: hasQEMU, "needs qemu-system")) struct QEMUSystemPathsTests {
    @Test("the list holds the emulator, every library the loader maps, the loader files, data and module directories")
    func contents() throws {
        let e = try #require(qemuEmulator)
        let p = try QEMUSystemPaths.compute(for: e, kvm: true)
        let paths = Set(p.rules.map(\.path))
        #expect(paths.contains(e.path))
        #expect(paths.contains("/etc/ld.so.cache"))
        #expect(p.program.interpreter.map(paths.contains) == true)
        let listed = try QEMUEmulator.runCapturing(try #require(p.program.interpreter), ["--list", e.path]).output
        for line in listed.split(separator: "\n") {
            guard let arrow = line.range(of: "=> ") else { continue }
            let lib = canonical(String(line[arrow.upperBound...].split(separator: " ")[0]))
            #expect(p.rules.contains { canonical($0.path) == lib }, "\(lib)")
        }
        for d in e.dataDirectories { #expect(paths.contains(d)) }
        let moduleDirectory = try #require(p.moduleDirectory)
        #expect(FileManager.default.fileExists(atPath: "\(moduleDirectory)/accel-tcg-x86_64.so"))
        #expect(paths.contains("/dev/kvm") && paths.contains("/dev/urandom"))
        #expect(p.rules.first { $0.path == "/dev/kvm" }?.access == .device)
        // Without KVM there is no /dev/kvm grant.
        let tcg = try QEMUSystemPaths.compute(for: e, kvm: false)
        #expect(!tcg.rules.contains { $0.path == "/dev/kvm" })
        // Every rule names an existing path, so a ruleset can be built from them.
        for r in p.rules { #expect(FileManager.default.fileExists(atPath: r.path), "\(r.path)") }
    }

    @Test("a symlink in a data directory that leaves it adds its target")
    func linkTargets() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let data = dir.file("data"), other = dir.file("other")
        try FileManager.default.createDirectory(atPath: "\(data)/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try dir.write("other/fw.bin", "x")
        try dir.write("data/in.bin", "x")
        symlink("../../other/fw.bin", "\(data)/sub/fw.bin")
        symlink("in.bin", "\(data)/alias.bin")
        symlink("../nowhere", "\(data)/dangling")
        #expect(QEMUSystemPaths.symlinkTargets(in: data, outside: [data]) == [canonical(dir.file("other/fw.bin"))])
    }
}
