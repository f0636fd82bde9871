/// Line and field splitting shared by the file_contexts readers, with libselinux's rules: lines end at `\n`,
/// a NUL ends a line's text (the C string stops there), and fields are separated by C `isspace` bytes.
enum FileContextsText {
    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// The lines of `text` as array slices, without their `\n`, `\r\n` or lone `\r`.
    static func lines(_ text: some Collection<UInt8>) -> [ArraySlice<UInt8>] {
        let bytes = Array(text)
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        bytes.withUnsafeBufferPointer { p in
            var k = 0
            while k < p.count {
                if p[k] == 0x0A || p[k] == 0x0D {
                    out.append(bytes[start..<k])
                    if p[k] == 0x0D, k + 1 < p.count, p[k + 1] == 0x0A { k += 1 }
                    start = k + 1
                }
                k += 1
            }
        }
        if start < bytes.count { out.append(bytes[start..<bytes.count]) }
        return out.map { line in
            if let z = line.firstIndex(of: 0) { return line[line.startIndex..<z] }
            return line
        }
    }

    /// The fields of a line, as index ranges relative to the line's start (so `range.lowerBound + 1` is the
    /// field's column).
    static func fields(_ line: ArraySlice<UInt8>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let base = line.startIndex
        var k = base
        let end = line.endIndex
        while k < end {
            while k < end, isSpace(line[k]) { k += 1 }
            if k == end { break }
            let s = k
            while k < end, !isSpace(line[k]) { k += 1 }
            out.append((s - base)..<(k - base))
        }
        return out
    }

    /// An error for `file:line:column`, with the line's text as input.
    static func error(_ code: SELinuxError.Code, file: String, line: Int, column: Int, text: ArraySlice<UInt8>,
                      _ message: String) -> SELinuxError {
        let shown = String(decoding: text.prefix(300), as: UTF8.self)
        return SELinuxError(code: code, message: "\(file):\(line):\(column): \(message)", input: shown,
                            position: column - 1, file: file, line: line, column: column)
    }
}

extension ArraySlice<UInt8> {
    /// The bytes of a field range given relative to the slice's start.
    subscript(relative r: Range<Int>) -> ArraySlice<UInt8> {
        self[(startIndex + r.lowerBound)..<(startIndex + r.upperBound)]
    }
}
