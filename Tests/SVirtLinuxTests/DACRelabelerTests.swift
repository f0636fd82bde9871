import Foundation
import Glibc
import Testing
@testable import SVirt
@testable import SVirtLinux

func ownerOf(_ path: String) -> (UInt32, UInt32) {
    var st = stat()
    stat(path, &st)
    return (st.st_uid, st.st_gid)
}

func dacAttributes(_ path: String) -> [String] {
    ((try? ExtendedAttributes.list(path: path)) ?? []).filter { $0.hasPrefix("trusted.svirt.security.") && $0.hasSuffix("dac") }.sorted()
}

@Suite("DAC owners", .enabled(if: getuid() == 0, "needs root")) struct DACRelabelerTests {
    let guest = GuestUser(user: "nobody", uid: 65534, group: "nogroup", gid: 65534)
    var dac: DACRelabeler { DACRelabeler(bootTime: ProcFS().bootTime() ?? 0) }

    @Test("owners go to the guest user, are remembered in trusted.svirt.security.dac, and come back exactly")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let a = try makeImage(dir, "a.img", megabytes: 1), b = try makeImage(dir, "b.img", megabytes: 1)
        chown(a, 1234, 5678)
        chown(b, 42, 43)
        let items = try dac.labelAll([a, b], user: guest, holder: "vm")
        #expect(items.map(\.before) == ["+1234:+5678", "+42:+43"])
        #expect(ownerOf(a) == (65534, 65534) && ownerOf(b) == (65534, 65534))
        #expect(ExtendedAttributes.string(try #require(try ExtendedAttributes.get("trusted.svirt.security.dac", path: a))) == "+1234:+5678")
        #expect(dacAttributes(a) == ["trusted.svirt.security.dac", "trusted.svirt.security.holders_dac",
                                     "trusted.svirt.security.ref_dac", "trusted.svirt.security.timestamp_dac"])
        let back = dac.restoreAll([a, b], holder: "vm")
        #expect(back.failures.isEmpty)
        #expect(ownerOf(a) == (1234, 5678) && ownerOf(b) == (42, 43))
        #expect(dacAttributes(a).isEmpty && dacAttributes(b).isEmpty)
    }

    @Test("a file two VMs share goes back to its owner only when the last one stops")
    func shared() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let s = try makeImage(dir, "shared.img", megabytes: 1)
        chown(s, 7, 8)
        _ = try dac.labelAll([s], user: guest, holder: "Shareable_VM")
        _ = try dac.labelAll([s], user: guest, holder: "Shareable_VM-clone")
        let first = dac.restoreAll([s], holder: "Shareable_VM")
        #expect(first.items.first?.note == "still used by 'Shareable_VM-clone'")
        #expect(ownerOf(s) == (65534, 65534))
        _ = dac.restoreAll([s], holder: "Shareable_VM-clone")
        #expect(ownerOf(s) == (7, 8))
        #expect(dacAttributes(s).isEmpty)
    }

    @Test("a failure midway gives back the owners already changed")
    func rollback() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let a = try makeImage(dir, "a.img", megabytes: 1)
        chown(a, 11, 12)
        // A file whose filesystem keeps no trusted.* attributes (procfs) fails after the first owner changed.
        let unrecordable = "/proc/sys/kernel/hostname"
        guard FileManager.default.fileExists(atPath: unrecordable) else { return }
        do {
            _ = try dac.labelAll([a, unrecordable], user: guest, holder: "vm")
            Issue.record("a file without a record was given away")
        } catch let e as SVirtError {
            #expect(e.message.contains(unrecordable))
            #expect(e.message.contains("given back"), "\(e.message)")
        }
        #expect(ownerOf(a) == (11, 12))
        #expect(dacAttributes(a).isEmpty)
    }

    @Test("a missing file is found before any owner changes")
    func missingFirst() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let a = try makeImage(dir, "a.img", megabytes: 1)
        chown(a, 11, 12)
        do {
            _ = try dac.labelAll([a, dir.file("missing.img")], user: guest, holder: "vm")
            Issue.record("a missing file was given away")
        } catch let e as SVirtError {
            #expect(e.message.contains("missing.img"))
        }
        #expect(ownerOf(a) == (11, 12))
        #expect(dacAttributes(a).isEmpty)
    }

    @Test("a record cut short before the owner changed is removed and the owner left alone")
    func partialRecord() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let a = try makeImage(dir, "a.img", megabytes: 1)
        chown(a, 5, 6)
        try ExtendedAttributes.set("trusted.svirt.security.dac", value: Array("+5:+6".utf8), path: a)
        let r = dac.restoreAll([a], holder: "vm")
        #expect(r.failures.isEmpty && r.items.isEmpty)
        #expect(ownerOf(a) == (5, 6))
        #expect(dacAttributes(a).isEmpty)
    }
}

@Suite("Guest user") struct GuestUserTests {
    @Test("the default guest user is libvirt-qemu where it exists, else nobody, with kvm as a supplementary group")
    func defaults() throws {
        let u = try GuestUser.resolve(user: nil, group: nil)
        let expected = GuestUser.passwd("libvirt-qemu") != nil ? "libvirt-qemu" : "nobody"
        #expect(u.user == expected)
        #expect(u.uid != 0)
        if let kvm = GuestUser.groupEntry("kvm"), kvm.gid != u.gid { #expect(u.groups == [kvm.gid]) }
        #expect(u.owner == "+\(u.uid):+\(u.gid)")
    }

    @Test("a configured user or group that does not exist is an error naming the key")
    func missing() throws {
        #expect(throws: SVirtError.self) { try GuestUser.resolve(user: "no-such-user-svirt", group: nil) }
        do {
            _ = try GuestUser.resolve(user: "nobody", group: "no-such-group-svirt", source: "/x/svirt.conf")
            Issue.record("a missing group was accepted")
        } catch let e as SVirtError {
            #expect(e.message == "/x/svirt.conf: group = no-such-group-svirt: there is no such group; create it or choose another")
        }
        let root = try GuestUser.resolve(user: "0", group: nil)
        #expect(root.isRoot && root.user == "root")
    }

    @Test("a directory the guest user cannot search is named with the fix", .enabled(if: getuid() == 0, "needs root"))
    func unreachable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let img = try makeImage(dir, "x.img", megabytes: 1)
        let u = GuestUser(user: "nobody", uid: 65534, group: "nogroup", gid: 65534)
        chmod(dir.path, 0o700)
        let why = try #require(u.unreachableReason(img, write: true, ownerWillBeSet: true))
        #expect(why.contains("\(dir.path) is mode 700") && why.contains("chmod o+x \(dir.path)"))
        chmod(dir.path, 0o711)
        #expect(u.unreachableReason(img, write: true, ownerWillBeSet: true) == nil)
        chmod(img, 0o600)
        #expect(u.unreachableReason(img, write: false, ownerWillBeSet: false)?.contains("cannot read it") == true)
    }
}
