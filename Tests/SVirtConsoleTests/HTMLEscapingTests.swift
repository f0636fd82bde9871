import SVirt
import Testing
@testable import SVirtConsole

/// True when `needle`'s UTF-8 bytes occur in `haystack`'s. String's own `contains` compares Characters, under which
/// `"` followed by U+0301 is not `"`: exactly the confusion these tests are about.
func containsBytes(_ haystack: String, _ needle: String) -> Bool {
    let h = Array(haystack.utf8), n = Array(needle.utf8)
    guard !n.isEmpty, h.count >= n.count else { return n.isEmpty }
    for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<(i + n.count)]) == n { return true }
    return false
}

@Suite("HTML escaping works on Unicode scalars")
struct HTMLEscapingTests {
    /// Each special character followed by a combining acute accent: one Character, but the browser's tokenizer sees
    /// the special character.
    static let combined: [(input: String, escaped: String)] = [
        ("\"\u{301}", "&quot;\u{301}"), ("<\u{301}", "&lt;\u{301}"), ("&\u{301}", "&amp;\u{301}"), ("'\u{301}", "&#39;\u{301}"),
        (">\u{301}", "&gt;\u{301}"), ("\n\u{301}", "&#10;\u{301}"),
    ]

    @Test("a special character followed by U+0301 is escaped by HTMLText (the matrix reports' escaper) and by the console",
          arguments: combined.indices)
    func combiningMark(index: Int) {
        let (input, escaped) = Self.combined[index]
        #expect(Array(HTMLText.escape(input).unicodeScalars) == Array(escaped.unicodeScalars))
        #expect(Array(HTML.escape(input).unicodeScalars) == Array(escaped.unicodeScalars))
        #expect(Array(HTML.escape(input[...]).unicodeScalars) == Array(escaped.unicodeScalars), "a Substring too")
    }

    @Test("an attribute built from a hostile name keeps one attribute: no quote, angle bracket or bare ampersand is left")
    func attributeInjection() {
        let name = "vm\"\u{301} autofocus onfocus=alert(1) x='\u{301}<\u{301}b>&\u{301}amp;"
        let escaped = HTMLText.escape(name)
        for byte in escaped.utf8 {
            #expect(byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "'") && byte != UInt8(ascii: "<") && byte != UInt8(ascii: ">"))
        }
        // Every '&' starts one of the references escape writes.
        let scalars = Array(escaped.unicodeScalars)
        for (i, s) in scalars.enumerated() where s == "&" {
            let rest = scalars[i...]
            #expect(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#10;"].contains { rest.starts(with: $0.unicodeScalars) },
                    "\(String(String.UnicodeScalarView(rest.prefix(6))))")
        }
        #expect(HTMLText.escape("plain é text") == "plain é text")
        #expect(HTMLText.escape("a\r\nb") == "a\r&#10;b", "CR LF is one Character; its LF is still escaped")
    }
}
