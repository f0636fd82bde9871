import Foundation
import Glibc
import SELinux
import Testing
@testable import SVirt
@testable import SVirtLinux

/// Everything about a file the attacks below try to change: owner, mode, link count and every extended attribute.
private struct FileState: Equatable, CustomStringConvertible {
    var uid: UInt32, gid: UInt32, mode: mode_t
    var attributes: [String: [UInt8]]

    init(_ path: String) {
        var st = stat()
        lstat(path, &st)
        uid = st.st_uid
        gid = st.st_gid
        mode = st.st_mode
        var a: [String: [UInt8]] = [:]
        for name in (try? ExtendedAttributes.list(path: path)) ?? [] {
            a[name] = (try? ExtendedAttributes.get(name, path: path)) ?? nil
        }
        attributes = a
    }

    var description: String { "\(uid):\(gid) \(String(mode, radix: 8)) \(attributes.keys.sorted())" }
}

private let nobody: UInt32 = 65534

/// Files the guest process has open, as the kernel lists them.
private func openFiles(of pid: Int32) -> [String] {
    let dir = "/proc/\(pid)/fd"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
    return names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)") }
}

private func tcgXML(_ name: String, disk: String, extra: String = "", seclabel: String = "", emulator: String? = nil) -> String {
    """
    <domain type='qemu'><name>\(name)</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices>\(emulator.map { "<emulator>\($0)</emulator>" } ?? "")
        <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(disk)'/>
        <target dev='vda' bus='virtio'/>\(extra)</disk></devices>\(seclabel)
    </domain>
    """
}

@Suite("Host security: a start takes each resource once and holds it", .serialized,
       .enabled(if: getuid() == 0, "needs root"))
struct HostSecurityTests {
    func lifecycle(_ dir: TemporaryDirectory) throws -> DomainLifecycle { try landlockLifecycleAsNobody(dir) }

