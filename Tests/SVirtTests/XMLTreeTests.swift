import Testing
@testable import SVirt

@Suite("hardened XML reader") struct XMLTreeTests {
    func message(_ text: String, limits: XMLLimits = .domain) -> String? {
        do {
            _ = try XMLTree(parsing: text, limits: limits)
            return nil
        } catch let e as SVirtError {
            #expect(e.code == .invalidDomain)
            return e.message
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test("a document round-trips byte for byte, with comments, CDATA, PIs and both quote styles")
    func roundTrip() throws {
        let text = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- a comment before the root -->
        <domain type='kvm' xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
          <name>vm</name>
          <metadata><app:x xmlns:app="urn:x" a="1 &amp; 2">text &lt;here&gt;</app:x></metadata>
          <description><![CDATA[raw <text> & more]]></description>
          <?pi some data?>
          <empty/>
        </domain>

        """
        let tree = try XMLTree(parsing: text)
        #expect(tree.xmlText == text)
        #expect(tree.root.name == "domain")
        #expect(tree.root.element(named: "metadata")?.elements.first?[attribute: "a"] == "1 & 2")
        #expect(tree.root.element(named: "description")?.text == "raw <text> & more")
    }

    @Test("character references and the five predefined entities are decoded")
    func references() throws {
        let tree = try XMLTree(parsing: "<a v='&#x41;&#66;&lt;&gt;&amp;&apos;&quot;'>&#x263A;</a>")
        #expect(tree.root[attribute: "v"] == "AB<>&'\"")
        #expect(tree.root.text == "\u{263A}")
    }

    @Test("a DOCTYPE is refused, so no DTD or external entity is ever read")
    func doctype() {
        let xxe = """
        <?xml version="1.0"?>
        <!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/shadow">]>
        <domain type='kvm'><name>&xxe;</name></domain>
        """
        let m = message(xxe)
        #expect(m?.contains("line 2 column 1") == true)
        #expect(m?.contains("<!DOCTYPE> is not accepted") == true)
    }

    @Test("an undefined entity is refused with its name")
    func undefinedEntity() {
        #expect(message("<a>&xxe;</a>")?.contains("the entity '&xxe;' in <a> is not defined") == true)
        #expect(message("<a>AT&T</a>")?.contains("does not start a reference") == true)
    }

    @Test("markup declarations inside elements are refused")
    func declarationsInside() {
        #expect(message("<a><!ENTITY x 'y'></a>")?.contains("markup declarations") == true)
    }

    @Test("nesting deeper than the limit is refused before it can exhaust the stack")
    func depth() {
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        #expect(message(deep)?.contains("nested more than 64 levels") == true)
        let ok = String(repeating: "<a>", count: 64) + String(repeating: "</a>", count: 64)
        #expect(message(ok) == nil)
    }

    @Test("documents larger than the limit are refused without being parsed")
    func size() {
        let big = "<a>" + String(repeating: "x", count: 2000) + "</a>"
        #expect(message(big, limits: XMLLimits(maxBytes: 1000))?.contains("more than the 1000 bytes") == true)
    }

    @Test("too many nodes or attributes are refused")
    func counts() {
        let many = "<a>" + String(repeating: "<b/>", count: 50) + "</a>"
        #expect(message(many, limits: XMLLimits(maxNodes: 20))?.contains("more than 20 XML nodes") == true)
        let attrs = "<a " + (0..<10).map { "x\($0)='1'" }.joined(separator: " ") + "/>"
        #expect(message(attrs, limits: XMLLimits(maxAttributes: 5))?.contains("more than 5 attributes") == true)
    }

    @Test("malformed markup names the line, column and the problem")
    func malformed() {
        #expect(message("<domain>\n  <name>x</nam>\n</domain>")?.contains("line 2 column 10: </nam> does not match <name> opened on line 2") == true)
        #expect(message("<a b='1' b='2'/>")?.contains("has the attribute 'b' twice") == true)
        #expect(message("<a b=1/>")?.contains("must be in quotes") == true)
        #expect(message("<a>")?.contains("<a> is not closed") == true)
        #expect(message("<a></a><b/>")?.contains("after the end of <a>") == true)
        #expect(message("")?.contains("no root element") == true)
        #expect(message("<a b='<'/>")?.contains("'<' is not allowed") == true)
        #expect(message("<a>\u{1}</a>")?.contains("control character 0x1") == true)
        #expect(message("<?xml version='1.0' encoding='ISO-8859-1'?><a/>")?.contains("encoding 'iso-8859-1'") == true)
        #expect(message(" <?xml version='1.0'?><a/>")?.contains("may only appear at the very start") == true)
        #expect(message("<a><!-- open</a>")?.contains("comment is not closed") == true)
    }

    @Test("attribute values are normalised and written back escaped")
    func attributeEscaping() throws {
        let tree = try XMLTree(parsing: "<a v=\"x\ty\n&#10;'q'\"/>")
        #expect(tree.root[attribute: "v"] == "x y \n'q'")
        let again = try XMLTree(parsing: tree.xmlText)
        #expect(again.root[attribute: "v"] == "x y \n'q'")
    }
}
