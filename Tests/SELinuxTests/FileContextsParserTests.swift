import Testing
@testable import SELinux

@Suite("file_contexts parser") struct FileContextsParserTests {
    func parse(_ text: String, ignoreErrors: Bool = false) throws -> FileContexts {
        try FileContexts(parsing: text, path: "fc", ignoreErrors: ignoreErrors)
    }

    func error(_ text: String) -> SELinuxError? {
        do {
            _ = try parse(text)
            return nil
        } catch let e as SELinuxError {
            return e
        } catch {
            return nil
        }
    }

    @Test("lines have an expression, an optional file type and a context; comments and blank lines are skipped")
    func fields() throws {
        let fc = try parse("""
            # a comment
               # an indented comment

            /srv(/.*)?\tsystem_u:object_r:var_t:s0
            /srv/vm\t-d\tsystem_u:object_r:virt_image_t:s0
            /srv/x  --  <<none>>  # trailing comment
            """)
        #expect(fc.count == 3)
        let s = fc.specifications
        #expect(s[0].regex == "/srv(/.*)?")
        #expect(s[0].fileType == nil)
        #expect(s[0].context?.type == "var_t")
        #expect(s[0].line == 4)
        #expect(s[1].fileType == .directory)
        #expect(s[1].rawContext == "system_u:object_r:virt_image_t:s0")
        #expect(s[2].fileType == .regular)
        #expect(s[2].context == nil)
        #expect(s[2].rawContext == "<<none>>")
        #expect(s[2].file == "fc")
    }

