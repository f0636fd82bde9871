import Testing
@testable import SELinux

/// Lookups with libselinux's rules. The expected answers follow from libselinux's `label_file.c` and were
/// checked against `selabel_lookup_raw` (libselinux 3.4); `FileContextsOracleTests` compares whole file systems.
@Suite("file_contexts lookups") struct FileContextsLookupTests {
    func fc(_ text: String, subsDist: String? = nil, subs: String? = nil, homedirs: String? = nil,
            local: String? = nil) throws -> FileContexts {
        func source(_ suffix: String, _ t: String?) -> FileContextsSource? {
            t.map { FileContextsSource(path: "fc\(suffix)", text: $0) }
        }
        return try FileContexts(main: FileContextsSource(path: "fc", text: text), homedirs: source(".homedirs", homedirs),
                                local: source(".local", local), distributionAliases: source(".subs_dist", subsDist),
                                localAliases: source(".subs", subs))
    }

    func type(_ f: FileContexts, _ path: String, _ t: FileType? = nil) -> String {
        switch f.lookup(path, fileType: t) {
        case .labeled(let s): return s.context?.type ?? "?"
        case .noLabel: return "<<none>>"
        case .noMatch: return "-"
        }
    }

    @Test("the last matching expression wins")
    func lastExpressionWins() throws {
        let f = try fc("""
            /.*\tu:r:default_t:s0
            /srv(/.*)?\tu:r:srv_t:s0
            /srv/vm(/.*)?\tu:r:vm_t:s0
            /srv/.*\tu:r:late_t:s0
            """)
        #expect(type(f, "/etc") == "default_t")
        #expect(type(f, "/srv") == "srv_t")
        #expect(type(f, "/srv/vm/a.img") == "late_t")
    }

    @Test("a literal path beats every expression, even one later in the file")
    func literalBeatsExpressions() throws {
        let f = try fc("""
            /srv/vm\tu:r:literal_t:s0
            /srv/vm(/.*)?\tu:r:vm_t:s0
            /srv/v[m]\tu:r:class_t:s0
            """)
        #expect(type(f, "/srv/vm") == "literal_t")
        #expect(type(f, "/srv/vm/x") == "vm_t")
    }

    @Test("between literal paths, and between lines of different files, the later line wins")
    func laterLiteralWins() throws {
        let f = try fc("/a\tu:r:first_t:s0\n/a\tu:r:second_t:s0\n/b(/.*)?\tu:r:main_t:s0",
                       homedirs: "/b/h(/.*)?\tu:r:home_t:s0", local: "/b(/.*)?\tu:r:local_t:s0\n/a\tu:r:local_a_t:s0")
        #expect(type(f, "/a") == "local_a_t")
        // .local comes after .homedirs, so its broader expression wins over the .homedirs one.
        #expect(type(f, "/b/h/x") == "local_t")
    }

    @Test("a line restricted to a file type matches only that type, and a lookup without a type matches every line")
    func fileTypes() throws {
        let f = try fc("""
            /d(/.*)?\tu:r:any_t:s0
            /d/x\t-d\tu:r:dir_t:s0
            /d/x\t--\tu:r:file_t:s0
            /d/y\t-l\tu:r:link_t:s0
            """)
        #expect(type(f, "/d/x", .directory) == "dir_t")
        #expect(type(f, "/d/x", .regular) == "file_t")
        #expect(type(f, "/d/x", .socket) == "any_t")
        #expect(type(f, "/d/x") == "file_t")
        #expect(type(f, "/d/y", .regular) == "any_t")
        #expect(type(f, "/d/y", .symbolicLink) == "link_t")
    }

    @Test("<<none>> is a match that gives no label, and hides earlier lines")
    func none() throws {
        let f = try fc("/.*\tu:r:default_t:s0\n/tmp/.*\t<<none>>")
        #expect(type(f, "/tmp/x") == "<<none>>")
        #expect(f.context(for: "/tmp/x") == nil)
        #expect(f.lookup("/tmp/x").rawContext == "<<none>>")
        #expect(f.lookup("/tmp/x").specification?.line == 2)
    }

