import Foundation
import Glibc
import SVirtLinux
import Testing

/// An AVC line as auditd writes it.
func avcLine(_ perms: String, scontext: String, tcontext: String, tclass: String, pid: Int, serial: Int, extra: String = "") -> String {
    "type=AVC msg=audit(1764180000.\(serial):\(serial)): avc:  denied  { \(perms) } for  pid=\(pid) comm=\"qemu-system-x86\" "
        + "\(extra)scontext=\(scontext) tcontext=\(tcontext) tclass=\(tclass) permissive=0"
}

func staticSeclabel(_ level: String, type: String = "svirt_t") -> String {
    "\n  <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:\(type):\(level)</label></seclabel>"
}

func jsonArray(_ text: String) -> [[String: Any]] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
}

func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
}

@Suite("svirt booleans and svirt explain --vm")
struct BooleansExplainCommandTests {
    @Test("svirt booleans lists the Debian policy's virt booleans with their defaults, virt_use_execmem affecting the TCG guest only and virt_transition_userdomain the unconfined_t one")
    func list() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-bools")
        #expect(try host.define("tcg", host.xml("tcg", disks: [], type: "qemu", seclabel: staticSeclabel("s0:c10,c20"))).status == 0)
        #expect(try host.define("kvm", host.xml("kvm", disks: [], type: "kvm")).status == 0)
        #expect(try host.define("user", host.xml("user", disks: [], type: "kvm", seclabel: staticSeclabel("s0", type: "unconfined_t"))).status == 0)
        let r = try host.run("booleans", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let list = jsonArray(r.stdout)
        let names = list.compactMap { $0["name"] as? String }
        for n in ["virt_use_execmem", "virt_use_nfs", "virt_use_samba", "virt_use_usb", "virt_use_comm", "virt_use_fusefs",
                  "virt_transition_userdomain"] {
            #expect(names.contains(n), "\(n) in \(names)")
        }
        #expect(list.allSatisfy { $0["value"] as? Bool == false && $0["origin"] as? String == "default" })
        let execmem = try #require(list.first { $0["name"] as? String == "virt_use_execmem" })
        let effects = (execmem["effects"] as? [[String: Any]]) ?? []
        #expect(effects.compactMap { $0["domain"] as? String } == ["tcg"])
        #expect(effects.first?["access"] as? String == "svirt_t svirt_t:process { execmem }")
        // Debian's policy lacks virt_transition_userdomain; svirt's built-in policy decides whether svirt may start
        // QEMU in a user domain (the static unconfined_t label).
        let userdomain = try #require(list.first { $0["name"] as? String == "virt_transition_userdomain" })
        let transitions = (userdomain["effects"] as? [[String: Any]]) ?? []
        #expect(transitions.compactMap { $0["domain"] as? String } == ["user"])
        #expect(transitions.first?["access"] as? String == "virtd_t unconfined_t:process { transition }")
        #expect(list.filter { !["virt_use_execmem", "virt_transition_userdomain"].contains($0["name"] as? String) }
            .allSatisfy { ($0["effects"] as? [Any])?.isEmpty == true })
        let text = try host.run("booleans")
        #expect(text.stdout.contains("virt_use_execmem (off) affects:\n  tcg: TCG guest"), "\(text.stdout)")
        #expect(text.stdout.contains("denied now: svirt booleans virt_use_execmem=on"))
        #expect(!text.stdout.contains("  kvm:"))
    }

    @Test("an override written by one svirt process is the effective value for the next; bad values and unknown names are clear errors")
    func override() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-boolset")
        let set = try host.run("booleans", "virt_use_execmem=on")
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("virt_use_execmem set to on in svirt's boolean store"))
        let shown = jsonArray(try host.run("booleans", "virt_use_execmem", "--json").stdout)
        #expect(shown.count == 1)
        #expect(shown.first?["value"] as? Bool == true && shown.first?["origin"] as? String == "override")
        #expect(shown.first?["defaultValue"] as? Bool == false)
        let cleared = try host.run("booleans", "virt_use_execmem=default")
        #expect(cleared.status == 0)
        #expect(jsonArray(try host.run("booleans", "virt_use_execmem", "--json").stdout).first?["value"] as? Bool == false)

        let bad = try host.run("booleans", "virt_use_execmem=maybe")
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("invalid value 'maybe' for virt_use_execmem: use on or off"), "\(bad.stderr)")
        let unknown = try host.run("booleans", "virt_use_teleport=on")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("'virt_use_teleport' is not a boolean of") && unknown.stderr.contains("virt_use_execmem"), "\(unknown.stderr)")
        let notVirt = try host.run("booleans", "nscd_use_shm")
        #expect(notVirt.status == 1 && notVirt.stderr.contains("is not a virt boolean"), "\(notVirt.stderr)")
    }

    @Test("svirt check starts from svirt's effective booleans (an override in the store), and --bool overrides them")
    func checkUsesStore() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-boolcheck")
        #expect(try host.define("vm", host.xml("vm", disks: [], type: "kvm")).status == 0)
        func booleans(_ extra: String...) throws -> [String: Bool]? {
            let r = try svirt(["check", "--json", "--state-dir", host.state] + extra)
            return jsonObject(r.stdout)["booleans"] as? [String: Bool]
        }
        #expect(try booleans() == [:])
        #expect(try host.run("booleans", "virt_use_nfs=on").status == 0)
        #expect(try booleans() == ["virt_use_nfs": true])
        #expect(try booleans("--bool", "virt_use_nfs=0") == ["virt_use_nfs": false])
    }

    @Test("explain --vm explains the TCG guest's execmem denial as virt_use_execmem, from a file and from standard input, and leaves other VMs' denials out",
          arguments: ["default", "mls"].filter { FileManager.default.fileExists(atPath: "/etc/selinux/\($0)/policy/policy.33") })
    func explainVM(policyType: String) throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-explainvm")
        // An SELinux root whose configuration names the Debian policy of this case.
        let root = "\(host.dir)/selinux"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "SELINUX=permissive\nSELINUXTYPE=\(policyType)\n".write(toFile: "\(root)/config", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/\(policyType)", withDestinationPath: "/etc/selinux/\(policyType)")
        func run(_ args: String..., stdin: String? = nil) throws -> CLIResult {
            try svirt(args + ["--state-dir", host.state, "--selinux-root", root], stdin: stdin)
        }
        let tcg = "system_u:system_r:svirt_t:s0:c10,c20", other = "system_u:system_r:svirt_t:s0:c3,c4"
        #expect(try host.define("tcg", host.xml("tcg", disks: [], type: "qemu", seclabel: staticSeclabel("s0:c10,c20"))).status == 0)
        #expect(try host.define("other", host.xml("other", disks: [], type: "kvm", seclabel: staticSeclabel("s0:c3,c4"))).status == 0)
        let log = [
            avcLine("execmem", scontext: tcg, tcontext: tcg, tclass: "process", pid: 5404, serial: 367),
            "type=SYSCALL msg=audit(1764180000.367:367): arch=c000003e syscall=9 success=no exit=-13",
            avcLine("read write", scontext: other, tcontext: "system_u:object_r:svirt_image_t:s0:c3,c4", tclass: "file", pid: 5405,
                    serial: 368, extra: "path=\"/var/lib/other.img\" "),
            avcLine("read", scontext: "system_u:system_r:sshd_t:s0-s0:c0.c1023", tcontext: "system_u:object_r:shadow_t:s0",
                    tclass: "file", pid: 1, serial: 369),
            "type=AVC msg=audit(1764180000.370:370): avc:  denied  { read } for  pid=7 tclass=file",
        ].joined(separator: "\n") + "\n"
        let file = "\(host.dir)/audit.log"
        try log.write(toFile: file, atomically: true, encoding: .utf8)

        for args in [["explain", "--vm", "tcg", file], ["explain", "--vm", "tcg", "-"]] {
            let r = try svirt(args + ["--state-dir", host.state, "--selinux-root", root], stdin: args.last == "-" ? log : nil)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.hasPrefix("policy: /etc/selinux/\(policyType)/policy/policy.33") || r.stdout.hasPrefix("policy: \(root)/\(policyType)/policy/policy.33"),
                    "\(r.stdout)")
            #expect(r.stdout.contains("audit line 1 (1764180000.367:367): denied { execmem } scontext=\(tcg)"), "\(r.stdout)")
            #expect(r.stdout.contains("BOOLEAN: no allow rule grants it now, but the boolean virt_use_execmem enables one"))
            #expect(r.stdout.contains("fix: setsebool -P virt_use_execmem on"))
            #expect(!r.stdout.contains("c3,c4") && !r.stdout.contains("shadow_t"), "other VMs' and the host's denials stay out")
            #expect(r.stdout.components(separatedBy: "audit line ").count == 2)
            #expect(r.stdout.contains("note: 1 AVC line could not be read (line 5: AVC message without scontext="), "\(r.stdout)")
        }
        let json = jsonObject(try run("explain", "--vm", "tcg", file, "--json").stdout)
        let denials = (json["denials"] as? [[String: Any]]) ?? []
        #expect(denials.count == 1)
        let e = denials.first?["explanation"] as? [String: Any]
        #expect(e?["result"] as? String == "BOOLEAN")
        #expect((e?["booleans"] as? [[String: Any]])?.first?["name"] as? String == "virt_use_execmem")

        let theirs = try run("explain", "--vm", "other", file)
        #expect(theirs.stdout.contains("audit line 3") && !theirs.stdout.contains("execmem"), "\(theirs.stdout)")

        // With svirt's override on, the policy svirt decides with allows it, and says so.
        #expect(try run("booleans", "virt_use_execmem=on").status == 0)
        #expect(try run("explain", "--vm", "tcg", file).stdout.contains("ALLOW: this policy allows it now"))

        let none = try run("explain", "--vm", "tcg", "-", stdin: "")
        #expect(none.status == 0)
        #expect(none.stdout.contains("no denials found for 'tcg'"), "\(none.stdout)")
        // A dynamic VM that never ran has no label yet: nothing can be told to be its own, and it says so.
        #expect(try host.define("fresh", host.xml("fresh", disks: [], type: "qemu")).status == 0)
        let fresh = try run("explain", "--vm", "fresh", file)
        #expect(fresh.status == 0)
        #expect(fresh.stdout.contains("'fresh' has no label yet") && fresh.stdout.contains("no denials found for 'fresh'"), "\(fresh.stdout)")
        let missing = try run("explain", "--vm", "ghost", file)
        #expect(missing.status == 1 && missing.stderr.contains("failed to get domain 'ghost'"))
    }

    @Test("a Landlock-confined guest's refused open (EACCES) is recorded and explained with the Landlock rule and the SELinux decision, also after it stops",
          .enabled(if: getuid() == 0, "needs root"),
          .enabled(if: HostProbe().mechanism() == .landlock, "needs Landlock with SELinux off"))
    func landlockRefusal() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-eacces", config: "user = root\n")
        let own = try host.image("own.img", owner: (0, 0)), foreign = try host.image("foreign.img", owner: (0, 0))
        var guests: [(name: String, args: [String])] = [("standin", ["--stand-in"])]
        if qemuInstalled { guests.append(("qemu", [])) }
        for g in guests {
            #expect(try host.define(g.name, host.xml(g.name, disks: [own], type: "qemu")).status == 0)
            let start = try svirt(["start", g.name, "--state-dir", host.state] + g.args)
            #expect(start.status == 0, "\(start.stderr)")
            let refused = try host.run("qemu-monitor-command", g.name,
                                       #"{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"f","filename":"\#(foreign)"}}"#)
            #expect(refused.stdout.contains("Could not open '\(foreign)': Permission denied"), "\(refused.stdout) \(refused.stderr)")
            for phase in ["running", "stopped"] {
                let r = try host.run("explain", "--vm", g.name, "/dev/null")
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.contains("landlock refusal: Could not open '\(foreign)': Permission denied"), "\(phase): \(r.stdout)")
                #expect(r.stdout.contains("Landlock: no rule of the VM's Landlock ruleset covers \(foreign)"), "\(phase): \(r.stdout)")
                #expect(r.stdout.contains("SELinux would decide TERULE for { open read write } on system_u:object_r:virt_image_t:s0:file"),
                        "\(phase): \(r.stdout)")
                #expect(r.stdout.components(separatedBy: "landlock refusal:").count == 2, "recorded once: \(r.stdout)")
                if phase == "running" { #expect(try host.run("destroy", g.name).status == 0) }
            }
        }
    }
}
