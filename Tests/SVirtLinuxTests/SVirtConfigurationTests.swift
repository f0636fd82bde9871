import Testing
@testable import SELinux
@testable import SVirt
@testable import SVirtLinux

@Suite("svirt.conf and the category pool") struct SVirtConfigurationTests {
    @Test("svirt.conf sets the pool, the set-aside range, the cool-down and the manager context")
    func parse() throws {
        let c = try SVirtConfiguration.parse("""
            # svirt settings
            categories = c0.c511
            reserved_categories = c500.c511   # containers
            cooldown_seconds = 60
            manager_context = system_u:system_r:virtd_t:s0-s0:c0.c1023
            """, path: "/x/svirt.conf")
        #expect(c.categories?.description == "s0:c0.c511")
        #expect(c.reservedCategories == CategorySet(range: 500...511))
        #expect(c.coolDownSeconds == 60)
        #expect(c.managerContext?.type == "virtd_t")
    }

    @Test("svirt.conf with CRLF or CR line endings reads as with LF, and errors name the same line")
    func crlf() throws {
        for ending in ["\r\n", "\r"] {
            let c = try SVirtConfiguration.parse(["# svirt settings", "categories = c0.c511", "user = qemu   # the QEMU user",
                                                  "cooldown_seconds = 60", ""].joined(separator: ending), path: "/x/svirt.conf")
            #expect(c.categories?.description == "s0:c0.c511")
            #expect(c.user == "qemu")
            #expect(c.coolDownSeconds == 60)
            #expect(throws: SVirtError.self) {
                try SVirtConfiguration.parse(["user = qemu", "", "colours = red"].joined(separator: ending), path: "/x/svirt.conf")
            }
            do {
                _ = try SVirtConfiguration.parse(["user = qemu", "", "colours = red"].joined(separator: ending), path: "/x/svirt.conf")
            } catch let e as SVirtError {
                #expect(e.message.hasPrefix("/x/svirt.conf:3: unknown key 'colours'"), "\(e.message)")
            }
        }
    }

    @Test("unknown keys, bad numbers and bad levels are errors with the file and line",
          arguments: [("colours = red", ":1: unknown key 'colours'"),
                      ("\ncooldown_seconds = soon", ":2: cooldown_seconds must be"),
                      ("categories = c5.c1", ":1: invalid category span"),
                      ("categories", ":1: expected 'key = value'")])
    func errors(_ text: String, _ expected: String) {
        do {
            _ = try SVirtConfiguration.parse(text, path: "/x/svirt.conf")
            Issue.record("accepted \(text)")
        } catch let e as SVirtError {
            #expect(e.message.hasPrefix("/x/svirt.conf"))
            #expect(e.message.contains(expected), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("the pool comes from the manager context's clearance when nothing overrides it")
    func poolFromManager() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("state/svirt.conf", "manager_context = system_u:system_r:virtd_t:s0-s0:c0.c255\nreserved_categories = c200.c255\n")
        // A fake /proc with no process contexts, so the configured manager context is used.
        let env = try HostEnvironment(stateDirectory: "\(dir.path)/state", selinuxRoot: dir.path,
                                      proc: ProcFS(root: "\(dir.path)/proc"))
        let pool = try env.pool()
        #expect(pool.categories.count == 200)
        #expect(pool.pairCount == 200 * 199 / 2)
        let overridden = try env.pool(override: try SecurityLevel(parsing: "s0:c0.c9"))
        #expect(overridden.categories.count == 10)
    }
}
