import ArgumentParser
import Testing
@testable import SELinux
@testable import SVirtCommands

@Suite("label values as command-line arguments") struct ArgumentTests {
    @Test("contexts, levels and ranges parse from arguments, and bad ones do not")
    func expressible() {
        #expect(SecurityContext(argument: "system_u:system_r:svirt_t:s0:c2,c1")?.description == "system_u:system_r:svirt_t:s0:c1,c2")
        #expect(SecurityLevel(argument: "s0:c0,c1,c2")?.description == "s0:c0.c2")
        #expect(SecurityRange(argument: "s0-s0:c0.c1023")?.high.categories.count == 1024)
        #expect(SecurityContext(argument: "nope") == nil)
        #expect(SecurityLevel(argument: "s0:c1024") == nil)
        #expect(SecurityRange(argument: "s1-s0") == nil)
    }
}
