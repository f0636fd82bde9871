import Foundation
import Glibc
import SVirtLinux
import Testing

/// `svirt check` with the real binary, real image files with real labels, a scratch state directory, and Debian's
/// real policies.
@Suite("svirt check", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct CheckCommandTests {
    static let defaultPolicy = "/etc/selinux/default/policy/policy.33"
    static let mlsPolicy = "/etc/selinux/mls/policy/policy.33"

    /// A scratch host with a pool of c1.c8, so the tests can steer which level a start gets.
    static func host(_ prefix: String) throws -> LifecycleHost {
        try LifecycleHost(prefix, config: "user = root\ncategories = c1.c8\n")
    }

    static func disk(_ path: String, _ dev: String, _ extra: String) -> String {
        """
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/>
              <source file='\(path)'/>
              <target dev='\(dev)' bus='virtio'/>\(extra)
            </disk>
        """
    }

    /// A VM with one private disk and, optionally, a `<shareable/>` disk (read-only with `readOnlyShare`).
    static func defineVM(_ host: LifecycleHost, _ name: String, shared: String? = nil, readOnlyShare: Bool = false,
                         seclabel: String = "") throws {
        let img = try host.image("\(name).img", owner: (0, 0))
        let extra = shared.map { Self.disk($0, "vdb", readOnlyShare ? "<shareable/><readonly/>" : "<shareable/>") } ?? ""
        let r = try host.define(name, host.xml(name, disks: [img], extra: "", seclabel: seclabel)
            .replacingOccurrences(of: "  </devices>", with: extra + "\n  </devices>"))
        try #require(r.status == 0, "\(r.stderr)")
    }

    struct Run {
        var status: Int32
        var json: [String: Any]
        var stdout: String
        var stderr: String

        var findings: [[String: Any]] { json["findings"] as? [[String: Any]] ?? [] }
        var resources: [[String: Any]] { json["resources"] as? [[String: Any]] ?? [] }
        var cells: [[String: Any]] { json["cells"] as? [[String: Any]] ?? [] }

        func findings(_ kind: String) -> [[String: Any]] { findings.filter { $0["kind"] as? String == kind } }
        func resourceID(_ path: String) -> String? { resources.first { $0["path"] as? String == path }?["id"] as? String }
        func cell(_ vm: String, _ target: String) -> [String: Any]? {
            cells.first { $0["vm"] as? String == vm && $0["target"] as? String == target }
        }
        func permission(_ vm: String, _ target: String, _ name: String) -> [String: Any]? {
            (cell(vm, target)?["permissions"] as? [[String: Any]])?.first { $0["name"] as? String == name }
        }
    }

    static func check(_ host: LifecycleHost, _ args: [String]) throws -> Run {
        let r = try svirt(["check", "--json", "--state-dir", host.state] + args)
        let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        return Run(status: r.status, json: json, stdout: r.stdout, stderr: r.stderr)
    }

    @Test("two dynamic VMs show no cross access under the default and mls policies: each read is refused by the MCS/MLS constraint, and the check exits 0")
    func twoDynamic() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-dyn")
        try Self.defineVM(host, "vm1")
        try Self.defineVM(host, "vm2")
        for policy in [Self.defaultPolicy, Self.mlsPolicy] {
            let r = try Self.check(host, ["--policy", policy])
            #expect(r.status == 0, "\(policy): \(r.stderr) \(r.findings)")
            #expect(r.json["failed"] as? Bool == false)
            #expect(r.findings.filter { $0["severity"] as? String == "FAIL" }.isEmpty, "\(policy): \(r.findings)")
            let one = try #require(r.resourceID("\(host.dir)/vm1.img")), two = try #require(r.resourceID("\(host.dir)/vm2.img"))
            for (vm, other) in [("vm1", two), ("vm2", one)] {
                #expect(r.cell(vm, other)?["state"] as? String == "denied")
                let read = try #require(r.permission(vm, other, "read"))
                #expect(read["allowed"] as? Bool == false)
                #expect((read["reason"] as? String)?.hasPrefix("constraint: mlsconstrain file") == true, "\(read)")
            }
            #expect(r.cell("vm1", one)?["state"] as? String == "own")
            #expect(r.permission("vm1", "process:vm2", "ptrace")?["allowed"] as? Bool == false)
            #expect(r.permission("vm1", "process:vm2", "signal")?["allowed"] as? Bool == false)
        }
        // Running, with the random levels a start gives and the labels of the live XML.
        for vm in ["vm1", "vm2"] {
            let s = try host.run("start", vm, "--stand-in")
            try #require(s.status == 0, "\(s.stderr)")
        }
        defer { for vm in ["vm1", "vm2"] { _ = try? host.run("destroy", vm) } }
        let r = try Self.check(host, ["--policy", Self.defaultPolicy])
        #expect(r.status == 0, "\(r.stderr) \(r.findings)")
        let machines = r.json["machines"] as? [[String: Any]] ?? []
        let listed = try host.listJSON(all: false)
        for vm in ["vm1", "vm2"] {
            let m = try #require(machines.first { $0["name"] as? String == vm })
            #expect(m["state"] as? String == "running" && m["plannedLevel"] as? Bool == false)
            let level = try #require(listed.first { $0["name"] as? String == vm }?["level"] as? String)
            #expect(m["range"] as? String == level)
        }
        let one = try #require(r.resourceID("\(host.dir)/vm1.img")), two = try #require(r.resourceID("\(host.dir)/vm2.img"))
        #expect(r.cell("vm1", two)?["state"] as? String == "denied" && r.cell("vm2", one)?["state"] as? String == "denied")
        #expect(r.cell("vm1", one)?["state"] as? String == "own" && r.cell("vm2", two)?["state"] as? String == "own")
    }

    @Test("svirt check --queries writes every cell as one question per permission, and libsepol (audit2why) gives each the same answer, under the default and mls policies")
    func queriesAgreeWithLibsepol() throws {
        try requireSVirt()
        guard (try? run("/usr/bin/python3", ["-c", "import selinux.audit2why"]).status) == 0 else { return }
        let host = try Self.host("svirt-check-queries")
        let shared = try host.image("shared.img", owner: (0, 0))
        try Self.defineVM(host, "vm1", shared: shared)
        try Self.defineVM(host, "vm2", shared: shared, readOnlyShare: true)
        try Self.defineVM(host, "stat", seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c7,c8</label></seclabel>
            """)
        let oracle = """
            import sys, selinux.audit2why as a
            a.init(sys.argv[1])
            for line in open(sys.argv[2]):
                answer, query = line.rstrip('\\n').split('\\t')
                s, t, c, p = query.split(' ')
                rc, _ = a.analyze(s, t, c, [p])
                print(('ALLOW' if rc == 0 else 'DENY') + '\\t' + query)
            """
        for policy in [Self.defaultPolicy, Self.mlsPolicy] {
            let file = "\(host.dir)/queries-\((policy as NSString).deletingLastPathComponent.split(separator: "/")[2])"
            let r = try svirt(["check", "--state-dir", host.state, "--policy", policy, "--queries", file])
            #expect(r.status == 0 || r.status == 1, "\(r.stderr)")
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
            // 3 VMs, 4 resources and 2 other processes per row, every permission of each
            #expect(lines.count >= 60, "\(lines.count) questions")
            #expect(lines.allSatisfy { $0.hasPrefix("ALLOW\t") || $0.hasPrefix("DENY\t") })
            #expect(lines.contains { $0.hasPrefix("ALLOW\t") } && lines.contains { $0.hasPrefix("DENY\t") })
            let libsepol = try run("/usr/bin/python3", ["-c", oracle, policy, file])
            try #require(libsepol.status == 0, "\(libsepol.stderr)")
            let theirs = libsepol.stdout.split(separator: "\n").map(String.init)
            #expect(theirs.count == lines.count)
            let differ = zip(lines, theirs).filter { $0 != $1 }
            #expect(differ.isEmpty, "\(policy): \(differ.count) of \(lines.count) differ: \(differ.prefix(5))")
        }
    }

    @Test("a report path that is a symbolic link (planted in /tmp by another user) is refused and its target left as it was")
    func reportThroughSymlinkRefused() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-link")
        try Self.defineVM(host, "vm1")
        let victim = "\(host.dir)/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let link = "\(host.dir)/report"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        for option in ["--queries", "--html", "--svg"] {
            let r = try svirt(["check", "--state-dir", host.state, "--policy", Self.defaultPolicy, option, link])
            #expect(r.status == 2, "\(option): \(r.stderr)")
            #expect(r.stderr.contains("'\(link)' is a symbolic link; svirt writes reports only to a regular file"), "\(r.stderr)")
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        }
        // a regular file is replaced whole
        try FileManager.default.removeItem(atPath: link)
        try String(repeating: "x", count: 100_000).write(toFile: link, atomically: false, encoding: .utf8)
        let r = try svirt(["check", "--state-dir", host.state, "--policy", Self.defaultPolicy, "--queries", link])
        #expect(r.status == 0, "\(r.stderr)")
        let written = try String(contentsOfFile: link, encoding: .utf8)
        #expect(!written.contains("xxxx") && (written.hasPrefix("ALLOW\t") || written.hasPrefix("DENY\t")))
    }

    @Test("a static VM at s0:c1,c2,c3 beside a running dynamic VM at s0:c1,c2 is a FAIL that names both VMs and both levels; the check exits 1")
    func staticDominates() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-static")
        try Self.defineVM(host, "dyn")
        try Self.defineVM(host, "stat", seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c1,c2,c3</label></seclabel>
            """)
        // Leave s0:c1,c2 the only free pair of the pool, so the start of 'dyn' takes it.
        #expect(try host.run("mcs", "reserve", "s0:c1,c3.c8", "--owner", "block1").status == 0)
        #expect(try host.run("mcs", "reserve", "s0:c2,c3.c8", "--owner", "block2").status == 0)
        let started = try host.run("start", "dyn", "--stand-in")
        try #require(started.status == 0, "\(started.stderr)")
        defer { _ = try? host.run("destroy", "dyn") }
        let r = try Self.check(host, ["--policy", Self.defaultPolicy])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.json["failed"] as? Bool == true)
        let machines = r.json["machines"] as? [[String: Any]] ?? []
        #expect(machines.first { $0["name"] as? String == "dyn" }?["process"] as? String == "system_u:system_r:svirt_t:s0:c1,c2")
        #expect(machines.first { $0["name"] as? String == "dyn" }?["state"] as? String == "running")
        let dom = try #require(r.findings("level-dominance").first)
        #expect(dom["severity"] as? String == "FAIL")
        #expect(dom["vms"] as? [String] == ["stat", "dyn"])
        let message = dom["message"] as? String ?? ""
        #expect(message.contains("'stat' (s0:c1.c3)") && message.contains("'dyn' (s0:c1,c2)"), "\(message)")
        // The crossing itself comes from the policy: the static VM may read and write the dynamic VM's image.
        let dynImage = try #require(r.resourceID("\(host.dir)/dyn.img"))
        #expect(r.permission("stat", dynImage, "read")?["allowed"] as? Bool == true)
        #expect(r.permission("stat", dynImage, "write")?["allowed"] as? Bool == true)
        #expect(r.findings("cross-access").contains { $0["vms"] as? [String] == ["stat", "dyn"] && $0["target"] as? String == dynImage })
        // The text output names both too.
        let text = try host.run("check", "--policy", Self.defaultPolicy)
        #expect(text.status == 1)
        #expect(text.stdout.contains("FAIL level-dominance: 'stat' (s0:c1.c3) dominates 'dyn' (s0:c1,c2)"), "\(text.stdout)")
    }

    @Test("a shared disk is INFO under the default policy (exit 0); under mls its writer is refused write and FAILs while a reader does not (exit 1)")
    func sharedDisk() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-shared")
        let shared = try host.image("shared.img", owner: (0, 0))
        try Self.defineVM(host, "writer", shared: shared)
        try Self.defineVM(host, "reader", shared: shared, readOnlyShare: true)
        let d = try Self.check(host, ["--policy", Self.defaultPolicy])
        #expect(d.status == 0, "\(d.stderr) \(d.findings)")
        let id = try #require(d.resourceID(shared))
        let info = d.findings("shared-resource")
        #expect(info.count == 1 && info.first?["severity"] as? String == "INFO" && info.first?["target"] as? String == id)
        #expect(Set(info.first?["vms"] as? [String] ?? []) == ["writer", "reader"])
        #expect(d.cell("writer", id)?["state"] as? String == "shared")

        let m = try Self.check(host, ["--policy", Self.mlsPolicy])
        #expect(m.status == 1)
        let own = m.findings("own-access")
        #expect(own.count == 1 && own.first?["vms"] as? [String] == ["writer"], "\(own)")
        let write = try #require(m.permission("writer", id, "write"))
        #expect(write["allowed"] as? Bool == false)
        #expect((write["reason"] as? String)?.contains("mlsconstrain file { write") == true, "\(write)")
        #expect(m.cell("writer", id)?["state"] as? String == "fail")
        #expect(m.cell("reader", id)?["state"] as? String == "shared")
        #expect(m.findings("shared-resource").count == 1)
    }

    @Test("a block device disk is asked as blk_file and a serial device as chr_file: its VM may use both, another VM neither")
    func deviceClasses() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-dev")
        let blk = "\(host.dir)/blk0", chr = "\(host.dir)/chr0"
        // Old-style device numbers: (major << 8) | minor for small numbers.
        try #require(mknod(blk, S_IFBLK | 0o600, dev_t(7 << 8 | 200)) == 0 && mknod(chr, S_IFCHR | 0o600, dev_t(1 << 8 | 3)) == 0)
        for p in [blk, chr] {
            try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:fixed_disk_device_t:s0".utf8) + [0], path: p)
        }
        let xml = host.xml("dev", disks: []).replacingOccurrences(of: "  </devices>", with: """
                <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='\(blk)'/><target dev='vda' bus='virtio'/></disk>
                <serial type='dev'><source path='\(chr)'/><target port='0'/></serial>
              </devices>
            """)
        try #require(try host.define("dev", xml).status == 0)
        try Self.defineVM(host, "other")
        let r = try Self.check(host, ["--policy", Self.defaultPolicy])
        #expect(r.status == 0, "\(r.stderr) \(r.findings)")
        let b = try #require(r.resources.first { $0["path"] as? String == blk }), c = try #require(r.resources.first { $0["path"] as? String == chr })
        #expect(b["objectClass"] as? String == "blk_file" && c["objectClass"] as? String == "chr_file")
        for id in [b["id"] as? String ?? "", c["id"] as? String ?? ""] {
            #expect(r.cell("dev", id)?["state"] as? String == "own")
            #expect(r.cell("other", id)?["state"] as? String == "denied")
            #expect((r.permission("other", id, "write")?["reason"] as? String)?.hasPrefix("constraint:") == true)
        }
    }

    @Test("bad input exits 2 with an error naming the input and the fix: an unknown VM, a bad or unknown --bool, an unreadable policy")
    func badInput() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-bad")
        try Self.defineVM(host, "vm1")
        let cases: [([String], String)] = [
            (["nosuchvm"], "failed to get domain 'nosuchvm'"),
            (["--bool", "virt_use_nfs=maybe"], "invalid --bool 'virt_use_nfs=maybe'"),
            (["--bool", "no_such_boolean=1", "--policy", Self.defaultPolicy], "defines no boolean 'no_such_boolean'"),
            (["--policy", "\(host.dir)/missing.33"], "cannot read SELinux policy '\(host.dir)/missing.33': no such file"),
            (["--policy", "\(host.dir)/vm1.img"], "cannot read SELinux policy '\(host.dir)/vm1.img'"),
        ]
        for (args, message) in cases {
            let r = try svirt(["check"] + args + ["--state-dir", host.state])
            #expect(r.status == 2, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        // A known boolean is applied and reported.
        let ok = try Self.check(host, ["--policy", Self.defaultPolicy, "--bool", "virt_use_nfs=1"])
        #expect(ok.status == 0 && (ok.json["booleans"] as? [String: Bool]) == ["virt_use_nfs": true], "\(ok.stderr)")
    }

    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The DOM chromium builds from a page, after loading it headless.
    static func dumpDOM(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium ?? "chromium")
        p.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(path).profile", "--dump-dom",
                       "file://\(path)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Every element with an `id` in the DOM, with its attributes.
    static func elements(_ dom: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        let tag = try? Regex("<(td|th|strong|li)\\b([^>]*)>")
        let attr = try? Regex("([a-z-]+)=\"([^\"]*)\"")
        guard let tag, let attr else { return out }
        for m in dom.matches(of: tag) {
            var attrs: [String: String] = [:]
            for a in String(m.output[2].substring ?? "").matches(of: attr) {
                attrs[String(a.output[1].substring ?? "")] = String(a.output[2].substring ?? "")
            }
            attrs["tag"] = String(m.output[1].substring ?? "")
            if let id = attrs["id"] { out[id] = attrs }
        }
        return out
    }

    @Test("the HTML report loads in headless chromium and its matrix has the expected cells, coloured by access, with the reasons in their titles",
          .enabled(if: chromium != nil, "chromium is not installed (CI installs it)"))
    func htmlInBrowser() throws {
        try requireSVirt()
        let host = try Self.host("svirt-check-html")
        let shared = try host.image("shared.img", owner: (0, 0))
        try Self.defineVM(host, "vm1", shared: shared)
        try Self.defineVM(host, "vm2", shared: shared)
        try Self.defineVM(host, "stat", seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c0.c1023</label></seclabel>
            """)
        let page = "\(host.dir)/check.html", image = "\(host.dir)/check.svg"
        let r = try Self.check(host, ["--policy", Self.mlsPolicy, "--html", page, "--svg", image])
        #expect(r.status == 1, "\(r.stderr)")
        let dom = try Self.dumpDOM(page)
        #expect(dom.contains("<h1>svirt check</h1>"), "chromium did not render the page: \(dom.prefix(300))")
        #expect(!dom.contains("<script"))
        let els = Self.elements(dom)
        #expect(els["result"]?["data-result"] == "fail")
        let rows = (r.json["machines"] as? [[String: Any]] ?? []).compactMap { $0["process"] != nil ? $0["name"] as? String : nil }
        let one = try #require(r.resourceID("\(host.dir)/vm1.img")), two = try #require(r.resourceID("\(host.dir)/vm2.img"))
        let sharedID = try #require(r.resourceID(shared))
        let row = try #require(rows.firstIndex(of: "vm1")), statRow = try #require(rows.firstIndex(of: "stat"))
        // Every cell of the JSON is in the page, with the state as its class and a title.
        #expect(els.keys.filter { $0.hasPrefix("cell-") }.count == rows.count * (r.resources.count + rows.count))
        for c in r.cells {
            guard let vm = c["vm"] as? String, let target = c["target"] as? String, let i = rows.firstIndex(of: vm) else { continue }
            let id = target.hasPrefix("process:") ? "cell-\(i)-p\(rows.firstIndex(of: String(target.dropFirst(8))) ?? -1)" : "cell-\(i)-\(target)"
            let el = try #require(els[id], "no cell \(id) in the page")
            #expect(el["class"] == c["state"] as? String && el["data-state"] == c["state"] as? String, "\(id): \(el)")
            #expect(el["data-vm"] == vm && el["data-target"] == target)
            #expect(el["title"]?.isEmpty == false)
        }
        #expect(els["cell-\(row)-\(one)"]?["class"] == "own")
        #expect(els["cell-\(row)-\(two)"]?["class"] == "denied")
        #expect(els["cell-\(row)-\(two)"]?["title"]?.contains("constraint: mlsconstrain file") == true)
        #expect(els["cell-\(row)-\(sharedID)"]?["class"] == "fail", "mls refuses the writers of the shared disk")
        #expect(els["cell-\(row)-\(sharedID)"]?["title"]?.contains("denied write") == true)
        #expect(els["cell-\(statRow)-\(one)"]?["class"] == "fail", "s0:c0.c1023 dominates vm1's level")
        #expect(els["cell-\(row)-p\(row)"]?["class"] == "self")
        // The SVG loads too, with one group per cell.
        let svg = try String(contentsOfFile: image, encoding: .utf8)
        #expect(svg.components(separatedBy: "<rect ").count - 1 == rows.count * (r.resources.count + rows.count))
        let svgDOM = try Self.dumpDOM(image)
        #expect(svgDOM.contains("<svg") && svgDOM.contains("class=\"fail\""))
    }
}