    @Test("a symlink swapped in for the image by its directory's owner, in a tight loop over 1,000 starts, never hands the host file to the guest",
          .enabled(if: hasQEMU && landlockVersion >= 6, "needs QEMU and Landlock ABI 6"), .timeLimit(.minutes(20)))
    func symlinkSwapRace() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        // The stand-in for /etc/shadow: root's, 0640, labelled, outside the attacker's directory.
        let secretDir = dir.file("host")
        mkdir(secretDir, 0o755)
        let secret = "\(secretDir)/shadow"
        try "root:*:20000:0:99999:7:::\n".write(toFile: secret, atomically: false, encoding: .utf8)
        chmod(secret, 0o640)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:shadow_t:s0\0".utf8), path: secret)
        let secretBefore = FileState(secret)
        // The attacker owns the image's directory and the image.
        let images = dir.file("images")
        mkdir(images, 0o755)
        chown(images, nobody, nobody)
        let img = "\(images)/vm.img"
        _ = try makeImage(dir, "images/vm.img", megabytes: 1)
        chown(img, nobody, nobody)
        try life.define(try DomainDefinition(xml: tcgXML("swap", disk: img)))
        // The swapper: as nobody, forever: the image becomes a symlink to the secret, then the image again.
        let script = """
            import os
            img = \(String(reflecting: img)); keep = img + '.keep'; link = img + '.lnk'
            while True:
                try:
                    os.rename(img, keep)
                    try: os.unlink(link)
                    except FileNotFoundError: pass
                    os.symlink(\(String(reflecting: secret)), link)
                    os.rename(link, img)
                    os.rename(keep, img)
                except OSError:
                    if not os.path.lexists(img) and os.path.exists(keep): os.rename(keep, img)
            """
        let swapper = Process()
        swapper.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        swapper.arguments = ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "/usr/bin/python3", "-c", script]
        try swapper.run()
        // SIGKILL: the test process's blocked signals are inherited, so SIGTERM may never arrive.
        let swapperPID = swapper.processIdentifier
        defer { kill(swapperPID, SIGKILL); swapper.waitUntilExit() }
        var started = 0, refused = 0
        var reasons: [String: Int] = [:]
        for _ in 0..<1000 {
            do {
                let s = try await life.start(try life.definition(named: "swap").domain)
                started += 1
                let pid = try #require(s.domain.process?.pid)
                let open = openFiles(of: pid)
                #expect(!open.contains(secret), "QEMU holds the host file: \(open)")
                _ = try await life.stop(name: "swap", mode: .destroy)
            } catch let e as SVirtError {
                refused += 1
                reasons[String(e.message.prefix(60)), default: 0] += 1
            }
            #expect(FileState(secret) == secretBefore)
        }
        kill(swapperPID, SIGKILL)
        swapper.waitUntilExit()
        // Whatever the race did, the host file was never chowned, labelled or recorded, and nothing is left held.
        #expect(FileState(secret) == secretBefore, "\(FileState(secret)) != \(secretBefore)")
        #expect(started + refused == 1000)
        #expect(started > 0, "no start got through the race at all: \(reasons)")
        #expect(try life.local.runningDomains().isEmpty)
        #expect(try life.local.reservationsNow().isEmpty)
        // Nothing carries svirt's records any more: not the host file, and not the image either, even when the
        // attacker renamed it away while the VM ran (stop reopens the inode it held by its file handle).
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).map { "\(images)/\($0)" }
        for path in [secret, secretDir, images, dir.path] + left {
            let attrs = ((try? ExtendedAttributes.list(path: path)) ?? []).filter { $0.hasPrefix("trusted.svirt.") }
            #expect(attrs.isEmpty, "\(path) keeps \(attrs)")
        }
        print("swap race: \(started) starts, \(refused) refused: \(reasons)")
    }

    @Test("stop gives back the very inode the start held, though its path now names another file")
    func restoreByIdentity() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let img = try makeImage(dir, "held.img", megabytes: 1)
        chown(img, 4321, 4321)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let s = try await life.start(try DomainDefinition(xml: tcgXML("ident", disk: img)), options: o)
        #expect(labelOf(img) == s.label.image.description)
        // The image moves away and another file takes its path.
        let moved = dir.file("moved.img")
        #expect(rename(img, moved) == 0)
        let impostor = try makeImage(dir, "held.img", megabytes: 1)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:etc_t:s0\0".utf8), path: impostor)
        let impostorBefore = FileState(impostor)
        let stopped = try await life.stop(name: "ident", mode: .destroy)
        #expect(stopped.failures.isEmpty, "\(stopped.failures)")
        #expect(labelOf(moved) == "system_u:object_r:virt_image_t:s0")
        #expect(ownerOf(moved) == (4321, 4321))
        #expect(((try? ExtendedAttributes.list(path: moved)) ?? []).filter { $0.hasPrefix("trusted.svirt.") }.isEmpty)
        #expect(FileState(impostor) == impostorBefore)
    }

    @Test("QEMU gets its disk as a descriptor set and never names the path")
    func diskAsDescriptor() async throws {
        guard hasQEMU, landlockVersion >= 6 else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let img = try makeImage(dir, "fd.img", megabytes: 1)
        let s = try await life.start(try DomainDefinition(xml: tcgXML("fdset", disk: img)))
        #expect(s.commandLine.contains("-add-fd"))
        #expect(s.commandLine.contains("/dev/fdset/1"))
        #expect(!s.commandLine.contains(img), "\(s.commandLine)")
        let pid = try #require(s.domain.process?.pid)
        #expect(openFiles(of: pid).contains(img))
        _ = try await life.stop(name: "fdset", mode: .destroy)
    }

    @Test("a hard-linked image is refused before anything changes; the linked host file keeps its label and owner")
    func hardLinkRefused() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let original = try makeImage(dir, "hostfile", megabytes: 1)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:etc_t:s0\0".utf8), path: original)
        let link = dir.file("linked.img")
        #expect(Glibc.link(original, link) == 0)
        let before = FileState(original)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        await #expect { _ = try await life.start(try DomainDefinition(xml: tcgXML("hl", disk: link)), options: o) } throws: { e in
            "\(e)".contains("hard links")
        }
        #expect(FileState(original) == before)
        #expect(try life.local.reservationsNow().isEmpty)
    }

    @Test("--force hands a hard-linked image over, and says what it overrides")
    func forceSaysWhat() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let original = try makeImage(dir, "mine.img", megabytes: 1)
        #expect(Glibc.link(original, dir.file("second-name.img")) == 0)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        o.force = true
        let s = try await life.start(try DomainDefinition(xml: tcgXML("forced", disk: original)), options: o)
        #expect(s.warnings.contains { $0.hasPrefix("--force:") && $0.contains("hard links") }, "\(s.warnings)")
        _ = try await life.stop(name: "forced", mode: .destroy)
    }

    @Test("the runtime directory is root's, and a qemu.log symlink planted in it is never followed")
    func runtimeDirectory() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let img = try makeImage(dir, "rt.img", megabytes: 1)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let s = try await life.start(try DomainDefinition(xml: tcgXML("rt", disk: img)), options: o)
        let runtime = try #require(s.domain.runtimeDirectory)
        var st = stat()
        #expect(stat(runtime, &st) == 0 && st.st_uid == 0 && st.st_mode & 0o777 == 0o700)
        _ = try await life.stop(name: "rt", mode: .destroy)
        // A log symlink left where the next start opens its log (as root, O_CREAT) is refused, not followed.
        let target = dir.file("host-file")
        try "keep\n".write(toFile: target, atomically: false, encoding: .utf8)
        mkdir(runtime, 0o700)
        #expect(symlink(target, "\(runtime)/qemu.log") == 0)
        await #expect(throws: (any Error).self) {
            _ = try await life.start(try DomainDefinition(xml: tcgXML("rt", disk: img)), options: o)
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep\n")
        #expect(try life.local.runningDomains().isEmpty)
    }

    @Test("a sysfs file, svirt's own registry and a host system file are refused for every seclabel type, owners untouched",
          arguments: ["", "<seclabel type='none'/>",
                      "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>"])
    func guardForEveryType(seclabel: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        for (path, why) in [("/sys/kernel/mm/ksm/sleep_millisecs", "pseudo filesystem"),
                            (life.env.state.registryPath, "svirt's own directory"),
                            ("/etc/hostname", "host system")] where FileManager.default.fileExists(atPath: path) {
            let before = FileState(path)
            // A static relabel='no' label may be refused earlier still, by the policy preflight: refused all the same.
            await #expect { _ = try await life.start(try DomainDefinition(xml: tcgXML("g", disk: path, seclabel: seclabel)), options: o) } throws: { e in
                "\(e)".contains(why) || (seclabel.contains("relabel='no'") && "\(e)".contains("may not use one of its resources"))
            }
            #expect(FileState(path) == before, "\(path) changed")
        }
        #expect(try life.local.runningDomains().isEmpty)
    }

    @Test("a per-disk relabel='no' on a host file is refused before its owner changes")
    func relabelNoGuarded() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let before = FileState("/etc/hostname")
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let extra = "<seclabel model='selinux' relabel='no'/>"
        await #expect { _ = try await life.start(try DomainDefinition(xml: tcgXML("rn", disk: "/etc/hostname", extra: extra)), options: o) } throws: { _ in true }
        #expect(FileState("/etc/hostname") == before)
    }

    @Test("a VM without a label cannot take another running VM's private image")
    func noneVMCannotTakePrivateImage() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let img = try makeImage(dir, "private.img", megabytes: 1)
        let a = try await life.start(try DomainDefinition(xml: tcgXML("owner", disk: img)), options: o)
        let label = labelOf(img)
        #expect(label == a.label.image.description)
        let extra = "<readonly/><shareable/>"
        await #expect { _ = try await life.start(try DomainDefinition(xml: tcgXML("thief", disk: img, extra: extra,
                                                                                   seclabel: "<seclabel type='none'/>")), options: o) } throws: { e in
            "\(e)".contains("level of VM 'owner'")
        }
        #expect(labelOf(img) == label)
        _ = try await life.stop(name: "owner", mode: .destroy)
    }

    @Test("an emulator that is not a root-owned system QEMU is refused, and never run")
    func emulatorRefused() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let marker = dir.file("ran-as-root")
        let script = dir.file("qemu-system-x86_64")
        try "#!/bin/sh\ntouch \(marker)\n".write(toFile: script, atomically: false, encoding: .utf8)
        chmod(script, 0o755)
        let img = try makeImage(dir, "e.img", megabytes: 1)
        await #expect { _ = try await life.start(try DomainDefinition(xml: tcgXML("emu", disk: img, emulator: script))) } throws: { e in
            "\(e)".contains("is not a qemu-system-* binary in") && "\(e)".contains("emulators =")
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        // Root's own copy in a root-only directory is still refused outside the system directories...
        #expect(QEMUEmulator.refusal(script) != nil)
        // ...and svirt.conf can allow it by path, but not while others may write it.
        chmod(script, 0o777)
        #expect(QEMUEmulator.refusal(script, allowed: [script])?.contains("writable only by root") == true)
        #expect(QEMUEmulator.refusal("/usr/bin/qemu-system-x86_64") == nil || !hasQEMU)
    }

    @Test("an emulator named through a user's symlink is run by its checked canonical path, so swapping the link changes nothing",
          .enabled(if: hasQEMU, "needs QEMU"))
    func emulatorThroughSymlink() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try lifecycle(dir)
        let userDir = dir.file("user")
        mkdir(userDir, 0o755)
        chown(userDir, nobody, nobody)
        let link = "\(userDir)/qemu"
        #expect(symlink("/usr/bin/qemu-system-x86_64", link) == 0)
        let e = try life.local.emulator(at: link)
        #expect(e.path == "/usr/bin/qemu-system-x86_64")
        // The link now names a script: what svirt runs was fixed at the check.
        let script = "\(userDir)/evil"
        try "#!/bin/sh\ntouch \(dir.file("ran"))\n".write(toFile: script, atomically: false, encoding: .utf8)
        unlink(link)
        #expect(symlink(script, link) == 0)
        #expect(e.path == "/usr/bin/qemu-system-x86_64")
        #expect(throws: SVirtError.self) { _ = try life.local.emulator(at: link) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("ran")))
    }

    @Test("the emulator probe runs as the guest user, not as root")
    func probeAsGuest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try QEMUEmulator.runCapturing("/usr/bin/id", ["-u"])
        #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) != "0", "\(r.output)")
    }
}
