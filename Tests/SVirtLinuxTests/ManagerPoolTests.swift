import SELinux
import SVirt
import Testing
@testable import SVirtLinux

@Suite("the pool from the managing context (section 5.1)") struct ManagerPoolTests {
    func pool(_ context: String) throws -> CategoryPool {
        try HostEnvironment.pool(manager: try SecurityContext(parsing: context))
    }

    @Test("libvirtd's usual range gives s0 with c0..c1023")
    func usual() throws {
        let p = try pool("system_u:system_r:virtd_t:s0-s0:c0.c1023")
        #expect(p.sensitivity == 0 && p.categories.count == 1024 && p.categories.first == 0 && p.categories.last == 1023)
    }

    @Test("only the low sensitivity is used, with the high level's categories")
    func lowSensitivity() throws {
        let p = try pool("system_u:system_r:virtd_t:s2-s3:c0.c255")
        #expect(p.sensitivity == 2 && p.categories.count == 256)
    }

    @Test("a range without categories, or no range, gives c0..c1023")
    func noCategories() throws {
        #expect(try pool("system_u:system_r:virtd_t:s0").categories.count == 1024)
        #expect(try pool("system_u:system_r:virtd_t:s0-s0").categories.count == 1024)
        #expect(try pool("system_u:system_r:virtd_t").categories.count == 1024)
    }

    @Test("fewer than 8 categories is refused (libvirt's 'too small' and 'no category range')")
    func tooSmall() {
        for c in ["system_u:system_r:virtd_t:s0-s0:c5", "system_u:system_r:virtd_t:s0-s0:c0.c6"] {
            #expect { try pool(c) } throws: { e in
                let m = (e as? SVirtError)?.message ?? ""
                return m.contains("the category pool is too small") && m.contains("at least 8 categories")
            }
        }
    }
}
