import Testing
@testable import SELinux

/// Text from a serial console or a Windows editor ends its lines with CRLF, which Swift reads as one Character that
/// is not "\n"; a lone CR ends a line too. Every reader must see the same lines as with LF.
@Suite("CRLF and CR line endings") struct LineEndingTests {
    @Test("textLines splits on LF, CRLF and a lone CR, and counts lines as an editor does")
    func textLines() {
        #expect("a\r\nb\r\nc".textLines() == ["a", "b", "c"])
        #expect("a\rb\nc\r\n".textLines() == ["a", "b", "c", ""])
        #expect("a\r\n\r\nb".textLines() == ["a", "", "b"])
        #expect("a\r\n\r\nb".nonEmptyTextLines() == ["a", "b"])
        // Only LF, CRLF and CR end a line; a form feed stays in it.
        #expect("a\u{0C}b\nc".textLines() == ["a\u{0C}b", "c"])
        #expect("".textLines() == [""])
    }

    @Test("virtual_domain_context and /etc/selinux/config with CRLF read as with LF, with the same line numbers")
    func contextsFiles() throws {
        let contexts = try ContextsConfiguration.parseContextsFile(
            "# comment\r\nsystem_u:system_r:svirt_t:s0\r\nsystem_u:system_r:svirt_tcg_t:s0\r\n", path: "virtual_domain_context")
        #expect(contexts.map { $0.0.type } == ["svirt_t", "svirt_tcg_t"])
        #expect(contexts.map(\.1) == [2, 3])
        let config = try SELinuxConfigFile.parse("SELINUX=permissive\r\nSELINUXTYPE=default\r\n", path: "config")
        #expect(config.mode == .permissive)
        #expect(config.policyType == "default")
        #expect(config.policyTypeLine == 2)
        let cr = try SELinuxConfigFile.parse("SELINUX=enforcing\rSELINUXTYPE=mls\r", path: "config")
        #expect(cr.mode == .enforcing && cr.policyType == "mls")
    }

    @Test("file_contexts, .homedirs and .subs with CRLF or CR give the labels LF gives, and errors the same line")
    func fileContexts() throws {
        for ending in ["\n", "\r\n", "\r"] {
            func t(_ lines: [String]) -> String { lines.joined(separator: ending) + ending }
            let f = try FileContexts(
                main: FileContextsSource(path: "fc", text: t(["# c", "/srv(/.*)?\tu:r:srv_t:s0", "/srv/vm(/.*)?  u:r:vm_t:s0", "/dev/x -c <<none>>"])),
                homedirs: FileContextsSource(path: "fc.homedirs", text: t(["/home/h(/.*)?\tu:r:home_t:s0"])),
                localAliases: FileContextsSource(path: "fc.subs", text: t(["/data /srv"])))
            func type(_ path: String, _ ft: FileType? = nil) -> String? {
                if case .labeled(let s) = f.lookup(path, fileType: ft) { return s.context?.type }
                return nil
            }
            let shown = ending.unicodeScalars.map { $0.value == 13 ? "CR" : "LF" }.joined()
            #expect(type("/srv/a") == "srv_t", "\(shown)")
            #expect(type("/srv/vm/disk") == "vm_t", "\(shown)")
            #expect(type("/data/vm/disk") == "vm_t", "\(shown)")
            #expect(type("/home/h/x") == "home_t", "\(shown)")
            if case .noLabel = f.lookup("/dev/x", fileType: .characterDevice) {} else { Issue.record("\(shown): /dev/x is not <<none>>") }
            let bad = #expect(throws: SELinuxError.self) {
                try FileContexts(parsing: t(["/a u:r:a_t:s0", "/b u:r:b_t:s0 extra junk"]), path: "fc")
            }
            #expect(bad?.line == 2, "\(shown): \(bad?.message ?? "")")
        }
    }

    @Test("an AVC line that keeps a CR still has tclass=file")
    func avcTrailingCR() throws {
        let r = try #require(try AVCRecord.parse("audit: type=1400 audit(1.2:3): avc:  denied  { read } for pid=1 "
                                                 + "scontext=u:r:a_t:s0 tcontext=u:object_r:b_t:s0 tclass=file\r"))
        #expect(r.tclass == "file")
    }
}
