import Foundation
import Glibc
import SVirtLinux
import Testing

/// `svirt import`, `svirt clone` and `svirt edit` through the real binary, on real files with real labels, the
/// host's (Debian) policy deciding seclabels.
@Suite("svirt import, clone and edit", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct WorkflowCommandTests {
    static let debianPolicy = "/etc/selinux/default/policy/policy.33"

    /// Writes `count` bytes of `byte` at each offset of an existing image.
    static func fill(_ path: String, at offsets: [Int], byte: UInt8 = 0xC3, count: Int = 256 << 10) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        let bytes = [UInt8](repeating: byte, count: count)
        for o in offsets { _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(o)) } }
    }

    static func blocks(_ path: String) -> Int {
        var st = stat()
        stat(path, &st)
        return Int(st.st_blocks)
    }

    /// An executable shell script in the host's directory.
    static func script(_ host: LifecycleHost, _ name: String, _ body: String) throws -> String {
        let p = "\(host.dir)/\(name)"
        try ("#!/bin/sh\nset -e\n" + body + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        chmod(p, 0o755)
        return p
    }

    @Test("import --print-xml prints the XML without defining; import defines it; the format comes from the file; bad input is refused clearly")
    func importImages() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-import")
        let raw = try host.image("raw.img")
        let qcow = "\(host.dir)/q.qcow2"
        let made = try run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", qcow, "16M"])
        try #require(made.status == 0, "qemu-img: \(made.stderr)")

        let printed = try host.run("import", "--name", "imp", "--disk", "\(raw),shareable", "--disk", qcow, "--memory", "300",
                                   "--vcpus", "2", "--type", "qemu", "--print-xml")
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.hasPrefix("<domain type='qemu'>\n  <name>imp</name>\n"), "\(printed.stdout)")
        #expect(printed.stdout.contains("<memory unit='MiB'>300</memory>") && printed.stdout.contains("<vcpu>2</vcpu>"))
        #expect(printed.stdout.contains("<driver name='qemu' type='raw'/>\n      <source file='\(raw)'/>\n      <target dev='vda' bus='virtio'/>\n      <shareable/>"))
        #expect(printed.stdout.contains("<driver name='qemu' type='qcow2'/>\n      <source file='\(qcow)'/>"))
        #expect(try host.listJSON().isEmpty, "--print-xml defines nothing")

        let defined = try host.run("import", "--name", "imp", "--disk", "\(raw),shareable", "--disk", qcow, "--memory", "300")
        #expect(defined.status == 0, "\(defined.stderr)")
        #expect(defined.stdout == "Domain 'imp' defined from the imported images \(raw), \(qcow)\n")
        let xml = try host.run("dumpxml", "imp").stdout
        #expect(xml.contains("<domain type='kvm'>") && xml.contains("<source file='\(qcow)'/>") && xml.contains("<shareable/>"))
        #expect(try host.row("imp")?["state"] as? String == "shut off")

        let again = try host.run("import", "--name", "imp", "--disk", raw)
        #expect(again.status == 1)
        #expect(again.stderr == "error: Failed to import domain 'imp'\nerror: domain 'imp' already exists; choose another --name, or undefine 'imp' first\n")
        let missing = try host.run("import", "--name", "m", "--disk", "\(host.dir)/none.img")
        #expect(missing.status == 1 && missing.stderr.contains("--disk \(host.dir)/none.img: the image does not exist"), "\(missing.stderr)")
        let option = try host.run("import", "--name", "m", "--disk", "\(raw),sharable")
        #expect(option.status == 1 && option.stderr.contains("'sharable' is not a disk option; use shareable, readonly"), "\(option.stderr)")
        let notQcow = try host.run("import", "--name", "m", "--disk", "\(raw),format=qcow2")
        #expect(notQcow.status == 1 && notQcow.stderr.contains("does not start with qcow2's magic"), "\(notQcow.stderr)")
        let type = try host.run("import", "--name", "m", "--disk", raw, "--type", "xen")
        #expect(type.status != 0 && type.stderr.contains("--type xen: use kvm or qemu"), "\(type.stderr)")
        #expect(try host.run("import", "--name", "m").stderr.contains("give at least one --disk"))
        #expect(try host.listJSON().count == 1, "no failed import defined anything")
    }

    @Test("cloning the chapter's Shareable_VM: one shared image, the private disk copied with its holes, new uuid and MAC; both run at two distinct levels")
    func shareableClone() throws {
        try requireSVirt()
        let useQEMU = qemuInstalled
        let host = try LifecycleHost("svirt-clone", config: useQEMU ? nil : "user = root\n")
        let shared = try host.image("Shareable_VM.img", owner: useQEMU ? (1234, 5678) : (0, 0))
        let priv = try host.image("Shareable_VM-private.img", owner: useQEMU ? (1234, 5678) : (0, 0))
        try Self.fill(priv, at: [0, 5 << 20, 11 << 20 + 4096])
        let type = HostProbe().kvm().usable ? "kvm" : "qemu"
        #expect(try host.run("import", "--name", "Shareable_VM", "--disk", "\(shared),shareable", "--disk", priv,
                             "--memory", "64", "--type", type).status == 0)
        // Give it a NIC (as virt-manager would) through define: same name and uuid replace the definition.
        let xml = try host.run("dumpxml", "Shareable_VM").stdout
            .replacingOccurrences(of: "  </devices>", with: "    <interface type='user'><mac address='52:54:00:11:22:33'/></interface>\n  </devices>")
        try host.define("Shareable_VM", xml)

        let cloned = try host.run("clone", "Shareable_VM", "Shareable_VM-clone")
        #expect(cloned.status == 0, "\(cloned.stderr)")
        let copy = "\(host.dir)/Shareable_VM-clone-private.img"
        #expect(cloned.stdout.contains("disk 'vda': kept \(shared) (shareable: both VMs use the one image)"), "\(cloned.stdout)")
        #expect(cloned.stdout.contains("disk 'vdb': copied \(priv) to \(copy)"), "\(cloned.stdout)")
        #expect(!cloned.stdout.contains("\r"), "no progress line when stdout is not a terminal")
        #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: priv))
        let (origBlocks, copyBlocks) = (Self.blocks(priv), Self.blocks(copy))
        #expect(copyBlocks <= origBlocks && copyBlocks * 512 < 2 << 20, "copy \(copyBlocks) blocks, original \(origBlocks), of 16 MiB")
        #expect(xattr("security.selinux", copy) == "system_u:object_r:virt_image_t:s0")

        let a = try host.run("dumpxml", "Shareable_VM").stdout, b = try host.run("dumpxml", "Shareable_VM-clone").stdout
        func field(_ text: String, _ tag: String) -> String? {
            guard let s = text.range(of: "<\(tag)>"), let e = text.range(of: "</\(tag)>", range: s.upperBound..<text.endIndex) else { return nil }
            return String(text[s.upperBound..<e.lowerBound])
        }
        #expect(field(b, "name") == "Shareable_VM-clone")
        #expect(field(a, "uuid") != nil && field(a, "uuid") != field(b, "uuid"))
        #expect(b.contains("<source file='\(shared)'/>") && b.contains("<source file='\(copy)'/>") && !b.contains(priv + "'"))
        #expect(!b.contains("52:54:00:11:22:33") && b.contains("<mac address='52:54:00:"), "\(b)")

        // Both run: two process levels, one shared image labelled without categories.
        let extra = useQEMU ? [] : ["--stand-in"]
        for n in ["Shareable_VM", "Shareable_VM-clone"] {
            let s = try svirt(["start", n, "--state-dir", host.state] + extra)
            #expect(s.status == 0, "\(n): \(s.stderr)")
        }
        let rows = try host.listJSON(all: false)
        let labels = rows.compactMap { $0["label"] as? String }
        #expect(labels.count == 2 && Set(labels).count == 2, "\(rows)")
        let levels = labels.compactMap { $0.split(separator: ":", maxSplits: 3).last.map(String.init) }
        #expect(Set(levels).count == 2 && levels.allSatisfy { $0.hasPrefix("s0:c") }, "\(levels)")
        let listZ = try host.run("list", "-Z").stdout
        #expect(labels.allSatisfy { listZ.contains($0) }, "\(listZ)")
        #expect(xattr("security.selinux", shared) == "system_u:object_r:svirt_image_t:s0")
        for (n, own) in [("Shareable_VM", priv), ("Shareable_VM-clone", copy)] {
            let info = try host.run("dominfo", n).stdout
            #expect(labels.contains { info.contains("Security label: \($0)") }, "\(info)")
            let image = try #require(rows.first { $0["name"] as? String == n }?["imageLabel"] as? String)
            #expect(xattr("security.selinux", own) == image)
        }
        // svirt check over the two running VMs: no FAIL, the one image shared by both, each private image only its own.
        let check = try CheckCommandTests.check(host, ["Shareable_VM", "Shareable_VM-clone"])
        #expect(check.status == 0, "\(check.stderr) \(check.findings)")
        let sharedInfo = check.findings("shared-resource")
        #expect(sharedInfo.count == 1 && Set(sharedInfo.first?["vms"] as? [String] ?? []) == ["Shareable_VM", "Shareable_VM-clone"], "\(sharedInfo)")
        if let privID = check.resourceID(priv), let copyID = check.resourceID(copy) {
            #expect(check.cell("Shareable_VM-clone", privID)?["state"] as? String == "denied")
            #expect(check.cell("Shareable_VM", copyID)?["state"] as? String == "denied")
        } else {
            Issue.record("svirt check lists both private images: \(check.resources)")
        }
        // A running source with a private writable disk is not cloned.
        let busy = try host.run("clone", "Shareable_VM", "third")
        #expect(busy.status == 1 && busy.stderr.contains("is running and disk 'vdb' (\(priv)) is private and writable"), "\(busy.stderr)")
        for n in ["Shareable_VM", "Shareable_VM-clone"] { #expect(try host.run("destroy", n).status == 0) }
        // Private images get their labels back; the shared one stays shared-labelled, as libvirt leaves it.
        #expect(xattr("security.selinux", priv) == "system_u:object_r:virt_image_t:s0")
        #expect(xattr("security.selinux", copy) == "system_u:object_r:virt_image_t:s0")
        #expect(try host.reservations().isEmpty)
    }

    @Test("a static-label VM is refused with the reason and cloned with --force; --file must name a new file, one per copied disk")
    func staticClone() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-clone-static")
        let img = try host.image("s.img")
        #expect(try host.run("import", "--name", "s", "--disk", img).status == 0)
        let set = try svirt(["edit", "s", "--set-seclabel", "static:system_u:system_r:svirt_t:s0:c1022,c1023", "--relabel", "no",
                             "--state-dir", host.state, "--selinux-root", "/etc/selinux"])
        #expect(set.status == 0 && set.stdout == "Domain 's' XML configuration edited.\n", "\(set.stderr)")
        let refused = try host.run("clone", "s", "s2")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("static SELinux label (system_u:system_r:svirt_t:s0:c1022,c1023)"))
        #expect(refused.stderr.contains("one image per static label") && refused.stderr.contains("each could open the other's image"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(host.dir)/s-clone.img"))
        #expect(try host.row("s2") == nil)

        let exists = try host.run("clone", "s", "s2", "--force", "--file", img)
        #expect(exists.stderr.contains("is the source of disk 'vda' itself"), "\(exists.stderr)")
        let taken = try host.image("taken.img")
        #expect(try host.run("clone", "s", "s2", "--force", "--file", taken).stderr.contains("--file \(taken) already exists"))
        let count = try host.run("clone", "s", "s2", "--force", "--file", "\(host.dir)/x.img", "--file", "\(host.dir)/y.img")
        #expect(count.stderr.contains("2 --file given, but 's' has 1 private file(s) to copy: disk 'vda' (\(img))"), "\(count.stderr)")

        let forced = try host.run("clone", "s", "s2", "--force", "--file", "\(host.dir)/s2.img")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("warning: 's2' keeps the static label"))
        #expect(try host.run("dumpxml", "s2").stdout.contains("<source file='\(host.dir)/s2.img'/>"))
        #expect(FileManager.default.fileExists(atPath: "\(host.dir)/s2.img"))
    }

    @Test("svirt edit with a scripted $EDITOR: a parse error re-opens the editor with the message, the fixed file is saved; unchanged is reported")
    func editRetries() throws {
        try requireSVirt()
        try #require(FileManager.default.fileExists(atPath: Self.debianPolicy), "needs the Debian policy")
        let host = try LifecycleHost("svirt-edit")
        let img = try host.image("e.img")
        #expect(try host.run("import", "--name", "e", "--disk", img, "--memory", "256").status == 0)
        // First call: break the closing tag. Second: keep what it was given (svirt's comment on top), fix the tag,
        // change the memory.
        let editor = try Self.script(host, "editor.sh", """
            n=$(cat "\(host.dir)/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "\(host.dir)/count"
            cp "$1" "\(host.dir)/seen$n"
            if [ $n = 1 ]; then sed -i 's#</domain>#</domian>#' "$1"; else sed -i -e 's#</domian>#</domain>#' -e 's#>256<#>320<#' "$1"; fi
            """)
        let before = try host.run("dumpxml", "e").stdout
        let r = try svirt(["edit", "e", "--state-dir", host.state, "--selinux-root", "/etc/selinux"], env: ["VISUAL": editor, "EDITOR": editor])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "Domain 'e' XML configuration edited.\n")
        #expect(r.stderr.contains("error: the edited XML line") && r.stderr.contains("</domian>"), "\(r.stderr)")
        #expect(r.stderr.contains("Failed. Re-opening the editor"))
        let first = try String(contentsOfFile: "\(host.dir)/seen1", encoding: .utf8)
        let second = try String(contentsOfFile: "\(host.dir)/seen2", encoding: .utf8)
        #expect(first == before, "the editor gets the definition")
        #expect(second.hasPrefix("<!-- svirt edit: the edited XML line") && second.contains("</domian>"), "\(second)")
        let after = try host.run("dumpxml", "e").stdout
        #expect(after.contains("<memory unit='MiB'>320</memory>") && !after.contains("svirt edit"), "\(after)")

        let same = try svirt(["edit", "e", "--state-dir", host.state], env: ["VISUAL": "true", "EDITOR": "true"])
        #expect(same.status == 0 && same.stdout == "Domain 'e' XML configuration not changed.\n", "\(same.stderr)")
        #expect(try host.run("dumpxml", "e").stdout == after)
        // An editor that writes the same bad file again: svirt gives up and keeps the definition.
        let stubborn = try Self.script(host, "stubborn.sh", "printf '<domain><name>e</name>' > \"$1\"")
        let gaveUp = try svirt(["edit", "e", "--state-dir", host.state], env: ["VISUAL": stubborn])
        #expect(gaveUp.status == 1 && gaveUp.stderr.contains("saved unchanged after the error: giving up"), "\(gaveUp.stderr)")
        #expect(try host.run("dumpxml", "e").stdout == after)
        // One that writes a different bad file every time: svirt stops after 10 failed saves.
        let restless = try Self.script(host, "restless.sh", "printf '<domain>' >> \"$1\"")
        let capped = try svirt(["edit", "e", "--state-dir", host.state], env: ["VISUAL": restless])
        #expect(capped.status == 1 && capped.stderr.hasSuffix("error: 10 saves in a row failed: giving up; the definition of 'e' is unchanged\n"), "\(capped.stderr)")
        #expect(try host.run("dumpxml", "e").stdout == after)
        #expect(try host.run("edit", "nope").stderr == "error: failed to get domain 'nope'\n")
    }

    @Test("a seclabel the Debian policy rejects is refused with the policy engine's reason, from the editor and from --set-seclabel")
    func editPolicy() throws {
        try requireSVirt()
        try #require(FileManager.default.fileExists(atPath: Self.debianPolicy), "needs the Debian policy")
        let host = try LifecycleHost("svirt-edit-policy")
        let img = try host.image("p.img")
        #expect(try host.run("import", "--name", "p", "--disk", img).status == 0)
        let before = try host.run("dumpxml", "p").stdout
        // Every call writes the definition with a static label of a type the policy does not have.
        let editor = try Self.script(host, "seclabel.sh", """
            [ -f "\(host.dir)/orig.xml" ] || cp "$1" "\(host.dir)/orig.xml"
            sed "/<\\/devices>/a <seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:nosuch_t:s0:c1,c2</label></seclabel>" "\(host.dir)/orig.xml" > "$1"
            """)
        let r = try svirt(["edit", "p", "--state-dir", host.state, "--selinux-root", "/etc/selinux"], env: ["VISUAL": editor])
        #expect(r.status == 1)
        #expect(r.stderr.contains("rejects <seclabel type='static' model='selinux'> <label> system_u:system_r:nosuch_t:s0:c1,c2: the policy has no type 'nosuch_t'"), "\(r.stderr)")
        #expect(r.stderr.contains(Self.debianPolicy))
        #expect(try host.run("dumpxml", "p").stdout == before, "the definition is unchanged")

        func setLabel(_ spec: String, _ more: [String] = []) throws -> CLIResult {
            try svirt(["edit", "p", "--set-seclabel", spec] + more + ["--state-dir", host.state, "--selinux-root", "/etc/selinux"])
        }
        let role = try setLabel("static:staff_u:system_r:svirt_t:s0:c1022,c1023")
        #expect(role.status == 1 && role.stderr.contains("user staff_u may not have role system_r"), "\(role.stderr)")
        let type = try setLabel("static:system_u:system_r:nosuch_t:s0:c1,c2")
        #expect(type.status == 1 && type.stderr.contains("the policy has no type 'nosuch_t'"))
        #expect(try host.run("dumpxml", "p").stdout == before)
        let good = try setLabel("static:system_u:system_r:svirt_t:s0:c1022,c1023", ["--relabel", "no"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try host.run("dumpxml", "p").stdout.contains("<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1022,c1023</label></seclabel>"))
        #expect(try setLabel("dynamic").status == 0)
        #expect(try host.run("dumpxml", "p").stdout.contains("<seclabel type='dynamic' model='selinux' relabel='yes'/>"))
        #expect(try setLabel("none").status == 0)
        #expect(try host.run("dumpxml", "p").stdout.contains("<seclabel type='none' model='selinux'/>"))
        #expect(try setLabel("dynamic", ["--relabel", "no"]).stderr.contains("drop --relabel no"))
        #expect(try host.run("edit", "p", "--relabel", "no").stderr.contains("--relabel goes with --set-seclabel"))
    }
}
