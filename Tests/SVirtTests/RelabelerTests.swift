import SELinux
import Testing
@testable import SVirt

@Suite("relabel and restore") struct RelabelerTests {
    static let boot = 1_700_000_000
    static let homeLabel = "unconfined_u:object_r:user_home_t:s0"
    static let imageDefault = "system_u:object_r:virt_image_t:s0"

    func relabeler(_ store: InMemoryFileLabelStore, boot: Int = boot,
                   owners: [SecurityLevel: String] = [:]) -> Relabeler {
        Relabeler(store: store, defaults: FallbackDefaultLabels(Fixtures.context(Self.imageDefault)), bootTime: boot,
                  ownerOfLevel: { owners[$0] })
    }

    func plan(_ name: String, disks: [(String, String)], level: String, seclabel: String = "", more: String = "") throws -> LabelPlan {
        let devices = disks.map { Fixtures.fileDisk($0.0, target: $0.1) }.joined() + more
        let d = try Fixtures.parse(Fixtures.domain(name: name, devices: devices, seclabel: seclabel))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level(level)).label
        return try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
    }

    @Test("apply remembers the original in svirt's namespace, and restore gives the exact original back")
    func applyRestore() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2")
        let report = try relabeler(store).labelAll(p)
        #expect(report.items.map(\.outcome) == [.labelled(Fixtures.context("system_u:object_r:svirt_image_t:s0:c1,c2"))])
        #expect(store.attributes("/img/a.img") == [
            "security.selinux": "system_u:object_r:svirt_image_t:s0:c1,c2",
            "trusted.svirt.security.selinux": Self.homeLabel,
            "trusted.svirt.security.timestamp_selinux": "\(Self.boot)",
            "trusted.svirt.security.holders_selinux": "vm",
            "trusted.svirt.security.ref_selinux": "1",
        ])
        // The record is written before the label, the refcount last.
        #expect(store.log == ["set trusted.svirt.security.selinux /img/a.img", "set trusted.svirt.security.timestamp_selinux /img/a.img",
                              "set trusted.svirt.security.holders_selinux /img/a.img", "set trusted.svirt.security.ref_selinux /img/a.img",
                              "set security.selinux /img/a.img"])
        let back = relabeler(store).restoreAll(p)
        #expect(back.failures.isEmpty)
        #expect(store.attributes("/img/a.img") == ["security.selinux": Self.homeLabel])
    }

    @Test("a file without a label gets the default label back")
    func unlabelledOriginal() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img")
        let p = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2")
        _ = try relabeler(store).labelAll(p)
        #expect(store.attributes("/img/a.img")["trusted.svirt.security.selinux"] == "")
        _ = relabeler(store).restoreAll(p)
        #expect(store.attributes("/img/a.img") == ["security.selinux": Self.imageDefault])
    }

    @Test("two VMs with one static label share a file; it comes back only when the last one stops")
    func refcount() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/shared.img", label: Self.homeLabel)
        let seclabel = "<seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c5,c6</label></seclabel>"
        let a = try plan("A", disks: [("/img/shared.img", "vda")], level: "s0:c1,c2", seclabel: seclabel)
        let b = try plan("B", disks: [("/img/shared.img", "vda")], level: "s0:c1,c2", seclabel: seclabel)
        _ = try relabeler(store).labelAll(a)
        _ = try relabeler(store).labelAll(b)
        #expect(store.attributes("/img/shared.img")["trusted.svirt.security.ref_selinux"] == "2")
        #expect(store.attributes("/img/shared.img")["trusted.svirt.security.holders_selinux"] == "A\nB")
        let first = relabeler(store).restoreAll(a)
        #expect(first.items.first?.outcome == .left("still in use by 'B'"))
        #expect(store.label("/img/shared.img") == "system_u:object_r:svirt_image_t:s0:c5,c6")
        _ = relabeler(store).restoreAll(b)
        #expect(store.attributes("/img/shared.img") == ["security.selinux": Self.homeLabel])
    }

    @Test("a path another running VM uses with a different label is refused, naming that VM")
    func sharedConflict() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/one.img", label: Self.homeLabel)
        store.add("/img/other.img", label: Self.homeLabel)
        _ = try relabeler(store).labelAll(try plan("Dynamic_VM1", disks: [("/img/one.img", "vda")], level: "s0:c1,c2"))
        let second = try plan("Dynamic_VM2", disks: [("/img/other.img", "vda"), ("/img/one.img", "vdb")], level: "s0:c3,c4")
        #expect { try relabeler(store).labelAll(second) } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return m.contains("/img/one.img is already in use by VM 'Dynamic_VM1' with the label system_u:object_r:svirt_image_t:s0:c1,c2")
                && m.contains("the 1 label(s) already set were restored")
        }
        // VM1's record is intact, and VM2 left nothing behind.
        #expect(store.attributes("/img/one.img")["trusted.svirt.security.holders_selinux"] == "Dynamic_VM1")
        #expect(store.attributes("/img/one.img")["trusted.svirt.security.ref_selinux"] == "1")
        #expect(store.attributes("/img/other.img") == ["security.selinux": Self.homeLabel])
    }

    @Test("a file carrying another VM's level is refused even without a record, naming the holder of the level")
    func conflictByLevel() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/x.img", label: "system_u:object_r:svirt_image_t:s0:c1,c2")
        let p = try plan("B", disks: [("/img/x.img", "vda")], level: "s0:c3,c4")
        #expect { try relabeler(store, owners: [Fixtures.level("s0:c1,c2"): "A"]).labelAll(p) } throws: { e in
            (e as? SVirtError)?.message.contains("already in use by VM 'A'") == true
        }
        #expect(store.log.isEmpty)
    }

    @Test("host system paths are refused unless forced, and say why", arguments: [
        "/", "/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/libx32", "/proc", "/sys", "/var", "/home", "/root",
        "/etc/shadow", "/usr/lib/x.so", "/boot/vmlinuz",
    ])
    func systemPaths(path: String) throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/ok.img", label: Self.homeLabel)
        store.add(path, kind: path.contains(".") || path == "/etc/shadow" ? .regular : .directory, label: "system_u:object_r:etc_t:s0")
        let p = try plan("vm", disks: [("/img/ok.img", "vda"), (path, "vdb")], level: "s0:c1,c2")
        #expect { try relabeler(store).labelAll(p) } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return m.hasPrefix("disk 'vdb': refusing to relabel \(path): ") && m.contains("pass --force")
        }
        #expect(store.log.isEmpty, "nothing is written before every path is checked")
        _ = try relabeler(store).labelAll(p, options: .init(force: true))
        #expect(store.label(path) == "system_u:object_r:svirt_image_t:s0:c1,c2")
    }

    @Test("paths that only look like system paths are labelled")
    func notSystemPaths() {
        for p in ["/var/lib/libvirt/images/a.img", "/home/user/vm.img", "/srv/etc/x", "/library/x", "/usrx/y"] {
            #expect(Relabeler.systemPathReason(p) == nil, "\(p)")
        }
    }

    @Test("a symlink into a system tree is refused by its target")
    func symlinkToSystem() throws {
        let store = InMemoryFileLabelStore()
        store.add("/etc/shadow", label: "system_u:object_r:shadow_t:s0")
        store.addSymlink("/img/evil.img", to: "/etc/shadow")
        let p = try plan("vm", disks: [("/img/evil.img", "vda")], level: "s0:c1,c2")
        #expect { try relabeler(store).labelAll(p) } throws: { e in
            (e as? SVirtError)?.message.contains("refusing to relabel /etc/shadow (from /img/evil.img)") == true
        }
        #expect(store.label("/etc/shadow") == "system_u:object_r:shadow_t:s0")
    }

    @Test("device nodes are labelled only when handed over as devices, or forced")
    func deviceNodes() throws {
        let store = InMemoryFileLabelStore()
        store.add("/dev/sdb", kind: .blockDevice, label: "system_u:object_r:fixed_disk_device_t:s0")
        store.add("/dev/bus/usb/002/007", kind: .characterDevice, label: "system_u:object_r:usb_device_t:s0")
        let block = try plan("vm", disks: [], level: "s0:c1,c2",
                             more: "<disk type='block'><source dev='/dev/sdb'/><target dev='vdb'/></disk>")
        #expect { try relabeler(store).labelAll(block) } throws: { e in
            (e as? SVirtError)?.message.contains("refusing to relabel /dev/sdb: it is a block device that the XML does not hand to the guest as a <hostdev>") == true
        }
        let usb = try plan("vm", disks: [], level: "s0:c1,c2", more: "<hostdev mode='subsystem' type='usb'><source><address bus='2' device='7'/></source></hostdev>")
        _ = try relabeler(store).labelAll(usb)
        #expect(store.label("/dev/bus/usb/002/007") == "system_u:object_r:svirt_image_t:s0:c1,c2")
        _ = try relabeler(store).labelAll(block, options: .init(force: true))
        #expect(store.label("/dev/sdb") == "system_u:object_r:svirt_image_t:s0:c1,c2")
    }

    @Test("a failure at any path undoes the changes already made, in reverse, to the exact originals")
    func rollback() throws {
        for failAt in 1...15 {
            let store = InMemoryFileLabelStore()
            let paths = ["/img/a.img", "/img/b.img", "/img/c.img"]
            for (i, p) in paths.enumerated() { store.add(p, label: "system_u:object_r:orig\(i)_t:s0") }
            store.failAtWrite(failAt)
            let p = try plan("vm", disks: [(paths[0], "vda"), (paths[1], "vdb"), (paths[2], "vdc")], level: "s0:c1,c2")
            #expect(throws: SVirtError.self) { try relabeler(store).labelAll(p) }
            for (i, path) in paths.enumerated() {
                #expect(store.attributes(path) == ["security.selinux": "system_u:object_r:orig\(i)_t:s0"], "fail at write \(failAt), \(path)")
            }
        }
    }

    @Test("a path that no longer exists stops the apply before anything changes")
    func missingPath() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda"), ("/img/gone.img", "vdb")], level: "s0:c1,c2")
        #expect { try relabeler(store).labelAll(p) } throws: { e in
            (e as? SVirtError)?.message.hasPrefix("disk 'vdb': cannot label /img/gone.img with system_u:object_r:svirt_image_t:s0:c1,c2: /img/gone.img does not exist") == true
        }
        #expect(store.log.isEmpty)
    }

    @Test("a filesystem without labels is reported with the virt_use_nfs hint, not an error")
    func unsupported() throws {
        let store = InMemoryFileLabelStore()
        store.add("/nfs/a.img", filesystem: "nfs", supportsAttributes: false)
        store.add("/img/b.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/nfs/a.img", "vda"), ("/img/b.img", "vdb")], level: "s0:c1,c2")
        let r = try relabeler(store).labelAll(p)
        #expect(r.unsupported.count == 1)
        guard case .unsupported(let why)? = r.unsupported.first?.outcome else { Issue.record("no unsupported outcome"); return }
        #expect(why.contains("/nfs/a.img (nfs) does not support SELinux labels") && why.contains("setsebool -P virt_use_nfs on"))
        #expect(store.label("/img/b.img") == "system_u:object_r:svirt_image_t:s0:c1,c2")
        let back = relabeler(store).restoreAll(p)
        #expect(back.failures.isEmpty)
        #expect(store.label("/img/b.img") == Self.homeLabel)
    }

    @Test("a record from an earlier boot is discarded with a warning; the default comes back only to svirt's label")
    func staleTimestamp() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        store.add("/img/b.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda"), ("/img/b.img", "vdb")], level: "s0:c1,c2")
        _ = try relabeler(store).labelAll(p)
        // b was relabelled by hand meanwhile.
        let b = try store.open("/img/b.img")
        try b.setSELinuxContext("system_u:object_r:admin_t:s0")
        let r = relabeler(store, boot: Self.boot + 86_400).restoreAll(p)
        #expect(r.warnings.filter { $0.contains("before this boot") }.count == 2)
        #expect(store.attributes("/img/a.img") == ["security.selinux": Self.imageDefault])
        #expect(store.attributes("/img/b.img") == ["security.selinux": "system_u:object_r:admin_t:s0"])
    }

    @Test("restore leaves alone a file that no longer carries svirt's label and has no record")
    func foreignLabel() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2")
        let r = relabeler(store).restoreAll(p)
        #expect(store.attributes("/img/a.img") == ["security.selinux": Self.homeLabel])
        guard case .left(let why)? = r.items.first?.outcome else { Issue.record("not left"); return }
        #expect(why.contains("not the label svirt set"))
    }

    @Test("a malformed refcount is an error naming the attribute and the path")
    func malformedRefcount() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let f = try store.open("/img/a.img")
        let rec = RememberedLabels(model: "selinux")
        try f.setAttribute(rec.labelAttribute, Array(Self.homeLabel.utf8))
        try f.setAttribute(rec.timestampAttribute, Array("\(Self.boot)".utf8))
        try f.setAttribute(rec.refAttribute, Array("two".utf8))
        let p = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2")
        #expect { try relabeler(store).labelAll(p) } throws: { e in
            (e as? SVirtError)?.message.contains("malformed refcount 'two' in trusted.svirt.security.ref_selinux on /img/a.img") == true
        }
    }

    @Test("a remembered original edited into garbage is never set: restore fails for that file, names it and the fix, and leaves the VM's label")
    func garbageOriginal() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2")
        _ = try relabeler(store).labelAll(p)
        let labelled = try #require(store.label("/img/a.img"))
        #expect(labelled.hasSuffix(":s0:c1,c2"))
        let rec = RememberedLabels(model: "selinux")
        try store.open("/img/a.img").setAttribute(rec.labelAttribute, Array("garbage\u{1}".utf8))
        let r = relabeler(store).restoreAll(p)
        #expect(store.label("/img/a.img") == labelled, "the garbage never became the file's label")
        let why = try #require(r.failures.first)
        #expect(why.contains("the original label svirt remembered in trusted.svirt.security.selinux on /img/a.img is 'garbage\\u{1}', which is not a valid SELinux context"), "\(why)")
        #expect(why.contains("restorecon /img/a.img") && why.contains("setfattr -x trusted.svirt.security.ref_selinux /img/a.img"), "\(why)")
    }

    @Test("the scheme is generic over the model: dac records live in their own attributes")
    func dacModel() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img")
        let f = try store.open("/img/a.img")
        let dac = RememberedLabels(model: "dac")
        #expect(try dac.remember(original: "+0:+0", holder: "vm", on: f, bootTime: Self.boot) == .first)
        #expect(store.attributes("/img/a.img")["trusted.svirt.security.dac"] == "+0:+0")
        #expect(store.attributes("/img/a.img")["trusted.svirt.security.ref_dac"] == "1")
        #expect(try dac.recall(holder: "vm", on: f, bootTime: Self.boot) == .restore(original: "+0:+0"))
    }

    @Test("the same path twice with one label is labelled once; with two labels it is refused")
    func duplicates() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        let same = try plan("vm", disks: [("/img/a.img", "vda"), ("/img/a.img", "vdb")], level: "s0:c1,c2")
        _ = try relabeler(store).labelAll(same)
        #expect(store.attributes("/img/a.img")["trusted.svirt.security.ref_selinux"] == "1")
        _ = relabeler(store).restoreAll(same)
        #expect(store.attributes("/img/a.img") == ["security.selinux": Self.homeLabel])
        let mixed = try plan("vm", disks: [("/img/a.img", "vda")], level: "s0:c1,c2",
                             more: "<disk type='file'><source file='/img/a.img'/><target dev='vdb'/><readonly/></disk>")
        #expect { try relabeler(store).labelAll(mixed) } throws: { e in
            (e as? SVirtError)?.message.contains("both use /img/a.img, with different labels") == true
        }
    }

    @Test("a crash after any single write leaves records that restore turns back into the exact originals")
    func crashAnywhere() throws {
        let paths = (0..<6).map { "/img/d\($0).img" }
        let p = try plan("vm", disks: paths.enumerated().map { ($0.element, "vd\($0.offset)") }, level: "s0:c1,c2")
        let total = 5 * paths.count
        for k in 0...total {
            let store = InMemoryFileLabelStore()
            for (i, path) in paths.enumerated() { store.add(path, label: "system_u:object_r:orig\(i)_t:s0") }
            store.crash(afterWrites: k)
            _ = try? relabeler(store).labelAll(p)
            store.recover()
            let r = relabeler(store).restoreAll(p)
            #expect(r.failures.isEmpty)
            for (i, path) in paths.enumerated() {
                #expect(store.attributes(path) == ["security.selinux": "system_u:object_r:orig\(i)_t:s0"], "crash after \(k) writes: \(path)")
            }
        }
    }

    @Test("restore keeps going past a failing path and reports it")
    func restoreContinues() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: Self.homeLabel)
        store.add("/img/b.img", label: Self.homeLabel)
        let p = try plan("vm", disks: [("/img/a.img", "vda"), ("/img/b.img", "vdb")], level: "s0:c1,c2")
        _ = try relabeler(store).labelAll(p)
        store.failSetting("/img/a.img", with: .labeling)
        let r = relabeler(store).restoreAll(p)
        #expect(r.failures.count == 1 && r.failures[0].contains("/img/a.img"))
        #expect(store.label("/img/b.img") == Self.homeLabel)
    }
}
