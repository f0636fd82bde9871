import Testing
@testable import SELinux

/// Malformed contexts and levels: each is refused with an error whose message quotes the input.
@Suite("malformed labels") struct MalformedLabelTests {
    static let contexts: [(String, String)] = [
        ("", "empty security context"),
        ("system_u", "the context ends after the user"),
        ("system_u:system_r", "the context ends after the role"),
        ("system_u:system_r:", "the type is empty"),
        (":system_r:svirt_t", "the user is empty"),
        ("system_u::svirt_t", "the role is empty"),
        ("system_u:system_r:svirt_t:", "expected a sensitivity"),
        ("system_u:system_r:svirt_t:x0", "expected a sensitivity"),
        ("system_u:system_r:svirt_t:s", "invalid sensitivity"),
        ("system_u:system_r:svirt_t:s01", "invalid sensitivity"),
        ("system_u:system_r:svirt_t:s16", "this policy has sensitivities s0..s15"),
        ("system_u:system_r:svirt_t:s0:", "empty category list"),
        ("system_u:system_r:svirt_t:s0:c", "invalid category"),
        ("system_u:system_r:svirt_t:s0:c1024", "this policy has categories c0..c1023"),
        ("system_u:system_r:svirt_t:s0:c1,", "expected a category"),
        ("system_u:system_r:svirt_t:s0:c1,,c2", "expected a category"),
        ("system_u:system_r:svirt_t:s0:c5.c3", "invalid category span"),
        ("system_u:system_r:svirt_t:s0:c3.c3", "invalid category span"),
        ("system_u:system_r:svirt_t:s0:c1.", "expected a category"),
        ("system_u:system_r:svirt_t:s0:c1.x", "expected a category"),
        ("system_u:system_r:svirt_t:s0:k1", "expected a category"),
        ("system_u:system_r:svirt_t:s0:c01", "invalid category"),
        ("system_u:system_r:svirt_t:s0:c1 ", "unexpected ' '"),
        ("system_u:system_r:svirt_t:s0-", "the range ends after '-'"),
        ("system_u:system_r:svirt_t:s0:c1-s0", "does not dominate"),
        ("system_u:system_r:svirt_t:s1-s0", "does not dominate"),
        ("system_u:system_r:svirt_t:s0-s0-s0", "unexpected '-'"),
        ("system_u:system_r:svirt_t:s0:c1:c2", "unexpected ':'"),
        ("sys tem_u:system_r:svirt_t", "invalid character ' ' in the user"),
        ("system_u:sys/tem_r:svirt_t", "invalid character '/' in the role"),
        ("system_u:system_r:svirt_t!", "invalid character '!' in the type"),
        ("system_u:system_r:svirt\u{e9}_t", "invalid character byte 0xc3 in the type"),
        ("system_u:system_r:svirt_t\n", "invalid character byte 0xa in the type"),
        ("system_u:system_r:svirt_t:s0:c99999999999", "invalid category"),
        ("system_u:system_r:svirt_t:s999999999999", "invalid sensitivity"),
        ("u:r:t:s0:c1.c1024", "this policy has categories c0..c1023"),
        ("u:r:t:s0:c-1", "invalid category"),
        ("u:r:t:S0", "expected a sensitivity"),
    ]

    static let levels: [(String, String)] = [
        ("", "empty level"),
        ("s", "invalid sensitivity"),
        ("0", "expected a sensitivity"),
        ("c1,c2", "expected a sensitivity"),
        ("s0:", "empty category list"),
        ("s0:c1,c1024", "invalid category 'c1024'"),
        ("s0:c1,", "expected a category"),
        ("s0:,c1", "expected a category"),
        ("s0:c2.c1", "invalid category span"),
        ("s0:c1.c1023.c5", "unexpected '.'"),
        ("s0:c1;c2", "unexpected ';'"),
        ("s0 :c1", "unexpected ' '"),
        ("s0:c1-s0:c2", "unexpected '-'"),
        ("s-1", "invalid sensitivity"),
        ("s0:cc1", "invalid category"),
        ("s0:c1,c2,", "expected a category"),
    ]

    static let ranges: [(String, String)] = [
        ("", "empty range"),
        ("s0-", "the range ends after '-'"),
        ("-s0", "expected a sensitivity"),
        ("s0:c0.c1023-s0", "does not dominate"),
        ("s2-s1", "does not dominate"),
        ("s0-s0:c1,c2-s0", "unexpected '-'"),
    ]

    @Test("there are at least 50 malformed cases")
    func enough() {
        #expect(Self.contexts.count + Self.levels.count + Self.ranges.count >= 50)
    }

    @Test("each malformed context is refused with an error that names it", arguments: contexts)
    func badContext(_ text: String, _ expected: String) {
        check(text, expected) { _ = try SecurityContext(parsing: text) }
    }

    @Test("each malformed level is refused with an error that names it", arguments: levels)
    func badLevel(_ text: String, _ expected: String) {
        check(text, expected) { _ = try SecurityLevel(parsing: text) }
    }

    @Test("each malformed range is refused with an error that names it", arguments: ranges)
    func badRange(_ text: String, _ expected: String) {
        check(text, expected) { _ = try SecurityRange(parsing: text) }
    }

    func check(_ text: String, _ expected: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("'\(text)' was accepted")
        } catch let e as SELinuxError {
            #expect(e.message.contains(expected), "message: \(e.message)")
            #expect(e.message.contains("'\(text)'"), "the message does not quote the input: \(e.message)")
            #expect(e.input == text)
            if let p = e.position { #expect(p >= 0 && p <= text.utf8.count) }
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }
}
