/// One line of a file_contexts file as stored: plain numbers, so that loading and freeing thousands of them
/// costs no reference counting.
struct SpecificationRecord {
    var regexStart: Int32
    var regexLength: Int32
    var line: Int32
    var fixedPrefixLength: Int32
    /// Index into the core's contexts, -1 for `<<none>>`.
    var context: Int32
    /// 0: main file, 1: `.homedirs`, 2: `.local` (index into the core's sources).
    var source: UInt8
    /// 0: any type, else `FileType.rawValue`.
    var fileType: UInt8
    var hasMetaCharacters: Bool
    /// libselinux's stem: the expression's text before its first `/` after the first byte, when that text has
    /// no meta character (0: no stem). libselinux tries a line with a stem only on paths whose own stem (the
    /// text before the second `/`) is the same text.
    var stemLength: Int32
    /// Whether matching the expression already implies the stem test (see `FileContextsParser.stemImplied`).
    var stemImplied: Bool
    /// A plain path, kept in `FileContextsLiterals` rather than in the automaton.
    var inLiteralTable: Bool
}

/// One line of a file_contexts file: `regex [filetype] context|<<none>>`.
public struct FileContextSpecification: Sendable, Hashable, CustomStringConvertible {
    let core: FileContextsCore
    /// Position in file order over the main file, then `.homedirs`, then `.local`.
    public let index: Int

    init(core: FileContextsCore, index: Int) {
        self.core = core
        self.index = index
    }

    var record: SpecificationRecord { core.records[index] }

    /// The regular expression as written.
    public var regex: String {
        let r = record
        let start = Int(r.regexStart)
        return String(decoding: core.sources[Int(r.source)].bytes[start..<(start + Int(r.regexLength))], as: UTF8.self)
    }
    /// The file type the line is restricted to, nil for any type.
    public var fileType: FileType? { FileType(rawValue: record.fileType) }
    /// The context, nil for `<<none>>` (the file gets no label).
    public var context: SecurityContext? {
        let c = record.context
        return c < 0 ? nil : core.contexts[Int(c)].context
    }
    /// The context as written (what libselinux returns), or `<<none>>`.
    public var rawContext: String {
        let c = record.context
        return c < 0 ? "<<none>>" : core.contexts[Int(c)].raw
    }
    /// The file the line is in.
    public var file: String { core.sources[Int(record.source)].path }
    /// The line's 1-based number in `file`.
    public var line: Int { Int(record.line) }
    /// libselinux's test for "this is a regular expression": a `. ^ $ ? * + | [ ( {` outside an escape.
    /// Lines without one are tried after every regular expression, so they win over them.
    public var hasMetaCharacters: Bool { record.hasMetaCharacters }
    /// The literal text before the first meta character (libselinux's `prefix_len`).
    public var fixedPrefixLength: Int { Int(record.fixedPrefixLength) }

    /// The line as a file_contexts line.
    public var description: String {
        if let t = fileType { return "\(regex)\t\(t.field)\t\(rawContext)" }
        return "\(regex)\t\(rawContext)"
    }

    /// Where the line is, as `file:line`.
    public var source: String { "\(file):\(line)" }

    public static func == (a: FileContextSpecification, b: FileContextSpecification) -> Bool {
        a.index == b.index && a.regex == b.regex && a.fileType == b.fileType && a.rawContext == b.rawContext
            && a.file == b.file && a.line == b.line
    }

    public func hash(into h: inout Hasher) {
        h.combine(index); h.combine(regex); h.combine(rawContext); h.combine(line)
    }

    /// libselinux's stem of an expression (`get_stem_from_spec`): its length, or 0.
    static func stemLength(_ regex: UnsafeBufferPointer<UInt8>) -> Int {
        guard regex.count > 1, let slash = regex[1...].firstIndex(of: UInt8(ascii: "/")) else { return 0 }
        for k in 0..<slash {
            switch regex[k] {
            case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "?"), UInt8(ascii: "*"),
                 UInt8(ascii: "+"), UInt8(ascii: "|"), UInt8(ascii: "["), UInt8(ascii: "("), UInt8(ascii: "{"):
                return 0
            default:
                break
            }
        }
        return slash
    }

    /// libselinux's meta character scan (`spec_hasMetaChars`): a backslash skips the byte after it.
    static func scanMeta(_ regex: UnsafeBufferPointer<UInt8>) -> (hasMeta: Bool, prefix: Int) {
        var k = 0
        while k < regex.count {
            switch regex[k] {
            case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "?"), UInt8(ascii: "*"),
                 UInt8(ascii: "+"), UInt8(ascii: "|"), UInt8(ascii: "["), UInt8(ascii: "("), UInt8(ascii: "{"):
                return (true, k)
            case UInt8(ascii: "\\"):
                k += 1
            default:
                break
            }
            k += 1
        }
        return (false, regex.count)
    }
}

/// What a lookup found.
public enum FileContextsMatch: Sendable, Hashable {
    /// A line matched and gives this context.
    case labeled(FileContextSpecification)
    /// A `<<none>>` line matched: the path gets no label.
    case noLabel(FileContextSpecification)
    /// No line matched (or the path is relative or empty).
    case noMatch

    /// The context, if the path gets one.
    public var context: SecurityContext? {
        if case .labeled(let s) = self { return s.context }
        return nil
    }

    /// The line that decided, if any.
    public var specification: FileContextSpecification? {
        switch self {
        case .labeled(let s), .noLabel(let s): return s
        case .noMatch: return nil
        }
    }

    /// The context as libselinux returns it, or `<<none>>` when the path gets no label.
    public var rawContext: String {
        if case .labeled(let s) = self { return s.rawContext }
        return "<<none>>"
    }
}
