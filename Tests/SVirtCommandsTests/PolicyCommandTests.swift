import Foundation
import Testing

let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()
    url.deleteLastPathComponent()
    url.deleteLastPathComponent()
    return url.path
}()

/// Runs svirt (CLISupport's runner) and returns status, stdout and stderr.
func policyCLI(_ args: [String], input: String? = nil) throws -> (Int32, String, String) {
    let r = try svirt(args, env: ["SVIRT_STATE_DIR": NSTemporaryDirectory() + "svirt-policy-cmd-tests"], stdin: input)
    return (r.status, r.stdout, r.stderr)
}

let builtIn = repoRoot + "/policy/builtin/svirt.33"
let fixture = repoRoot + "/Tests/Fixtures/policy/small.33"
let haveBinary = FileManager.default.isExecutableFile(atPath: svirtBinary)
let vm = "system_u:system_r:svirt_t:s0:c1,c2"

@Suite("svirt policy and explain commands", .enabled(if: haveBinary, "needs the svirt executable built"))
struct PolicyCommandTests {
    @Test("policy info prints the target, version, MLS and counts, and JSON with the same facts")
    func info() throws {
        let (status, out, _) = try policyCLI(["policy", "info", "--policy", fixture])
        #expect(status == 0)
        #expect(out.contains("Version:         33 (MLS enabled)"))
        #expect(out.contains("Handle unknown:  deny"))
        let (js, json, _) = try policyCLI(["policy", "info", "--policy", fixture, "--json", "--booleans"])
        #expect(js == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(obj?["version"] as? Int == 33)
        #expect((obj?["statistics"] as? [String: Any])?["typeBounds"] as? Int == 1)
        #expect((obj?["booleans"] as? [String: Bool])?["allow_exec"] == true)
    }

    @Test("policy check allows a VM its own image and exits 0")
    func allowed() throws {
        let (status, out, _) = try policyCLI(["policy", "check", "--policy", builtIn, vm,
                                          "system_u:object_r:svirt_image_t:s0:c1,c2", "file", "read", "write"])
        #expect(status == 0)
        #expect(out.contains("result:  ALLOW"))
    }

    @Test("policy check names the MCS constraint for another VM's image and exits 1")
    func constraint() throws {
        let (status, out, _) = try policyCLI(["policy", "check", "--policy", builtIn, vm,
                                          "system_u:object_r:svirt_image_t:s0:c3,c4", "file", "read"])
        #expect(status == 1)
        #expect(out.contains("result:  CONSTRAINT"))
        #expect(out.contains("mlsconstrain"))
        #expect(out.contains("false: h1 dom h2"))
    }

    @Test("policy check --bool overrides a boolean without another policy file")
    func booleanOverride() throws {
        let args = ["policy", "check", "--policy", builtIn, vm, vm, "process", "execmem"]
        let (before, out1, _) = try policyCLI(args)
        #expect(before == 1 && out1.contains("result:  BOOLEAN") && out1.contains("setsebool -P virt_use_execmem on"))
        let (after, out2, _) = try policyCLI(args + ["--bool", "virt_use_execmem=1"])
        #expect(after == 0 && out2.contains("result:  ALLOW"))
        let (bad, _, err) = try policyCLI(args + ["--bool", "no_such_bool=1"])
        #expect(bad != 0 && err.contains("no_such_bool"))
    }

    @Test("policy check --json gives a reason per permission")
    func json() throws {
        let (_, out, _) = try policyCLI(["policy", "check", "--policy", builtIn, "--json", vm,
                                     "system_u:object_r:virt_image_t:s0", "file", "read", "open"])
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(obj?["result"] as? String == "TERULE")
        let perms = obj?["permissions"] as? [[String: Any]]
        #expect(perms?.map { $0["reason"] as? String } == ["te", "te"])
    }

