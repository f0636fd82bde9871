import Foundation
import Testing
import SELinuxPolicy
@testable import SVirtXen

@Suite("xl.cfg parser")
struct XLConfigTests {
    @Test("strings in single and double quotes, numbers, and comments are read as xl reads them")
    func atoms() throws {
        let c = try XLConfig(parsing: """
            # a comment line
            name = "guest1"   # trailing comment
            seclabel='system_u:system_r:domU_t'
            memory = 1024
            maxmem = 0x800
            extra = "console=hvc0 root=\\"/dev/xvda1\\" \\x41\\101\\t"
            """, source: "g.cfg")
        #expect(try c.string("name") == "guest1")
        #expect(try c.string("seclabel") == "system_u:system_r:domU_t")
        #expect(c.setting("memory")?.value == .number("1024"))
        #expect(try c.integer("maxmem") == 0x800)
        #expect(try c.string("extra") == "console=hvc0 root=\"/dev/xvda1\" AA\t")
        #expect(c.setting("seclabel")?.line == 3)
        #expect(try c.string("absent") == nil)
    }

    @Test("CRLF and lone CR line endings read as LF, with the same line numbers")
    func lineEndings() throws {
        for ending in ["\r\n", "\r"] {
            let text = ["# a comment", "name = \"guest1\"   # trailing", "disk = [", "  'vdev=xvda, target=/a.img',", "]",
                        "memory = 1024", ""].joined(separator: ending)
            let c = try XLConfig(parsing: text, source: "g.cfg")
            #expect(try c.string("name") == "guest1")
            #expect(try c.list("disk")?.count == 1)
            #expect(try c.integer("memory") == 1024)
            #expect(c.setting("memory")?.line == 6)
            #expect(throws: (any Error).self) { try XLConfig(parsing: "name = \"a\(ending)b\"", source: "g.cfg") }
        }
    }

    @Test("lists span lines, nest, may end with a comma, and may be empty")
    func lists() throws {
        let c = try XLConfig(parsing: """
            disk = [
                'format=raw, vdev=xvda, target=/a.img',   # first
                "format=raw, vdev=xvdb, target=/b.img",

            ]
            nested = [ [ 1, 2 ], [ 'x' ], [] ]
            empty = [ ]
            vif = ['bridge=xenbr0']; vcpus = 2
            """, source: "g.cfg")
        #expect(try c.list("disk")?.count == 2)
        #expect(c.setting("disk")?.line == 1)
        #expect(c.setting("nested")?.value == .list([.list([.number("1"), .number("2")]), .list([.string("x")]), .list([])]))
        #expect(try c.list("empty") == [])
        #expect(try c.integer("vcpus") == 2)
        #expect(c.setting("vcpus")?.line == 8)
    }

    @Test("a later setting replaces an earlier one and += appends to strings and lists")
    func replaceAndAppend() throws {
        let c = try XLConfig(parsing: """
            name = "a"
            name = "b"
            extra = "x"
            extra += "y"
            pci = [ '00:01.0' ]
            pci += [ '00:02.0' ]
            """)
        #expect(try c.string("name") == "b")
        #expect(c.repeatedLines("name") == [1, 2])
        #expect(try c.string("extra") == "xy")
        #expect(c.setting("pci")?.value == .list([.string("00:01.0"), .string("00:02.0")]))
        #expect(throws: XenError.self) { try XLConfig(parsing: "a = 'x'\na += [ 'y' ]\n") }
    }

    @Test("replacing a value keeps every other byte of the file")
    func replacing() throws {
        let text = "name = 'g'  # keep me\nseclabel = \"system_u:system_r:domU_t\" ; memory = 1\n"
        let c = try XLConfig(parsing: text)
        let out = try c.replacing("seclabel", with: XLConfig.quoted("system_u:system_r:domU_t:s0:c1,c2"))
        #expect(out == "name = 'g'  # keep me\nseclabel = 'system_u:system_r:domU_t:s0:c1,c2' ; memory = 1\n")
        let added = try c.replacing("init_seclabel", with: "'x'")
        #expect(added == text + "init_seclabel = 'x'\n")
        let appended = try XLConfig(parsing: "seclabel = 'a'\nseclabel += 'b'\n")
        #expect(throws: XenError.self) { try appended.replacing("seclabel", with: "'c'") }
        #expect(XLConfig.quoted("it's\\") == "'it\\'s\\\\'")
        #expect(try XLConfig(parsing: "k = " + XLConfig.quoted("a'b\\c\n\u{1}")).string("k") == "a'b\\c\n\u{1}")
    }

