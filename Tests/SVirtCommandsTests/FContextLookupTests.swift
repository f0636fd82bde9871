import Foundation
import Testing

@Suite("svirt fcontext lookup", .enabled(if: CommandRunner.available, "needs the built svirt executable"))
struct FContextLookupTests {
    let fileContexts = """
        /srv(/.*)?\tsystem_u:object_r:var_t:s0
        /srv/vm(/.*)?\tsystem_u:object_r:virt_image_t:s0
        /srv/vm/iso\t-d\tsystem_u:object_r:virt_content_t:s0
        /srv/tmp/.*\t<<none>>
        """

    @Test("PATH arguments print CONTEXT<TAB>PATH<TAB>MODE, with <<none>> for no label")
    func paths() throws {
        let dir = try TemporaryDirectory()
        let fc = try dir.write("file_contexts", fileContexts)
        let r = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "/srv/vm/a.img", "/srv/tmp/x", "/etc", "rel"])
        #expect(r.status == 0)
        #expect(r.text == """
            system_u:object_r:virt_image_t:s0\t/srv/vm/a.img\t0
            <<none>>\t/srv/tmp/x\t0
            <<none>>\t/etc\t0
            <<none>>\trel\t0

            """)
    }

    @Test("--mode restricts the lookup to a file type and is printed in the MODE column")
    func mode() throws {
        let dir = try TemporaryDirectory()
        let fc = try dir.write("file_contexts", fileContexts)
        let asDir = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--mode", "-d", "/srv/vm/iso"])
        #expect(asDir.text == "system_u:object_r:virt_content_t:s0\t/srv/vm/iso\t-d\n")
        let asFile = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--mode", "--", "/srv/vm/iso"])
        #expect(asFile.text == "system_u:object_r:virt_image_t:s0\t/srv/vm/iso\t--\n")
        let bad = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--mode", "-q", "/srv"])
        #expect(bad.status != 0)
    }

    @Test("--batch reads PATH [MODE] lines from stdin, paths as raw bytes and with spaces")
    func batch() throws {
        let dir = try TemporaryDirectory()
        let fc = try dir.write("file_contexts", fileContexts)
        var input = Array("/srv/vm/iso -d\n/srv/vm/iso --\n/srv/vm/with space 0\n/srv/x\n\n".utf8)
        input += Array("/srv/vm/".utf8) + [0xFF, 0xFE] + Array(" --\n".utf8)
        let r = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--batch", "-"], stdin: input)
        #expect(r.status == 0)
        var expected = Array("""
            system_u:object_r:virt_content_t:s0\t/srv/vm/iso\t-d
            system_u:object_r:virt_image_t:s0\t/srv/vm/iso\t--
            system_u:object_r:virt_image_t:s0\t/srv/vm/with space\t0
            system_u:object_r:var_t:s0\t/srv/x\t0

            """.utf8)
        expected += Array("system_u:object_r:virt_image_t:s0\t/srv/vm/".utf8) + [0xFF, 0xFE] + Array("\t--\n".utf8)
        #expect(r.stdout == expected)
    }

    @Test("a bad line fails the command with file, line and column; --ignore-errors reports it and goes on")
    func errors() throws {
        let dir = try TemporaryDirectory()
        let fc = try dir.write("file_contexts", fileContexts + "\n/srv/[bad\tsystem_u:object_r:var_t:s0\n")
        let failed = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "/srv"])
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("\(fc):5:6: invalid regular expression '/srv/[bad'"))
        let skipped = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--ignore-errors", "/srv"])
        #expect(skipped.status == 0)
        #expect(skipped.stderr.contains("skipped \(fc):5:6"))
        #expect(skipped.text == "system_u:object_r:var_t:s0\t/srv\t0\n")
    }

    @Test("--explain names the line that decided")
    func explain() throws {
        let dir = try TemporaryDirectory()
        let fc = try dir.write("file_contexts", fileContexts)
        let r = try CommandRunner.run(["fcontext", "lookup", "--file", fc, "--explain", "/srv/vm/a"])
        #expect(r.text == "system_u:object_r:virt_image_t:s0\t/srv/vm/a\t0\t\(fc):2\t/srv/vm(/.*)?\n")
    }
}
