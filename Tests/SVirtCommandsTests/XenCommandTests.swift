import Foundation
import Testing

let xenDir = repoRoot + "/Tests/Fixtures/xen"
let xenPolicy = xenDir + "/policy/svirt-xen.30"
let xenMLSPolicy = xenDir + "/policy/svirt-xen-mls.30"
let xenCases = ["seclabel-only", "init-seclabel", "no-label", "stubdom"].map { xenDir + "/cfg/\($0).cfg" }

func xenCLI(_ args: [String], state: String? = nil) throws -> CLIResult {
    try svirt(args, env: ["SVIRT_STATE_DIR": state ?? NSTemporaryDirectory() + "svirt-xen-cmd-tests"])
}

@Suite("svirt xen and policy info on Xen policies", .enabled(if: haveBinary, "needs the svirt executable built"))
struct XenCommandTests {
    @Test("policy info names the Xen target and release, lists the SIDs by Xen's names and the Xen statements")
    func policyInfo() throws {
        let r = try xenCLI(["policy", "info", "--policy", xenPolicy])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Target:          xen (Xen FLASK; initial SIDs named as in Xen 4.17+)"))
        #expect(r.stdout.contains("sid xenboot system_u:system_r:xenboot_t"))
        #expect(r.stdout.contains("  pirqcon 33 system_u:object_r:nic_dev_t"))
        #expect(r.stdout.contains("  iomemcon 0xfebd0-0xfebdf system_u:object_r:nic_dev_t"))
        #expect(r.stdout.contains("  pcidevicecon 0xc8 system_u:object_r:nic_dev_t  # 0000:00:19.0"))
        let old = try xenCLI(["policy", "info", "--policy", xenPolicy, "--xen-version", "4.16"])
        #expect(old.stdout.contains("sid xen system_u:system_r:xenboot_t") && old.stdout.contains("which Xen 4.3-4.16 does not have"))
        let js = try xenCLI(["policy", "info", "--policy", xenDir + "/policy/svirt-xen-mls.24", "--json"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(js.stdout.utf8)) as? [String: Any])
        #expect(obj["target"] as? String == "xen" && obj["mls"] as? Bool == true && obj["version"] as? Int == 24)
        #expect((obj["xenStatements"] as? [String])?.contains("pirqcon 55 system_u:object_r:gpu_dev_t:s0") == true)
        #expect((obj["initialSIDs"] as? [[String: Any]])?.first?["name"] as? String == "xenboot")
        let bad = try xenCLI(["policy", "info", "--policy", xenPolicy, "--xen-version", "3.4"])
        #expect(bad.status != 0 && bad.stderr.contains("--xen-version"))
    }

