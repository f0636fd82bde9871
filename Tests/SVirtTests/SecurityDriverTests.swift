import SELinux
import Testing
@testable import SVirt

@Suite("the driver's start and stop sequence") struct SecurityDriverTests {
    func driver(_ store: InMemoryFileLabelStore, _ registry: InMemoryLevelRegistry,
                checker: any AccessChecker = UnavailableAccessChecker(reason: "test")) throws -> SecurityDriver {
        SecurityDriver(contexts: Fixtures.debianContexts, manager: Fixtures.manager, pool: try CategoryPool(categoryCount: 1024),
                       registry: registry, host: FakeHost(), store: store,
                       defaults: FallbackDefaultLabels(Fixtures.context("system_u:object_r:virt_image_t:s0")),
                       checker: checker, bootTime: 1000)
    }

    func domain(_ name: String, _ path: String, seclabel: String = "") throws -> DomainDefinition {
        try Fixtures.parse(Fixtures.domain(name: name, devices: Fixtures.fileDisk(path), seclabel: seclabel))
    }

    @Test("a start reserves a level for the domain and a stop releases it, with the original label back")
    func startStop() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry(seed: 3)
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry)
        let l = try await d.labelAll(for: try domain("vm", "/img/a.img"))
        let level = try #require(l.label.reservedLevel)
        #expect(try await registry.reservations().map(\.owner) == ["vm"])
        #expect(store.label("/img/a.img") == "system_u:object_r:svirt_image_t:\(level)")
        let r = try await d.restoreAll(for: try domain("vm", "/img/a.img"))
        #expect(r.released == [level] && r.label?.reservedLevel == level)
        #expect(store.attributes("/img/a.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
        #expect(try await registry.reservations().isEmpty)
    }

    @Test("labelling a domain that already holds a level is refused until it is restored")
    func twice() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry)
        _ = try await d.labelAll(for: try domain("vm", "/img/a.img"))
        await #expect {
            _ = try await d.labelAll(for: try domain("vm", "/img/a.img"))
        } throws: { e in (e as? SVirtError)?.message.contains("already holds the level") == true }
    }

    @Test("a failed start gives the labels back and releases the level")
    func failedStart() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry)
        await #expect(throws: SVirtError.self) {
            _ = try await d.labelAll(for: try Fixtures.parse(Fixtures.domain(name: "vm", devices: Fixtures.fileDisk("/img/a.img")
                + Fixtures.fileDisk("/img/missing.img", target: "vdb"))))
        }
        #expect(try await registry.reservations().isEmpty)
        #expect(store.attributes("/img/a.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
    }

    @Test("a failed preflight releases the static level and touches nothing")
    func failedPreflight() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/s.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry, checker: TableChecker(answers: ["virt_image_t": .denied(Denial(kind: .typeEnforcement))]))
        let s = try domain("s", "/img/s.img", seclabel: "<seclabel type='static' model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>")
        await #expect { _ = try await d.labelAll(for: s) } throws: { e in (e as? SVirtError)?.code == .preflight }
        #expect(try await registry.reservations().isEmpty)
        #expect(store.log.isEmpty)
    }

    @Test("a static label whose level dominates the whole pool is refused without --force, and forced with a warning")
    func staticDominatingPool() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/s.img", label: "system_u:object_r:virt_image_t:s0")
        store.add("/img/o.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry)
        let s = try domain("s", "/img/s.img", seclabel: "<seclabel type='static' model='selinux'>"
                           + "<label>system_u:system_r:svirt_t:s0:c0.c1023</label></seclabel>")
        await #expect { _ = try await d.labelAll(for: s) } throws: { e in
            guard let m = (e as? SVirtError)?.message else { return false }
            return m.contains("the static label of 's' (system_u:system_r:svirt_t:s0:c0.c1023)")
                && m.contains("dominates every pair of the pool s0:c0.c1023, so no other VM could start")
                && m.contains("pass --force")
        }
        #expect(try await registry.reservations().isEmpty)
        #expect(store.log.isEmpty)

        let forced = try await d.labelAll(for: s, force: true)
        #expect(forced.warnings.contains { $0.hasPrefix("--force: reserving the static label of 's'") && $0.contains("no other VM could start") })
        #expect(try await registry.reservations().map(\.owner) == ["s"])
        // ... and it does block every other VM, which is why it needs --force.
        await #expect(throws: SVirtError.self) { _ = try await d.labelAll(for: try domain("o", "/img/o.img")) }

        // A static level that leaves one pool category out is an ordinary reservation.
        _ = try await d.restoreAll(for: s)
        let most = try domain("m", "/img/s.img", seclabel: "<seclabel type='static' model='selinux'>"
                              + "<label>system_u:system_r:svirt_t:s0:c0.c1022</label></seclabel>")
        #expect(try await d.labelAll(for: most).warnings.allSatisfy { !$0.contains("--force") })
    }

    @Test("restoring a dynamic domain whose level is gone restores recorded paths and leaves the rest")
    func restoreWithoutLevel() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        store.add("/img/b.img", label: "system_u:object_r:svirt_image_t:s0:c1,c2")
        let d = try driver(store, registry)
        _ = try await d.labelAll(for: try domain("vm", "/img/a.img"))
        for r in try await registry.reservations() { _ = try await registry.releaseLevel(r.level) }
        let r = try await d.restoreAll(for: try Fixtures.parse(Fixtures.domain(name: "vm", devices: Fixtures.fileDisk("/img/a.img")
            + Fixtures.fileDisk("/img/b.img", target: "vdb"))))
        #expect(r.warnings.contains { $0.contains("holds no level") })
        #expect(store.attributes("/img/a.img") == ["security.selinux": "system_u:object_r:virt_image_t:s0"])
        #expect(store.label("/img/b.img") == "system_u:object_r:svirt_image_t:s0:c1,c2")
    }

    @Test("live XML is labelled with the labels written in it, and its level is reserved")
    func live() async throws {
        let store = InMemoryFileLabelStore(), registry = InMemoryLevelRegistry()
        store.add("/img/a.img", label: "system_u:object_r:virt_image_t:s0")
        let d = try driver(store, registry)
        let live = try Fixtures.parse(Fixtures.domain(name: "vm", devices: Fixtures.fileDisk("/img/a.img"), seclabel: """
            <seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c41,c264</label>
            <imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel></seclabel>
            """), mode: .live)
        _ = try await d.labelAll(for: live)
        #expect(store.label("/img/a.img") == "system_u:object_r:svirt_image_t:s0:c41,c264")
        #expect(try await registry.reservations().map(\.level.description) == ["s0:c41,c264"])
        _ = try await d.restoreAll(for: live)
        #expect(store.label("/img/a.img") == "system_u:object_r:virt_image_t:s0")
        #expect(try await registry.reservations().isEmpty)
    }
}