    @Test("runs of slashes collapse and one trailing slash is dropped; dot components are not resolved")
    func cleaning() throws {
        let f = try fc("""
            /\tu:r:root_t:s0
            /a\tu:r:a_t:s0
            /a/b\tu:r:b_t:s0
            /a/\\.\\./b\tu:r:dots_t:s0
            /t/\tu:r:slash_t:s0
            """)
        #expect(type(f, "/") == "root_t")
        #expect(type(f, "//") == "root_t")
        #expect(type(f, "/a/") == "a_t")
        #expect(type(f, "//a//") == "a_t")
        #expect(type(f, "/a///b") == "b_t")
        #expect(type(f, "/a/../b") == "dots_t")
        // A trailing slash is dropped before matching, so a line ending in '/' never matches.
        #expect(type(f, "/t/") == "-")
    }

    @Test("relative and empty paths get no label")
    func relative() throws {
        let f = try fc(".*\tu:r:any_t:s0\n/.*\tu:r:abs_t:s0")
        #expect(f.lookup("usr/bin") == .noMatch)
        #expect(f.lookup("") == .noMatch)
        #expect(type(f, "/usr/bin") == "abs_t")
    }

    @Test("paths are bytes: non-UTF-8 names match '.' and negated classes, and a NUL ends the path")
    func bytes() throws {
        let f = try fc("/n/[^/]+\tu:r:name_t:s0\n/n/a\\w\tu:r:word_t:s0")
        #expect(f.lookup(path: Array("/n/".utf8) + [0xE9, 0xFF]).context?.type == "name_t")
        #expect(f.lookup(path: Array("/n/a".utf8) + [0xE9]).context?.type == "name_t")
        #expect(f.lookup(path: Array("/n/ab".utf8)).context?.type == "word_t")
        #expect(f.lookup(path: Array("/n/ab".utf8) + [0] + Array("/more".utf8)).context?.type == "word_t")
    }

    @Test("'.' matches a newline, '$' also matches before a final newline, and '^' only at the start")
    func pcreNewlineAndAnchors() throws {
        let f = try fc("""
            /nl/b.*\tu:r:dot_t:s0
            /nl/a\tu:r:lit_t:s0
            /q/^x\tu:r:caret_t:s0
            /r/x$\tu:r:dollar_t:s0
            """)
        #expect(type(f, "/nl/b\nx") == "dot_t")
        #expect(type(f, "/nl/a\n") == "lit_t")
        #expect(type(f, "/nl/a\n\n") == "-")
        #expect(type(f, "/q/^x") == "-")
        #expect(type(f, "/r/x") == "dollar_t")
        #expect(type(f, "/r/x\n") == "dollar_t")
    }

    @Test("a top-level '|' splits libselinux's anchors: the first branch matches a prefix, the last a suffix")
    func topLevelAlternation() throws {
        let f = try fc("/a|/b\tu:r:alt_t:s0\n/.*\tu:r:default_t:s0\n/z\tu:r:z_t:s0")
        // Later lines win, so put the alternation last to see it.
        let g = try fc("/.*\tu:r:default_t:s0\n/a|/b\tu:r:alt_t:s0")
        #expect(type(g, "/a") == "alt_t")
        #expect(type(g, "/axyz") == "alt_t")
        #expect(type(g, "/x/b") == "alt_t")
        #expect(type(g, "/x/b/c") == "default_t")
        #expect(type(f, "/z") == "z_t")
    }

    @Test("a line with a stem is tried only on paths with the same stem, compared as raw text")
    func stems() throws {
        let f = try fc("""
            /.*\tu:r:default_t:s0
            /a\\-b/c\tu:r:escaped_t:s0
            /usr/?x\tu:r:optional_slash_t:s0
            /usr/a|/b\tu:r:alt_t:s0
            """)
        // libselinux compares the stem text '/a\-b' with the path's stem '/a-b': no match.
        #expect(type(f, "/a-b/c") == "default_t")
        #expect(type(f, "/usr/x") == "optional_slash_t")
        // '/usrx' matches the expression, but it has no stem, so libselinux never tries the line.
        #expect(type(f, "/usrx") == "default_t")
        #expect(type(f, "/usr/abc") == "alt_t")
        #expect(type(f, "/usr/q/b") == "alt_t")
        #expect(type(f, "/x/b") == "default_t")
    }