    @Test("check-config passes the four label cases, prints their steps, and --lines matches the golden files")
    func checkConfig() throws {
        for path in xenCases {
            let r = try xenCLI(["xen", "check-config", "--policy", xenPolicy, path])
            #expect(r.status == 0, "\(path): \(r.stdout) \(r.stderr)")
            #expect(r.stdout.contains("create: dom0 → ") && r.stdout.contains("result:  allowed"))
            let lines = try xenCLI(["xen", "check-config", "--lines", "--policy", xenPolicy, path])
            let golden = try String(contentsOfFile: path.replacingOccurrences(of: ".cfg", with: ".steps"), encoding: .utf8)
            #expect(lines.stdout == golden)
        }
        let js = try xenCLI(["xen", "check-config", "--json", "--policy", xenPolicy, xenCases[1]])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(js.stdout.utf8)) as? [String: Any])
        #expect(obj["allowed"] as? Bool == true && obj["runningLabel"] as? String == "system_u:system_r:nomigrate_t")
    }

    @Test("check-config exits 1 on a denial with the reason and the fix, and 2 on a malformed file naming its line")
    func checkConfigFailures() throws {
        let dir = try makeTempDir("svirt-xen")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name = 'iso'\nseclabel = 'system_u:system_r:isolated_domU_t'\npci = [ '00:19.0' ]\n"
            .write(toFile: dir + "/iso.cfg", atomically: true, encoding: .utf8)
        let denied = try xenCLI(["xen", "check-config", "--policy", xenPolicy, dir + "/iso.cfg"])
        #expect(denied.status == 1)
        #expect(denied.stdout.contains("DENIED") && denied.stdout.contains("fix: allow isolated_domU_t nic_dev_t:resource use_iommu;"))
        try "name = 'x'\n\nseclabel = 'system_u:system_r:domU_t\n".write(toFile: dir + "/bad.cfg", atomically: true, encoding: .utf8)
        let bad = try xenCLI(["xen", "check-config", "--policy", xenPolicy, dir + "/bad.cfg"])
        #expect(bad.status == 2 && bad.stderr.contains("svirt xen check-config: \(dir)/bad.cfg:3: unterminated string"))
        let missing = try xenCLI(["xen", "check-config", "--policy", xenPolicy, dir + "/none.cfg"])
        #expect(missing.status == 2 && missing.stderr.contains("none.cfg: no such file"))
        let selinux = try xenCLI(["xen", "check-config", "--policy", repoRoot + "/Tests/Fixtures/policy/small.33", xenCases[0]])
        #expect(selinux.status != 0 && selinux.stderr.contains("not a Xen FLASK policy"))
        var damaged = [UInt8](try Data(contentsOf: URL(fileURLWithPath: xenPolicy)))
        damaged.removeLast(damaged.count / 2)
        try Data(damaged).write(to: URL(fileURLWithPath: dir + "/damaged.30"))
        let broken = try xenCLI(["xen", "check-config", "--policy", dir + "/damaged.30", xenCases[0]])
        #expect(broken.status != 0 && broken.stderr.contains("at byte"))
    }

    @Test("query applies _self for the same domain and _target for a device model, and checks devices")
    func query() throws {
        let same = try xenCLI(["xen", "query", "--policy", xenPolicy, "grant", xenCases[2], xenCases[2]])
        #expect(same.status == 0 && same.stdout.contains("domU_t_self") && same.stdout.contains("(the same domain)"))
        let other = try xenCLI(["xen", "query", "--policy", xenPolicy, "event", "system_u:system_r:isolated_domU_t", xenCases[0]])
        #expect(other.status == 1 && other.stdout.contains("result:  denied"))
        let dm = try xenCLI(["xen", "query", "--policy", xenPolicy, "--device-model", "memory", "system_u:system_r:dm_dom_t",
                             "system_u:system_r:domU_t"])
        #expect(dm.status == 0 && dm.stdout.contains("domU_t_target"))
        let dev = try xenCLI(["xen", "query", "--policy", xenPolicy, "--iommu", "off", "device", xenCases[0], "iomem:0xfebd0-0xfebd1"])
        #expect(dev.status == 0 && dev.stdout.contains("use_noiommu") && dev.stdout.contains("iomemcon 0xfebd0-0xfebdf"))
        let badDev = try xenCLI(["xen", "query", "--policy", xenPolicy, "device", xenCases[0], "usb:1"])
        #expect(badDev.status == 2 && badDev.stderr.contains("not a device kind"))
    }

    @Test("matrix prints text, JSON and an HTML page whose cells carry the reasons in title attributes")
    func matrix() throws {
        let text = try xenCLI(["xen", "matrix", "--policy", xenPolicy] + xenCases)
        #expect(text.status == 1 && text.stdout.contains("web1 → plain: grant map, event channel"))
        let dir = try makeTempDir("svirt-xen")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let html = try xenCLI(["xen", "matrix", "--html", "-o", dir + "/m.html", "--policy", xenPolicy] + xenCases)
        #expect(html.status == 1)
        let page = try String(contentsOfFile: dir + "/m.html", encoding: .utf8)
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.contains("<td class=\"open\" title=\"") && !page.contains("<script"))
        let js = try xenCLI(["xen", "matrix", "--json", "--policy", xenPolicy, xenCases[1], xenCases[0]])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(js.stdout.utf8)) as? [String: Any])
        #expect(obj["isolated"] as? Bool == true && (obj["pairs"] as? [Any])?.count == 2)
        #expect(js.status == 0)
    }

    @Test("label writes unique pairs into copies of the configs, reserves them in the registry, and emits the overlay")
    func label() throws {
        let dir = try makeTempDir("svirt-xen")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [String] = []
        for path in xenCases {
            let copy = dir + "/" + URL(fileURLWithPath: path).lastPathComponent
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            files.append(copy)
        }
        let state = dir + "/state"
        let r = try xenCLI(["xen", "label", "--policy", xenMLSPolicy, "--reserve", "--write", "--overlay", dir + "/mcs.cons",
                            "--exempt", "xenstore_t"] + files, state: state)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("overlay:   written to"))
        let listed = try xenCLI(["mcs", "list", "--json"], state: state)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(Set(rows.compactMap { $0["owner"] as? String }) == ["xen:web1", "xen:vault", "xen:plain", "xen:hvm1"])
        let levels = rows.compactMap { $0["level"] as? String }
        #expect(Set(levels).count == 4)
        let checked = try xenCLI(["xen", "check-config", "--policy", xenMLSPolicy] + files)
        #expect(checked.status == 0, "\(checked.stdout)")
        let overlay = try String(contentsOfFile: dir + "/mcs.cons", encoding: .utf8)
        #expect(overlay.contains("mlsconstrain event bind"))
        // A second run keeps the reserved levels.
        let again = try xenCLI(["xen", "label", "--policy", xenMLSPolicy, "--reserve", "--json"] + files, state: state)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        let domains = try #require(obj["domains"] as? [[String: Any]])
        #expect(domains.allSatisfy { $0["kept"] as? Bool == true })
        let noMLS = try xenCLI(["xen", "label", "--policy", xenPolicy] + files)
        #expect(noMLS.status == 2 && noMLS.stderr.contains("no MLS"))
    }
}