    @Test("every file type field is read, and an unknown one is an error at its column")
    func fileTypes() throws {
        let fc = try parse(["--", "-d", "-l", "-p", "-s", "-c", "-b"].map { "/a \($0) u:r:t:s0" }.joined(separator: "\n"))
        #expect(fc.specifications.map(\.fileType) == [.regular, .directory, .symbolicLink, .namedPipe, .socket,
                                                      .characterDevice, .blockDevice])
        let e = try #require(error("/ok u:r:t:s0\n/a  -x  u:r:t:s0"))
        #expect(e.code == .invalidFileType)
        #expect(e.file == "fc")
        #expect(e.line == 2)
        #expect(e.column == 5)
        #expect(e.message.hasPrefix("fc:2:5: unknown file type '-x'"))
    }

    @Test("an unbalanced bracket or parenthesis is an error that points at it")
    func unbalanced() throws {
        let bracket = try #require(error("/a/[bc u:r:t:s0"))
        #expect(bracket.code == .invalidRegularExpression)
        #expect(bracket.line == 1)
        #expect(bracket.column == 4)
        #expect(bracket.message.contains("missing terminating ']'"))

        let open = try #require(error("\n  /a(b u:r:t:s0"))
        #expect(open.line == 2)
        #expect(open.column == 5)
        #expect(open.message.contains("missing closing parenthesis"))

        let close = try #require(error("/a)b u:r:t:s0"))
        #expect(close.column == 3)
        #expect(close.message.contains("unmatched closing parenthesis"))
    }

    @Test("a quantifier with nothing to repeat, a bad count and unsupported PCRE syntax are errors")
    func badQuantifiersAndFeatures() throws {
        #expect(error("*a u:r:t:s0")?.column == 1)
        #expect(error("/a|+b u:r:t:s0")?.column == 4)
        #expect(error("/a{3,1} u:r:t:s0")?.message.contains("out of order") == true)
        #expect(error("/a** u:r:t:s0")?.column == 4)
        #expect(error("/a*+ u:r:t:s0")?.message.contains("possessive") == true)
        #expect(error("/(?=a) u:r:t:s0")?.message.contains("outside the file_contexts dialect") == true)
        #expect(error("/a\\1 u:r:t:s0")?.message.contains("back reference") == true)
        #expect(error("/a\\bc u:r:t:s0")?.code == .invalidRegularExpression)
        #expect(error("/a\\y u:r:t:s0")?.message.contains("unrecognized escape") == true)
        #expect(error("/[z-a] u:r:t:s0")?.message.contains("range out of order") == true)
        #expect(error("/[[:nope:]] u:r:t:s0")?.message.contains("unknown POSIX class") == true)
        #expect(error("/[:alpha:] u:r:t:s0")?.message.contains("inside a bracket class") == true)
    }

    @Test("an invalid context is an error at the context's column, with the context parser's reason")
    func badContext() throws {
        let e = try #require(error("/a\tu:r:t:s0\n/b\t--\tuser_u:role_r"))
        // The column is where the context parser found the problem: the context ends after the role.
        #expect(e.line == 2)
        #expect(e.column == 20)
        #expect(e.message.hasPrefix("fc:2:20: invalid context 'user_u:role_r'"))
    }

    @Test("a line without a context, with an unexpected fourth field or with non-ASCII bytes is an error")
    func badLines() throws {
        #expect(error("/a")?.code == .invalidFileContexts)
        #expect(error("/a")?.column == 3)
        #expect(error("/a -- u:r:t:s0 extra")?.column == 16)
        #expect(error("/a -- u:r:t:s0 #ok") == nil)
        let e = try #require(error("/caf\u{e9} u:r:t:s0"))
        #expect(e.column == 5)
        #expect(e.message.contains("non-ASCII"))
        // Three fields where the context is in the type's place: libselinux reads the middle one as a type.
        #expect(error("/a u:r:t:s0 u:r:t:s0")?.code == .invalidFileType)
    }

    @Test("opening fails on the first bad line, and with ignoreErrors each bad line is reported and skipped")
    func ignoreErrors() throws {
        let text = "/a u:r:a_t:s0\n/b( u:r:b_t:s0\n/c -q u:r:c_t:s0\n/d u:r:d_t:s0"
        let first = try #require(error(text))
        #expect(first.line == 2)
        let fc = try parse(text, ignoreErrors: true)
        #expect(fc.specifications.map(\.regex) == ["/a", "/d"])
        #expect(fc.skipped.map(\.line) == [2, 3])
        #expect(fc.lookup("/d").context?.type == "d_t")
        #expect(fc.lookup("/b(").context == nil)
    }

    @Test("a NUL ends a line's text and a carriage return separates fields")
    func nulAndCarriageReturn() throws {
        let fc = try parse("/a u:r:a_t:s0\0 garbage (\n/b u:r:b_t:s0\r\n")
        #expect(fc.count == 2)
        #expect(fc.specifications[1].rawContext == "u:r:b_t:s0")
    }

    @Test("libselinux's meta character test decides which lines count as literal paths")
    func metaCharacters() throws {
        let fc = try parse("""
            /usr/bin/ls u:r:t:s0
            /usr/lib/a\\+b u:r:t:s0
            /usr/lib/a+b u:r:t:s0
            /usr/(.*/)?lib u:r:t:s0
            /usr/x\\.y u:r:t:s0
            """)
        #expect(fc.specifications.map(\.hasMetaCharacters) == [false, false, true, true, false])
        #expect(fc.specifications.map(\.fixedPrefixLength) == [11, 13, 10, 5, 9])
    }

    @Test("alias files read ALIAS TARGET lines; a line without a target is an error with its file and line")
    func aliases() throws {
        var skipped: [SELinuxError] = []
        let rules = try FileContextsAliases.parse(Array("# c\n\n /var/run  /run \n/lib64 /usr/lib # x\n".utf8),
                                                  path: "fc.subs_dist", skipped: &skipped)
        #expect(rules.map(\.alias) == ["/var/run", "/lib64"])
        #expect(rules.map(\.target) == ["/run", "/usr/lib"])
        #expect(rules.map(\.line) == [3, 4])
        do {
            _ = try FileContextsAliases.parse(Array("/a /b\n/c\n".utf8), path: "fc.subs", skipped: &skipped)
            Issue.record("a line without a target was accepted")
        } catch let e as SELinuxError {
            #expect(e.file == "fc.subs")
            #expect(e.line == 2)
            #expect(e.code == .invalidFileContexts)
        }
    }

    @Test("the loader reads the main file with .homedirs, .local, .subs_dist and .subs, and needs the main file")
    func loader() throws {
        let files: [String: String] = [
            "/p/fc": "/a(/.*)? u:r:main_t:s0",
            "/p/fc.homedirs": "/a/h u:r:home_t:s0",
            "/p/fc.local": "/a/l u:r:local_t:s0",
            "/p/fc.subs_dist": "/d /a",
            "/p/fc.subs": "/s /a",
        ]
        let fc = try FileContexts.load(path: "/p/fc") { files[$0].map { Array($0.utf8) } }
        #expect(fc.files == ["/p/fc", "/p/fc.homedirs", "/p/fc.local", "/p/fc.subs_dist", "/p/fc.subs"])
        #expect(fc.context(for: "/a/h")?.type == "home_t")
        #expect(fc.context(for: "/a/l")?.type == "local_t")
        #expect(fc.context(for: "/d/x")?.type == "main_t")
        #expect(fc.context(for: "/s/l")?.type == "local_t")
        #expect(throws: SELinuxError.self) { try FileContexts.load(path: "/p/none") { files[$0].map { Array($0.utf8) } } }
    }
}
