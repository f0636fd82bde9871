import SELinux
import SELinuxPolicy
import Testing
@testable import SVirt

@Suite("policy access checker")
struct PolicyAccessCheckerTests {
    @Test("the built-in policy answers the preflight: own image allowed, another VM's denied by the MCS constraint")
    func builtIn() throws {
        let checker = try PolicyAccessChecker.builtIn()
        let vm = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1,c2")
        let own = try SecurityContext(parsing: "system_u:object_r:svirt_image_t:s0:c1,c2")
        let other = try SecurityContext(parsing: "system_u:object_r:svirt_image_t:s0:c3,c4")
        #expect(try checker.check(source: vm, target: own, objectClass: "file", permissions: ["read", "write"]) == .allowed)
        guard case .denied(let d) = try checker.check(source: vm, target: other, objectClass: "file", permissions: ["read"]) else {
            Issue.record("another VM's image must be denied")
            return
        }
        #expect(d.kind == .constraint && d.detail.contains("mlsconstrain"))
        guard case .denied(let b) = try checker.check(source: vm, target: vm, objectClass: "process", permissions: ["execmem"]) else {
            Issue.record("execmem must be denied without the boolean")
            return
        }
        #expect(b.kind == .boolean && b.booleans == ["virt_use_execmem"])
        #expect(throws: PolicyFormatError.self) {
            try checker.check(source: vm, target: try SecurityContext(parsing: "nobody_u:object_r:x_t:s0"),
                              objectClass: "file", permissions: ["read"])
        }
    }
}
