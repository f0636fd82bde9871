import SELinux
import Testing
@testable import SVirt

@Suite("label generation (sections 4 and 5)") struct LabelGeneratorTests {
    let dynamicXML = Fixtures.domain(name: "Dynamic_VM1", devices: Fixtures.fileDisk("/var/lib/libvirt/images/Dynamic_VM1.img"))

    @Test("a dynamic KVM guest gets svirt_t and svirt_image_t with one fresh level, reserved for the domain")
    func dynamic() async throws {
        let registry = InMemoryLevelRegistry(seed: 7)
        let d = try Fixtures.parse(dynamicXML)
        let r = try await Fixtures.generator().generateLabel(for: d, registry: registry)
        let level = try #require(r.label.reservedLevel)
        #expect(level.categories.count == 2)
        #expect(r.label.process?.description == "system_u:system_r:svirt_t:\(level)")
        #expect(r.label.image.description == "system_u:object_r:svirt_image_t:\(level)")
        #expect(r.label.range == SecurityRange(level))
        #expect(r.warnings.isEmpty)
        let held = try await registry.reservations()
        #expect(held.map(\.owner) == ["Dynamic_VM1"] && held.map(\.kind) == [.domain] && held.map(\.level) == [level])
    }

    @Test("two dynamic guests get distinct levels, each on process and image")
    func twoDynamic() async throws {
        let registry = InMemoryLevelRegistry(seed: 1)
        let g = try Fixtures.generator()
        let a = try await g.generateLabel(for: try Fixtures.parse(Fixtures.domain(name: "Dynamic_VM1")), registry: registry)
        let b = try await g.generateLabel(for: try Fixtures.parse(Fixtures.domain(name: "Dynamic_VM2")), registry: registry)
        #expect(a.label.range != b.label.range)
        #expect(a.label.range.low.isIncomparable(with: b.label.range.low))
        #expect(a.label.process?.range == a.label.image.range && b.label.process?.range == b.label.image.range)
    }

    @Test("user and role come from the managing process; objects keep object_r")
    func managerUserRole() throws {
        let g = try Fixtures.generator(manager: Fixtures.context("unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"))
        let r = try g.generateLabel(for: try Fixtures.parse(dynamicXML), level: Fixtures.level("s0:c41,c264"))
        #expect(r.label.process?.description == "unconfined_u:unconfined_r:svirt_t:s0:c41,c264")
        #expect(r.label.image.description == "unconfined_u:object_r:svirt_image_t:s0:c41,c264")
    }

    @Test("a baselabel gives only the type; the image label still comes from the image base")
    func baselabel() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "b", seclabel: """
            <seclabel type='dynamic' model='selinux'><baselabel>staff_u:staff_r:svirt_custom_t:s0</baselabel></seclabel>
            """))
        let r = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2"))
        #expect(r.label.process?.description == "system_u:system_r:svirt_custom_t:s0:c1,c2")
        #expect(r.label.image.description == "system_u:object_r:svirt_image_t:s0:c1,c2")
        #expect(r.label.seclabel.baseLabel == "staff_u:staff_r:svirt_custom_t:s0")
    }

    @Test("a TCG guest takes svirt_tcg_t where the policy has it")
    func tcg() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "t", type: "qemu"))
        let r = try Fixtures.generator(Fixtures.fedoraContexts).generateLabel(for: d, level: Fixtures.level("s0:c3,c4"))
        #expect(r.label.process?.type == "svirt_tcg_t")
        #expect(r.warnings.isEmpty)
    }

    @Test("without a TCG type a TCG guest takes the KVM type, with a warning that names virt_use_execmem")
    func tcgFallback() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "t", type: "qemu"))
        let r = try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c3,c4"))
        #expect(r.label.process?.type == "svirt_t")
        #expect(r.warnings.count == 1)
        #expect(r.warnings.first?.contains("virt_use_execmem") == true)
        #expect(r.warnings.first?.contains("setsebool -P virt_use_execmem on") == true)
    }

    @Test("a static label is kept; its image label takes the manager's user and the static range")
    func staticLabel() async throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "s", seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_custom_t:s0:c192,c392</label></seclabel>
            """))
        let registry = InMemoryLevelRegistry()
        let r = try await Fixtures.generator(manager: Fixtures.context("unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"))
            .generateLabel(for: d, registry: registry)
        #expect(r.label.process?.description == "system_u:system_r:svirt_custom_t:s0:c192,c392")
        #expect(r.label.image.description == "unconfined_u:object_r:svirt_image_t:s0:c192,c392")
        #expect(r.label.relabel)
        // Generating reserves nothing for a static label; reserveLabel does.
        #expect(try await registry.reservations().isEmpty)
    }

    @Test("type none has no process label, and the bare sensitivity on its image label")
    func none() async throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "n", seclabel: "<seclabel type='none' model='selinux'/>"))
        let registry = InMemoryLevelRegistry()
        let r = try await Fixtures.generator().generateLabel(for: d, registry: registry)
        #expect(r.label.process == nil)
        #expect(r.label.image.description == "system_u:object_r:svirt_image_t:s0")
        #expect(!r.label.relabel)
        #expect(r.label.seclabel == DomainSeclabel(model: "selinux", type: .none, relabel: false))
        #expect(try await registry.reservations().isEmpty)
    }

    @Test("static labels with a level are reserved for the VM; a conflicting reservation is refused by name")
    func reserveStatic() async throws {
        let registry = InMemoryLevelRegistry()
        let g = try Fixtures.generator()
        func vm(_ name: String, _ label: String) throws -> DomainDefinition {
            try Fixtures.parse(Fixtures.domain(name: name, seclabel: "<seclabel type='static' model='selinux'><label>\(label)</label></seclabel>"))
        }
        let one = try vm("Static_VM1", "system_u:system_r:svirt_t:s0:c1022,c1023")
        let l1 = try await g.reserveLabel(try g.generateLabel(for: one, registry: registry).label, for: one, registry: registry)
        #expect(l1.reservedLevel == Fixtures.level("s0:c1022,c1023"))
        // Reserving again for the same VM is accepted.
        _ = try await g.reserveLabel(l1, for: one, registry: registry)
        let two = try vm("Other", "system_u:system_r:svirt_t:s0:c1022,c1023")
        await #expect {
            _ = try await g.reserveLabel(try g.generateLabel(for: two, registry: registry).label, for: two, registry: registry)
        } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return m.contains("held by VM 'Static_VM1'") && m.contains("the label of 'Other'")
        }
        // A ranged static label (no single level) is not reserved.
        let wide = try vm("Wide", "system_u:system_r:unconfined_t:s0-s0:c0.c1023")
        let lw = try await g.reserveLabel(try g.generateLabel(for: wide, registry: registry).label, for: wide, registry: registry)
        #expect(lw.reservedLevel == nil)
        try await g.releaseLabel(l1, registry: registry)
        #expect(try await registry.reservations().isEmpty)
    }

    @Test("a live definition gives its label back as written")
    func live() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "l", seclabel: """
            <seclabel type='dynamic' model='selinux' relabel='yes'>
              <label>system_u:system_r:svirt_t:s0:c41,c264</label>
              <imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel>
            </seclabel>
            """), mode: .live)
        let label = try Fixtures.generator().liveLabel(of: d)
        #expect(label.process?.description == "system_u:system_r:svirt_t:s0:c41,c264")
        #expect(label.image.description == "system_u:object_r:svirt_image_t:s0:c41,c264")
        #expect(label.reservedLevel == Fixtures.level("s0:c41,c264"))
    }

    // MARK: The errors of section 4, in svirt's words

    @Test("generating for a VM that already carries a dynamic label is refused")
    func presetLabel() throws {
        var d = try Fixtures.parse(dynamicXML)
        d.seclabels = [DomainSeclabel(model: "selinux", type: .dynamic, relabel: true, label: "system_u:system_r:svirt_t:s0:c1,c2")]
        #expect { try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c3,c4")) } throws: { e in
            (e as? SVirtError)?.message.contains("already has a dynamic <label> (live XML)") == true
        }
    }

    @Test("generating for a VM that already carries an image label is refused")
    func presetImageLabel() throws {
        var d = try Fixtures.parse(dynamicXML)
        d.seclabels = [DomainSeclabel(model: "selinux", type: .static, relabel: true, label: "system_u:system_r:svirt_t:s0:c1,c2",
                                      imageLabel: "system_u:object_r:svirt_image_t:s0:c1,c2")]
        #expect { try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c3,c4")) } throws: { e in
            (e as? SVirtError)?.message.contains("already has an <imagelabel>") == true
        }
    }

    @Test("a model svirt does not have is refused")
    func unknownModel() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "a", seclabel: "<seclabel type='dynamic' model='apparmor'/>"))
        #expect { try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c3,c4")) } throws: { e in
            (e as? SVirtError)?.message == "seclabel: model='apparmor' is not available; svirt has the models selinux, dac and none"
        }
        let disk = try Fixtures.parse(Fixtures.domain(name: "a", devices: Fixtures.fileDisk("/i", source: "<seclabel model='smack' relabel='no'/>")))
        #expect { try Fixtures.generator().checkModels(disk) } throws: { e in
            (e as? SVirtError)?.message.hasPrefix("disk 'vda' <source> seclabel: model='smack' is not available") == true
        }
    }

    @Test("a static label without a range is refused, because the images need the level")
    func staticWithoutRange() throws {
        let d = try Fixtures.parse(Fixtures.domain(name: "s", seclabel: "<seclabel type='static' model='selinux'><label>system_u:system_r:svirt_t</label></seclabel>"))
        #expect { try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c3,c4")) } throws: { e in
            (e as? SVirtError)?.message.contains("has no MLS range") == true
        }
    }

    @Test("a given level outside the pool is refused")
    func levelOutsidePool() throws {
        let d = try Fixtures.parse(dynamicXML)
        #expect { try Fixtures.generator().generateLabel(for: d, level: Fixtures.level("s0:c1,c2000")) } throws: { e in
            (e as? SVirtError)?.code == .invalidLevel
        }
    }

    @Test("a full pool is an exhausted error and reserves nothing")
    func exhausted() async throws {
        let registry = InMemoryLevelRegistry()
        let small = try CategoryPool(categoryCount: 8)
        let g = LabelGenerator(contexts: Fixtures.debianContexts, manager: Fixtures.manager, pool: small)
        for i in 0..<small.pairCount {
            _ = try await g.generateLabel(for: try Fixtures.parse(Fixtures.domain(name: "vm\(i)")), registry: registry)
        }
        await #expect {
            _ = try await g.generateLabel(for: try Fixtures.parse(Fixtures.domain(name: "one-too-many")), registry: registry)
        } throws: { e in (e as? SVirtError)?.code == .exhausted }
        #expect(try await registry.reservations().count == small.pairCount)
    }
}
