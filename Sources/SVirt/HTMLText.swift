/// Text made safe for HTML and SVG: element content and attribute values in either quote. The reports of
/// `svirt check` and `svirt xen matrix` use it; a newline in an attribute stays a line break in a tooltip.
public enum HTMLText {
    /// `s` with `& < > " '` and newlines replaced by character references.
    public static func escape(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.utf8.count)
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            case "\n": o += "&#10;"
            default: o.append(ch)
            }
        }
        return o
    }
}
