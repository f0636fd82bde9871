import Testing
@testable import SELinux

@Suite("security contexts") struct SecurityContextTests {
    @Test("a context with a range round-trips") func roundTrip() throws {
        let c = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c585,c813")
        #expect(c.type == "svirt_t")
        #expect(c.description == "system_u:system_r:svirt_t:s0:c585,c813")
    }
}
