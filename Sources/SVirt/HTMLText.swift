/// Text made safe for HTML and SVG: element content and attribute values in either quote. The reports of
/// `svirt check` and `svirt xen matrix` and the web console use it; a newline in an attribute stays a line break in
/// a tooltip.
public enum HTMLText {
    /// `s` with `& < > " '` and newlines replaced by character references.
    ///
    /// The text is escaped one Unicode scalar at a time, never one `Character`: a `"` followed by a combining mark
    /// (U+0301) is a single grapheme cluster that is not equal to `"`, yet the browser's tokenizer still sees the
    /// quote and ends the attribute.
    public static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { needsEscape($0) }) else { return s }
        var o = ""
        o.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            case "\n": o += "&#10;"
            default: o.unicodeScalars.append(scalar)
            }
        }
        return o
    }

    /// True for the bytes `escape` replaces. They are ASCII, so they never occur inside a multi-byte UTF-8
    /// sequence.
    static func needsEscape(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\n"): true
        default: false
        }
    }
}
