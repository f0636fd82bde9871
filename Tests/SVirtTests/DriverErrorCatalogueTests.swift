import SELinux
import Testing
@testable import SVirt

/// The file-labelling errors of sections 6 and 7 of the libvirt reference that other suites do not already
/// show, each in svirt's words. (Generation and allocation errors are in LabelGeneratorTests,
/// SeclabelParsingTests and ManagerPoolTests; the shared-path, NFS, malformed-refcount and stale-timestamp
/// cases in RelabelerTests; the metadata lock in SVirtLinuxTests.)
@Suite("sections 6 and 7 errors, in svirt's words") struct DriverErrorCatalogueTests {
    struct NoDefaults: DefaultLabelSource {
        func defaultLabel(for path: String, kind: FileKind) throws -> SecurityContext? { nil }
    }

    func plan(_ paths: [String], level: String = "s0:c1,c2", more: String = "") throws -> LabelPlan {
        let disks = paths.enumerated().map { Fixtures.fileDisk($0.element, target: "vd\(String(UnicodeScalar(UInt8(97 + $0.offset))))") }.joined()
        let d = try Fixtures.parse(Fixtures.domain(name: "vm", devices: disks + more))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level(level)).label
        return try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
    }

    func relabeler(_ store: InMemoryFileLabelStore, defaults: any DefaultLabelSource = FallbackDefaultLabels(Fixtures.context("system_u:object_r:virt_image_t:s0"))) -> Relabeler {
        Relabeler(store: store, defaults: defaults, bootTime: 1)
    }

    @Test("libvirt 'unable to get SELinux context of PATH': the current label cannot be read")
    func unreadable() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        store.failReading("/img/a.img")
        #expect { try relabeler(store).labelAll(try plan(["/img/a.img"])) } throws: { e in
            (e as? SVirtError)?.message == "disk 'vda': cannot read the SELinux context of /img/a.img: getxattr security.selinux /img/a.img: input/output error (injected); nothing had been changed"
        }
    }

    @Test("libvirt 'unable to set security context CON on PATH': setting the label fails, and the record is undone")
    func unsettable() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        store.failSetting("/img/a.img", with: .labeling)
        #expect { try relabeler(store).labelAll(try plan(["/img/a.img"])) } throws: { e in
            (e as? SVirtError)?.message.hasPrefix("disk 'vda': unable to set the security context system_u:object_r:svirt_image_t:s0:c1,c2 on /img/a.img") == true
        }
        #expect(store.attributes("/img/a.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
    }

    @Test("libvirt 'Unable to set XATTR NAME on PATH': a record write fails, nothing is left half done")
    func recordWrite() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        store.failAtWrite(2)
        #expect { try relabeler(store).labelAll(try plan(["/img/a.img"])) } throws: { e in
            (e as? SVirtError)?.message.contains("set trusted.svirt.security.timestamp_selinux /img/a.img: input/output error") == true
        }
        #expect(store.attributes("/img/a.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
    }

    @Test("libvirt 'cannot resolve symlink PATH' on restore: a path that is gone is reported and the rest restored")
    func restoreGone() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        store.add("/img/b.img", label: "system_u:object_r:virt_image_t:s0")
        let p = try plan(["/img/a.img", "/img/b.img"])
        _ = try relabeler(store).labelAll(p)
        let gone = InMemoryFileLabelStore()
        gone.add("/img/b.img", label: store.label("/img/b.img"))
        for (k, v) in store.attributes("/img/b.img") where k != "security.selinux" {
            try gone.open("/img/b.img").setAttribute(k, Array(v.utf8))
        }
        let r = relabeler(gone).restoreAll(p)
        #expect(r.items.first?.outcome == .left("/img/a.img no longer exists"))
        #expect(gone.attributes("/img/b.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
    }

    @Test("libvirt 'cannot lookup default selinux label': without a default the file keeps its label, with a warning")
    func noDefault() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:svirt_image_t:s0:c1,c2")
        let r = relabeler(store, defaults: NoDefaults()).restoreAll(try plan(["/img/a.img"]))
        #expect(r.items.first?.outcome == .left("no default label"))
        #expect(r.warnings == ["/img/a.img: file_contexts gives no default label, so it keeps system_u:object_r:svirt_image_t:s0:c1,c2"])
    }

    @Test("/dev/null, the TPM cancel file of last resort, is never relabelled")
    func devNull() throws {
        let p = try plan([], more: "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm9'/></backend></tpm>")
        #expect(p.lines == ["/dev/tpm9;system_u:object_r:svirt_image_t:s0:c1,c2", "/dev/null;"])
    }
}