    /// Each malformed file, the line the error must name, and words the message must contain.
    static let malformed: [(String, Int, String)] = [
        ("name = 'guest\n", 1, "unterminated string"),
        ("name = \"g\"\nseclabel = 'system_u:system_r:domU_t\nmemory = 1\n", 2, "unterminated string"),
        ("name = 'g'\nmemory 1024\n", 2, "expected '='"),
        ("name = 'g'\n\n\nkernel = '/boot/vmlinuz' + '-guest'\n", 4, "Python"),
        ("name = 'g'\ndisk = [ 'a',\n  'b'\n", 2, "never closed"),
        ("name = 'g'\ndisk = [ 'a' 'b' ]\n", 2, "expected ',' or ']'"),
        ("name = 'g'\nmemory =\n", 2, "value is missing"),
        ("name = 'g'\nextra = 'bad \\q escape'\n", 2, "backslash"),
        ("name = 'g'\nextra = '\\x4'\n", 2, "\\x escape"),
        ("name = 'g'\n= 'x'\n", 2, "expected a setting name"),
        ("name = 'g' memory = 1\n", 1, "one setting per line"),
        ("name = 'g'\nvcpus = 2\nseclabel = [ 'system_u:system_r:domU_t' ]\n", 3, "list but should be a single value"),
        ("name = 'g'\nseclabel = 'system_u:domU_t'\n", 2, "not a security context"),
        ("memory = 1\n", 0, "no 'name'"),
        ("name = 'g'\npci = '0000:00:19.0'\n", 2, "single value but should be a list"),
        ("name = 'g'\n\npci = [ '0000:00:1g.0' ]\n", 3, "not a PCI device"),
        ("name = 'g'\niomem = [ 'febd0' ]\n", 2, "START,NUM_PAGES"),
        ("name = 'g'\nioports = [ 'ecdf-ecc0' ]\n", 2, "ioports"),
        ("name = 'g'\nirqs = [ 'many' ]\n", 2, "IRQ"),
        ("name = 'g'\ntype = 'hvn'\n", 2, "pv, pvh or hvm"),
        ("name = 'g'\ndevice_model_stubdomain_override = yes\n", 2, "expected a quoted string"),
        ("name = 'g'\nx = [" + String(repeating: "[", count: 40) + String(repeating: "]", count: 41) + "\n", 2, "nest deeper"),
    ]

    @Test("malformed files are errors that name the file and the line")
    func malformedFiles() throws {
        for (text, line, words) in Self.malformed {
            do {
                _ = try XenDomainConfiguration(parsing: text, source: "bad.cfg")
                Issue.record("no error for: \(text)")
            } catch let e as XenError {
                #expect(e.file == "bad.cfg", "\(text)")
                if line > 0 {
                    #expect(e.line == line, "\(e) for: \(text)")
                    #expect(e.description.hasPrefix("bad.cfg:\(line): "), "\(e)")
                }
                #expect(e.description.contains(words), "\(e) should say '\(words)'")
            }
        }
    }

    @Test("the fixtures' labels, stub domain flag and devices are read")
    func fixtures() throws {
        let web = try loadConfiguration("seclabel-only")
        #expect(web.name == "web1" && web.type == "pv")
        #expect(web.seclabel?.context.type == "domU_t" && web.seclabel?.line == 7)
        #expect(web.createLabel?.key == "seclabel" && web.execLabel == nil)
        #expect(web.passthrough.map(\.device) == [.pci(XenPCIAddress(bus: 0, device: 0x19, function: 0))])
        let vault = try loadConfiguration("init-seclabel")
        #expect(vault.createLabel?.context.type == "nomigrate_t_building")
        #expect(vault.execLabel?.context.type == "nomigrate_t")
        let plain = try loadConfiguration("no-label")
        #expect(plain.createLabel == nil && plain.name == "plain")
        let hvm = try loadConfiguration("stubdom")
        #expect(hvm.stubDomain && hvm.type == "hvm")
        #expect(hvm.deviceModelCreateLabel?.context.type == "dm_dom_t")
        let devices = try configuration("""
            name = "d"
            pci = [ '01:00.*', 'bdf=0001:08:00.0,permissive=1', '00:19.0@8,msitranslate=1' ]
            irqs = [ 33, '55' ]
            iomem = [ 'febd0,2@a0000' ]
            ioports = [ 'ecc0-ecdf', '3f8' ]
            dtdev = [ '/soc/ethernet@ff0e0000' ]
            """)
        #expect(devices.passthrough.count == 8 + 2 + 2 + 1 + 2 + 1)
        #expect(devices.passthrough.contains { $0.device == .pci(XenPCIAddress(segment: 1, bus: 8, device: 0, function: 0)) })
        #expect(devices.passthrough.contains { $0.device == .iomem(low: 0xfebd0, high: 0xfebd1) })
        #expect(devices.passthrough.contains { $0.device == .ioports(low: 0x3f8, high: 0x3f8) })
        #expect(devices.passthrough.contains { $0.device == .pirq(55) })
        let pvStub = try configuration("name = 'p'\ndevice_model_stubdomain_override = 1\n")
        #expect(!pvStub.stubDomain && pvStub.notes.contains { $0.contains("HVM") })
    }

    @Test("random damage to the fixtures gives a parse or an error, never a trap")
    func neverTrap() throws {
        var rng = SeededRandom(seed: 0x5EC1AB)
        let inputs = try labelCases.map { Array(try readText(xenConfigDirectory + "/\($0).cfg").utf8) }
        let alphabet = Array("'\"[],;=+#\\\n x0:.-@".utf8) + [0, 0xff, 0xc3]
        var parsed = 0, failed = 0
        for i in 0..<20_000 {
            var b = inputs[i % inputs.count]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
                case 1: b.remove(at: at)
                default: b.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)], at: at)
                }
            }
            do {
                _ = try XenDomainConfiguration(parsing: String(decoding: b, as: UTF8.self), source: "m.cfg")
                parsed += 1
            } catch let e as XenError {
                #expect(e.file == "m.cfg")
                failed += 1
            }
        }
        #expect(parsed > 0 && failed > 0)
    }
}
