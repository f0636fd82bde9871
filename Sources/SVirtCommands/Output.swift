import Foundation

/// Prints an `Encodable` value as pretty, key-sorted JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try enc.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Writes a line to stderr.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Left-aligned columns, like virsh's tables.
func table(_ header: [String], _ rows: [[String]], indent: String = " ") -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        var s = indent
        for (i, c) in cells.enumerated() {
            s += i == cells.count - 1 ? c : c.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0)
        }
        return s
    }
    var out = [line(header), "-" + String(repeating: "-", count: widths.reduce(0, +) + 3 * max(0, widths.count - 1) + indent.count)]
    out += rows.map(line)
    return out.joined(separator: "\n")
}