    @Test("the dialect: classes, ranges, POSIX classes, counted repetition, groups and escapes")
    func dialect() throws {
        let f = try fc("""
            /c/[a-c0-2]+\tu:r:range_t:s0
            /c/[^/a]\tu:r:negated_t:s0
            /c/[]x]\tu:r:bracket_t:s0
            /p/[[:digit:]]{2,3}\tu:r:count_t:s0
            /p/x{2}\tu:r:exact_t:s0
            /p/y{2,}\tu:r:least_t:s0
            /p/z{,2}\tu:r:brace_t:s0
            /g/(ab|cd)*e\tu:r:group_t:s0
            /g/(?:x|y)?z\tu:r:nocap_t:s0
            /e/\\d\\s\\x41\\.\tu:r:escape_t:s0
            /e/a+?b\tu:r:lazy_t:s0
            """)
        #expect(type(f, "/c/ab12") == "range_t")
        #expect(type(f, "/c/ad") == "-")
        #expect(type(f, "/c/]") == "bracket_t")
        #expect(type(f, "/c/q") == "negated_t")
        #expect(type(f, "/c/a") == "range_t")
        #expect(type(f, "/p/12") == "count_t")
        #expect(type(f, "/p/1234") == "-")
        #expect(type(f, "/p/xx") == "exact_t")
        #expect(type(f, "/p/xxx") == "-")
        #expect(type(f, "/p/yyyy") == "least_t")
        #expect(type(f, "/p/y") == "-")
        // PCRE2 10.42 reads '{,2}' as literal text.
        #expect(type(f, "/p/z{,2}") == "brace_t")
        #expect(type(f, "/p/zz") == "-")
        #expect(type(f, "/g/abcdabe") == "group_t")
        #expect(type(f, "/g/abce") == "-")
        #expect(type(f, "/g/z") == "nocap_t")
        #expect(type(f, "/e/7 A.") == "escape_t")
        #expect(type(f, "/e/aaab") == "lazy_t")
    }

    @Test("aliases rewrite whole leading components, and the last matching alias line wins")
    func aliases() throws {
        let f = try fc("/run(/.*)?\tu:r:run_t:s0\n/var(/.*)?\tu:r:var_t:s0\n/usr/lib(/.*)?\tu:r:lib_t:s0\n/\tu:r:root_t:s0",
                       subsDist: "/var/run /run\n/lib64 /var\n/lib64 /usr/lib\n/al /")
        #expect(type(f, "/var/run") == "run_t")
        #expect(type(f, "/var/run/x") == "run_t")
        #expect(type(f, "/var/runx") == "var_t")
        #expect(type(f, "/lib64/ld.so") == "lib_t")
        #expect(type(f, "//var//run//") == "run_t")
        // A target of '/' takes the '/' after the alias with it.
        #expect(type(f, "/al") == "root_t")
        #expect(type(f, "/al/run") == "run_t")
        #expect(f.aliases.rewrite("/var/run/a") == "/run/a")
        #expect(f.aliases.rewrite("/var/runx") == nil)
    }

    @Test(".subs rewrites first and .subs_dist then rewrites its result, once each, without cleaning again")
    func aliasOrder() throws {
        let f = try fc("/t/\tu:r:slash_t:s0\n/k\tu:r:k_t:s0\n/final(/.*)?\tu:r:final_t:s0",
                       subsDist: "/mid /final\n/v3 /t/\n/v5 //k", subs: "/w /mid\n/w2 /v3")
        #expect(type(f, "/w/x") == "final_t")
        // The trailing slash is dropped before the aliases, so an alias can produce one that stays.
        #expect(type(f, "/v3") == "slash_t")
        #expect(type(f, "/v5") == "-")
        // .subs gives /v3, and .subs_dist rewrites it once more.
        #expect(type(f, "/w2") == "slash_t")
    }

    @Test("a private matcher and the shared lookup agree, and a matcher reuses the previous path's prefix correctly")
    func matchers() throws {
        let f = try fc("/a(/.*)?\tu:r:a_t:s0\n/a/b/c\tu:r:c_t:s0\n/a/b//c\tu:r:never_t:s0", subsDist: "/x /a/b")
        let m = f.makeMatcher()
        let paths = ["/a/b/c", "/a/b/cd", "/a/b/c", "/a/b//c", "/a/b/c", "/x/c", "/x//c", "/a/b/c/", "/a/b/c\n", "/a"]
        for p in paths {
            #expect(m.lookup(p) == f.lookup(p), "\(p)")
        }
        #expect(m.lookup("/a/b//c").context?.type == "c_t")
        #expect(m.lookup("/x//c").context?.type == "c_t")
        #expect(m.lookup("/a/b/cd").context?.type == "a_t")
    }
}
