import Testing
@testable import SVirt

@Suite("<seclabel> rules") struct SeclabelParsingTests {
    func parse(_ seclabel: String, mode: DomainDefinition.ParseMode = .inactive) throws -> DomainDefinition {
        try Fixtures.parse(Fixtures.domain(name: "s", seclabel: seclabel), mode: mode)
    }

    func error(_ seclabel: String, mode: DomainDefinition.ParseMode = .inactive) -> String? {
        Fixtures.error(Fixtures.domain(name: "s", seclabel: seclabel), mode: mode)
    }

    @Test("the defaults: type dynamic, relabel yes for dynamic and no for static and none")
    func defaults() throws {
        #expect(try parse("<seclabel model='selinux'/>").selinuxSeclabel
                == DomainSeclabel(model: "selinux", type: .dynamic, relabel: true))
        #expect(try parse("<seclabel type='static' model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>")
            .selinuxSeclabel.relabel == false)
        #expect(try parse("<seclabel type='none' model='selinux'/>").selinuxSeclabel
                == DomainSeclabel(model: "selinux", type: .none, relabel: false))
    }

    @Test("without a seclabel the VM gets an implicit dynamic one")
    func implicit() throws {
        let s = try parse("").selinuxSeclabel
        #expect(s.type == .dynamic && s.relabel && s.implicit)
    }

    @Test("a single seclabel without a model becomes the selinux one")
    func modelless() throws {
        #expect(try parse("<seclabel type='none'/>").selinuxSeclabel.type == .none)
        #expect(try parse("<seclabel type='dynamic'/>").seclabel(model: "selinux")?.type == .dynamic)
        #expect(error("<seclabel type='static'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>")
                == "seclabel: the model is missing; write model='selinux'")
        #expect(error("<seclabel type='dynamic'><baselabel>system_u:system_r:svirt_t:s0</baselabel></seclabel>")
                == "seclabel: the model is missing; write model='selinux'")
        #expect(error("<seclabel type='none'/><seclabel model='dac' type='none'/>")
                == "seclabel: with several <seclabel> elements each needs a model ('selinux' or 'dac')")
    }

    @Test("model none asks for no labelling; in live XML its type must be none")
    func modelNone() throws {
        let d = try parse("<seclabel model='none' type='dynamic'/>")
        #expect(d.selinuxSeclabel.type == .none)
        #expect(error("<seclabel model='none' type='dynamic'/>", mode: .live) == "seclabel: model='none' needs type='none' (found type='dynamic')")
    }

    @Test("each rule of section 12.1 gives its own error")
    func errors() {
        let label = "<label>system_u:system_r:svirt_t:s0:c1,c2</label>"
        let cases: [(String, DomainDefinition.ParseMode, String)] = [
            ("<seclabel type='weird' model='selinux'/>", .inactive,
             "seclabel: type='weird' is not a label type; use dynamic, static or none"),
            ("<seclabel type='static' model='selinux' relabel='maybe'>\(label)</seclabel>", .inactive,
             "seclabel: relabel='maybe' must be 'yes' or 'no'"),
            ("<seclabel type='dynamic' model='selinux' relabel='no'/>", .inactive,
             "seclabel: type='dynamic' with relabel='no' cannot work"),
            ("<seclabel type='none' model='selinux' relabel='yes'/>", .inactive,
             "seclabel: type='none' with relabel='yes' cannot work"),
            ("<seclabel type='static' model='selinux'/>", .inactive,
             "seclabel: type='static' needs a <label>"),
            ("<seclabel type='static' model='selinux' relabel='yes'>\(label)<imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel></seclabel>", .inactive,
             "seclabel: <imagelabel> is only accepted in live XML (--live)"),
            ("<seclabel type='dynamic' model='selinux'/>", .live,
             "seclabel: live XML of a dynamic label needs the <label> the VM runs with"),
            ("<seclabel type='static' model='selinux' relabel='yes'>\(label)</seclabel>", .live,
             "seclabel: live XML with relabel='yes' needs the <imagelabel>"),
            ("<seclabel type='static' model='selinux'>\(label)<baselabel>system_u:system_r:svirt_t:s0</baselabel></seclabel>", .inactive,
             "seclabel: <baselabel> is only used with type='dynamic'"),
            ("<seclabel model='selinux'/><seclabel model='selinux'/>", .inactive,
             "seclabel: model='selinux' is given twice"),
            ("<seclabel type='static' model='selinux'><label>svirt_t</label></seclabel>", .inactive,
             "seclabel <label>: 'svirt_t' is not a valid security context"),
            ("<seclabel type='static' model='selinux'><label>\(String(repeating: "a", count: 5000))</label></seclabel>", .inactive,
             "seclabel: <label> is longer than 4096 bytes"),
            ("<seclabel type='none' model='selinux'>\(label)</seclabel>", .inactive,
             "seclabel: type='none' takes no <label>"),
        ]
        for (xml, mode, prefix) in cases {
            let m = error(xml, mode: mode)
            #expect(m?.hasPrefix(prefix) == true, "\(xml) gave \(m ?? "no error")")
        }
    }

    @Test("live XML carries the label and image label as written")
    func live() throws {
        let d = try parse("""
            <seclabel type='dynamic' model='selinux' relabel='yes'>
              <label>system_u:system_r:svirt_t:s0:c41,c264</label>
              <imagelabel>system_u:object_r:svirt_image_t:s0:c41,c264</imagelabel>
            </seclabel>
            """, mode: .live)
        #expect(d.selinuxSeclabel.selinuxLabel == Fixtures.context("system_u:system_r:svirt_t:s0:c41,c264"))
        #expect(d.selinuxSeclabel.selinuxImageLabel == Fixtures.context("system_u:object_r:svirt_image_t:s0:c41,c264"))
    }

    @Test("device labelskip is honoured only in live XML")
    func labelskip() throws {
        let disk = Fixtures.fileDisk("/i.img", source: "<seclabel model='selinux' labelskip='yes'/>")
        let inactive = try Fixtures.parse(Fixtures.domain(name: "l", devices: disk))
        #expect(inactive.disks[0].seclabels.first?.labelSkip == false)
        let live = try Fixtures.parse(Fixtures.domain(name: "l", devices: disk, seclabel: "<seclabel type='none'/>"), mode: .live)
        #expect(live.disks[0].seclabels.first?.labelSkip == true)
    }
}
