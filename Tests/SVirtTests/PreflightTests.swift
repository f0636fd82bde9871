import SELinux
import Testing
@testable import SVirt

/// A checker with fixed answers per target type, for the preflight's own logic. The real decisions are tested
/// against the real policy in SVirtLinuxTests.
struct TableChecker: AccessChecker {
    var answers: [String: AccessDecision]
    func check(source: SecurityContext, target: SecurityContext, objectClass: String, permissions: [String]) throws -> AccessDecision {
        answers[target.type] ?? .allowed
    }
}

@Suite("static label preflight, its logic") struct PreflightTests {
    func staticPlan(relabel: Bool, store: InMemoryFileLabelStore) throws -> LabelPlan {
        let d = try Fixtures.parse(try Golden.text("Static_VM1.xml").replacingOccurrences(of: "relabel='no'", with: "relabel='\(relabel ? "yes" : "no")'"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        return try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
    }

    @Test("a type denial names both types and the chcon that fixes it")
    func typeDenial() throws {
        let store = InMemoryFileLabelStore()
        store.add("/var/lib/libvirt/images/Static_VM1.img", label: "system_u:object_r:virt_image_t:s0")
        let pf = Preflight(checker: TableChecker(answers: ["virt_image_t": .denied(Denial(kind: .typeEnforcement))]),
                           store: store, contexts: Fixtures.debianContexts)
        #expect { try pf.run(try staticPlan(relabel: false, store: store)) } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return (e as? SVirtError)?.code == .preflight
                && m.contains("'Static_VM1' cannot start: its process label system_u:system_r:svirt_t:s0:c1022,c1023 may not use one of its resources")
                && m.contains("disk 'hda' /var/lib/libvirt/images/Static_VM1.img (system_u:object_r:virt_image_t:s0): svirt_t may not read and write it")
                && m.contains("no rule that lets svirt_t use virt_image_t files")
                && m.contains("run 'chcon -t svirt_image_t /var/lib/libvirt/images/Static_VM1.img' or set relabel='yes'")
        }
    }

    @Test("a constraint denial suggests the VM's level, and a boolean denial the boolean")
    func otherDenials() throws {
        let store = InMemoryFileLabelStore()
        store.add("/var/lib/libvirt/images/Static_VM1.img", label: "system_u:object_r:svirt_image_t:s0:c7,c8")
        let mcs = Preflight(checker: TableChecker(answers: ["svirt_image_t": .denied(Denial(kind: .constraint, detail: "mlsconstrain file { read } (h1 dom h2)"))]),
                            store: store, contexts: Fixtures.debianContexts)
        #expect { try mcs.run(try staticPlan(relabel: false, store: store)) } throws: { e in
            (e as? SVirtError)?.message.contains("the levels do not allow it (mlsconstrain file { read } (h1 dom h2)); give the file the VM's level with 'chcon -l s0:c1022,c1023") == true
        }
        let bool = Preflight(checker: TableChecker(answers: ["svirt_image_t": .denied(Denial(kind: .boolean, booleans: ["virt_use_nfs"]))]),
                             store: store, contexts: Fixtures.debianContexts)
        #expect { try bool.run(try staticPlan(relabel: false, store: store)) } throws: { e in
            (e as? SVirtError)?.message.contains("'setsebool -P virt_use_nfs on'") == true
        }
    }

    @Test("with relabel='yes' the label the file will carry is checked, not the current one")
    func plannedLabel() throws {
        let store = InMemoryFileLabelStore()
        store.add("/var/lib/libvirt/images/Static_VM1.img", label: "system_u:object_r:virt_image_t:s0")
        let pf = Preflight(checker: TableChecker(answers: ["virt_image_t": .denied(Denial(kind: .typeEnforcement))]),
                           store: store, contexts: Fixtures.debianContexts)
        let r = try pf.run(try staticPlan(relabel: true, store: store))
        #expect(r.checks.map(\.target.description) == ["system_u:object_r:svirt_image_t:s0:c1022,c1023"])
        #expect(r.checks.map(\.objectClass) == ["file"] && r.checks.map(\.permissions) == [["getattr", "open", "read", "write"]])
    }

    @Test("without a policy the preflight says it did not check, rather than pass")
    func unavailable() throws {
        let store = InMemoryFileLabelStore()
        store.add("/var/lib/libvirt/images/Static_VM1.img", label: "system_u:object_r:virt_image_t:s0")
        let pf = Preflight(checker: UnavailableAccessChecker(reason: "no policy engine"), store: store, contexts: Fixtures.debianContexts)
        let r = try pf.run(try staticPlan(relabel: false, store: store))
        #expect(r.unchecked == ["disk 'hda' /var/lib/libvirt/images/Static_VM1.img: not checked (no policy engine)"])
    }

    @Test("dynamic labels need no preflight")
    func dynamicSkipped() throws {
        let d = try Fixtures.parse(try Golden.text("Dynamic_VM1.xml"))
        let label = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2")).label
        let plan = try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: d, label: label)
        #expect(!Preflight.applies(to: plan))
    }
}
