import Testing
@testable import SELinux

@Suite("security contexts, ranges and levels") struct SecurityContextTests {
    @Test("a context with a range parses into its four fields and formats back")
    func parsesFields() throws {
        let c = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c585,c813")
        #expect(c.user == "system_u")
        #expect(c.role == "system_r")
        #expect(c.type == "svirt_t")
        #expect(c.range?.low == c.range?.high)
        #expect(c.range?.low.categories == CategorySet([585, 813]))
        #expect(c.description == "system_u:system_r:svirt_t:s0:c585,c813")
    }

    @Test("a context without a range has none")
    func noRange() throws {
        let c = try SecurityContext(parsing: "user_u:object_r:etc_t")
        #expect(c.range == nil)
        #expect(c.description == "user_u:object_r:etc_t")
    }

    @Test("categories are sorted and merged the way the kernel prints them",
          arguments: [
            ("s0:c813,c585", "s0:c585,c813"),
            ("s0:c0,c1,c2,c3", "s0:c0.c3"),
            ("s0:c0.c2,c5,c6", "s0:c0.c2,c5,c6"),
            ("s0:c1,c2", "s0:c1,c2"),
            ("s0:c3,c1,c2", "s0:c1.c3"),
            ("s0:c5,c5", "s0:c5"),
            ("s0:c0.c10,c4.c12", "s0:c0.c12"),
            ("s0:c0.c1023", "s0:c0.c1023"),
            ("s0:c0.c1,c3", "s0:c0,c1,c3"),
            ("s15:c1023", "s15:c1023"),
          ])
    func canonicalLevels(_ input: String, _ canonical: String) throws {
        #expect(try SecurityLevel(parsing: input).description == canonical)
    }

    @Test("a range prints one level when both ends are equal")
    func rangeForms() throws {
        #expect(try SecurityRange(parsing: "s0-s0").description == "s0")
        #expect(try SecurityRange(parsing: "s0-s0:c0.c1023").description == "s0-s0:c0.c1023")
        #expect(try SecurityRange(parsing: "s0:c1,c2-s0:c1,c2").description == "s0:c1,c2")
        let r = try SecurityRange(parsing: "s0-s15:c0.c1023")
        #expect(r.low == SecurityLevel(sensitivity: 0))
        #expect(r.high.sensitivity == 15)
    }

    @Test("range containment follows dominance of both ends")
    func containment() throws {
        let r = try SecurityRange(parsing: "s0-s0:c0.c1023")
        #expect(r.contains(try SecurityLevel(parsing: "s0:c1,c2")))
        #expect(r.contains(try SecurityLevel(parsing: "s0")))
        #expect(!r.contains(try SecurityLevel(parsing: "s1:c1")))
        #expect(r.contains(try SecurityRange(parsing: "s0:c5-s0:c5,c6")))
        #expect(!r.contains(try SecurityRange(parsing: "s0-s1")))
        let narrow = try SecurityRange(parsing: "s0:c1-s0:c1,c2")
        #expect(!narrow.contains(try SecurityLevel(parsing: "s0")))
    }

    @Test("limits from a policy bound the categories and sensitivities")
    func limits() throws {
        let small = ParseLimits(sensitivities: 1, categories: 256)
        #expect(throws: SELinuxError.self) { try SecurityLevel(parsing: "s0:c256", limits: small) }
        #expect(throws: SELinuxError.self) { try SecurityLevel(parsing: "s1", limits: small) }
        #expect(try SecurityLevel(parsing: "s0:c255", limits: small).description == "s0:c255")
    }

    @Test("the example error names the category, the text, the column and the policy's categories")
    func exampleMessage() {
        do {
            _ = try SecurityLevel(parsing: "s0:c1,c1024")
            Issue.record("c1024 was accepted")
        } catch let e as SELinuxError {
            #expect(e.message == "invalid category 'c1024' in 's0:c1,c1024' at column 7: this policy has categories c0..c1023")
            #expect(e.position == 6)
            #expect(e.code == .invalidCategory)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("the copy helpers change one field")
    func copies() throws {
        let c = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0")
        #expect(c.with(type: "svirt_tcg_t").description == "system_u:system_r:svirt_tcg_t:s0")
        #expect(c.with(range: SecurityRange(SecurityLevel(pair: 1, 2))).description == "system_u:system_r:svirt_t:s0:c1,c2")
        #expect(c.with(role: "object_r").with(user: "u").description == "u:object_r:svirt_t:s0")
    }
}