    @Test("policy check --batch prints RESULT<TAB>query per line, from a file or standard input")
    func batch() throws {
        let queries = """
            \(vm) system_u:object_r:svirt_image_t:s0:c1,c2 file read write
            \(vm) system_u:object_r:svirt_image_t:s0:c3,c4 file read write
            # a comment
            \(vm) system_u:object_r:virt_image_t:s0 file read
            \(vm) \(vm) process execmem
            system_u:system_r:svirt_tcg_t:s0:c5,c6 system_u:system_r:svirt_tcg_t:s0:c5,c6 process execmem
            """
        let (status, out, _) = try policyCLI(["policy", "check", "--policy", builtIn, "--batch", "-"], input: queries)
        #expect(status == 0)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: "\t").first.map(String.init) ?? "" }
                == ["ALLOW", "CONSTRAINT", "TERULE", "BOOLEAN", "ALLOW"])
        #expect(lines[0] == "ALLOW\t\(vm) system_u:object_r:svirt_image_t:s0:c1,c2 file read write")
        let (bad, badOut, _) = try policyCLI(["policy", "check", "--policy", builtIn, "--batch", "-"],
                                         input: "\(vm) nobody_u:object_r:x_t:s0 file read\n")
        #expect(bad == 2 && badOut.hasPrefix("ERROR\t"))
    }

    @Test("a damaged policy file is refused with its name and the byte offset")
    func damaged() throws {
        let path = NSTemporaryDirectory() + "damaged-\(UUID().uuidString).33"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture)))
        bytes.removeLast(100)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, _, err) = try policyCLI(["policy", "info", "--policy", path])
        #expect(status != 0)
        #expect(err.contains(path) && err.contains("at byte"))
    }

    @Test("explain reads AVC lines and gives the boolean, relabel and MCS explanations")
    func explain() throws {
        let log = """
            type=AVC msg=audit(1326028680.405:367): avc:  denied  { execmem } for  pid=5404 comm="qemu-system-x86" \
            scontext=\(vm) tcontext=\(vm) tclass=process permissive=0
            type=SYSCALL msg=audit(1326028680.405:367): arch=c000003e syscall=9 success=no
            type=AVC msg=audit(1.2:3): avc:  denied  { read write } for  pid=1 comm="qemu" name="disk.img" \
            scontext=\(vm) tcontext=system_u:object_r:virt_image_t:s0 tclass=file permissive=0
            type=AVC msg=audit(1.2:4): avc:  denied  { read } for  pid=1 comm="qemu" path="/images/b.img" \
            scontext=\(vm) tcontext=system_u:object_r:svirt_image_t:s0:c3,c4 tclass=file permissive=0
            """
        let (status, out, _) = try policyCLI(["explain", "--policy", builtIn, "-"], input: log)
        #expect(status == 0)
        #expect(out.contains("fix: setsebool -P virt_use_execmem on"))
        #expect(out.contains("fix: chcon -t svirt_image_t disk.img"))
        #expect(out.contains("the MCS categories differ: this process may not touch another VM's files"))
        #expect(out.components(separatedBy: "line ").count - 1 == 3)
    }

    @Test("explain reads a serial console's CRLF (and CR) lines as separate denials, not one chimeric record")
    func explainCRLF() throws {
        let denials = (0..<47).map { i in
            "[  \(100 + i).5] audit: type=1400 audit(1700000000.\(i):\(i)): avc:  denied  { read } for  pid=\(i) comm=\"qemu\" "
                + "name=\"d\\(i).img\" scontext=\(vm) tcontext=system_u:object_r:svirt_image_t:s0:c3,c4 tclass=file permissive=0"
        }
        for ending in ["\r\n", "\r"] {
            let (status, out, err) = try policyCLI(["explain", "--policy", builtIn, "--json", "-"],
                                                   input: denials.joined(separator: ending) + ending)
            #expect(status == 0, "\(err)")
            let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]
            #expect(rows?.count == 47)
            #expect(rows?.compactMap { $0["line"] as? Int } == Array(1...47))
            #expect(rows?.allSatisfy { ($0["tclass"] as? String) == "file" && ($0["result"] as? String) == "CONSTRAINT" } == true)
        }
    }

    @Test("policy check --batch reads CRLF lines")
    func batchCRLF() throws {
        let queries = "\(vm) system_u:object_r:svirt_image_t:s0:c1,c2 file read write\r\n# c\r\n\(vm) system_u:object_r:virt_image_t:s0 file read\r\n"
        let (status, out, _) = try policyCLI(["policy", "check", "--policy", builtIn, "--batch", "-"], input: queries)
        #expect(status == 0)
        #expect(out.split(separator: "\n").map { $0.split(separator: "\t").first.map(String.init) ?? "" } == ["ALLOW", "TERULE"])
    }

    @Test("explain reports a line cut short by a console (tclass=fi) as unknown to the policy, not allowed",
          .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/policy/policy.33"), "needs selinux-policy-default"))
    func explainTruncated() throws {
        let log = """
            audit: type=1400 audit(1700000000.1:1): avc:  denied  { read } for  pid=1 comm="qemu" name="x" scontext=\(vm) tcontext=system_u:object_r:svirt_image_t:s0:c3,c4 tclass=fi
            audit: type=1400 audit(1700000000.2:2): avc:  denied  { mount } for  pid=1 comm="qemu" scontext=\(vm) tcontext=system_u:object_r:fs_t:s0 tclass=filesyst

            """
        let (_, out, err) = try policyCLI(["explain", "--policy", "/etc/selinux/default/policy/policy.33", "-"], input: log)
        #expect(!out.contains("ALLOW"), "\(out)\(err)")
        #expect(out.contains("UNKNOWN: the class 'fi' is not defined in this policy"), "\(out)")
        #expect(out.contains("UNKNOWN: the class 'filesyst' is not defined in this policy"), "\(out)")
    }
}
