import Synchronization

/// The text of one file_contexts file (or companion file) and the path it came from.
public struct FileContextsSource: Sendable {
    public var path: String
    public var bytes: [UInt8]

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    public init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }
}

/// A context and its text as written, shared by every line that names it.
struct ContextEntry: Sendable {
    let context: SecurityContext
    let raw: String
}

/// The shared, immutable part of a loaded file_contexts: the lines, the aliases and the automaton.
///
/// The expressions are checked when the files are opened, but the automaton is built on first use (the first
/// matcher), as libselinux compiles its regular expressions on first use.
final class FileContextsCore: Sendable {
    let sources: [FileContextsSource]
    let records: [SpecificationRecord]
    let contexts: [ContextEntry]
    let aliases: FileContextsAliases
    let literals: FileContextsLiterals
    /// Per line (file order): precedence, file type (0 = any) and whether the stem is compared at lookup.
    let priority: [Int32]
    let modes: [UInt8]
    let stemChecked: [Bool]
    /// The number of automaton nodes the expressions need, counted when they were checked.
    let expectedNodes: Int
    private let automaton = Mutex<FileContextsNFA?>(nil)

    init(sources: [FileContextsSource], records: [SpecificationRecord], contexts: [ContextEntry],
         aliases: FileContextsAliases, literals: FileContextsLiterals, priority: [Int32], modes: [UInt8],
         stemChecked: [Bool], expectedNodes: Int) {
        self.sources = sources
        self.records = records
        self.contexts = contexts
        self.aliases = aliases
        self.literals = literals
        self.priority = priority
        self.modes = modes
        self.stemChecked = stemChecked
        self.expectedNodes = expectedNodes
    }

    /// The automaton of every line that is not a plain path, built on the first call.
    func nfa() -> FileContextsNFA {
        automaton.withLock { built in
            if let built { return built }
            let made = buildAutomaton()
            built = made
            return made
        }
    }

    private func buildAutomaton() -> FileContextsNFA {
        var builder = NFABuilder(expectedNodes: expectedNodes + records.count + 16)
        var starts: [Int32] = []
        var pattern: [UInt8] = []
        for (id, r) in records.enumerated() where !r.inLiteralTable {
            let start = Int(r.regexStart)
            let fragment: Fragment? = sources[Int(r.source)].bytes.withUnsafeBufferPointer { text in
                RegexCompiler.wrap(UnsafeBufferPointer(rebasing: text[start..<(start + Int(r.regexLength))]), into: &pattern)
                return pattern.withUnsafeBufferPointer { p in
                    var compiler = RegexCompiler(pattern: p)
                    // Every expression compiled when the file was opened; a failure here cannot happen, and
                    // would only leave the line out.
                    return try? compiler.compile(into: &builder)
                }
            }
            guard let fragment else { continue }
            let accept = builder.node(.accept, out: NFABuilder.none, arg: Int32(id))
            builder.patch(fragment.head, to: accept)
            starts.append(fragment.start)
        }
        return FileContextsNFA(builder: builder, starts: starts, specMode: modes, priority: priority,
                               stemChecked: stemChecked)
    }
}

/// One matcher behind a lock, for callers that do not keep their own. It is made on first use.
final class SharedFileContextsMatcher: Sendable {
    let core: FileContextsCore
    let matcher = Mutex<FileContextsMatcher?>(nil)
    init(core: FileContextsCore) { self.core = core }

    func lookup(path: [UInt8], fileType: FileType?) -> FileContextsMatch {
        let core = self.core
        return matcher.withLock { m in
            if m == nil { m = FileContextsMatcher(core: core) }
            guard let current = m else { return .noMatch }
            return current.lookup(path: path, fileType: fileType)
        }
    }
}

/// A policy's file_contexts: the default label of any path, computed exactly as libselinux's
/// `selabel_lookup_raw` computes it from the text files.
///
/// - The main file is read with its companions: `.homedirs` and `.local` add lines after the main file's, and
///   the aliases `.subs` and `.subs_dist` rewrite the path first (see `FileContextsAliases`). The compiled
///   `file_contexts.bin` is never read: svirt reads the text, which is what the `.bin` is compiled from.
/// - Precedence: lines with a regular expression (see `FileContextSpecification.hasMetaCharacters`) come first
///   and the others after them, each group in file order; of the lines that match, the last one wins. So a
///   literal path beats every expression, and a later expression beats an earlier one.
/// - A line restricted to a file type matches only that type; looking up with no type (mode 0) matches lines
///   of every type.
/// - `<<none>>` means the path gets no label.
/// - The path is cleaned first: runs of `/` become one, and a trailing `/` is dropped. `.` and `..` are not
///   resolved. A relative path has no label.
///
/// This module reads no files: hand it the text, or use `load(path:ignoreErrors:readFile:)` with a function
/// that reads one (SVirtLinux has `FileContexts.load(path:)` and `loadHost(root:)`).
public struct FileContexts: Sendable {
    let core: FileContextsCore
    let shared: SharedFileContextsMatcher
    /// Lines (and alias lines) left out under `ignoreErrors`, each with its file, line, column and reason.
    public let skipped: [SELinuxError]
    /// The files that were read, in the order they were read.
    public let files: [String]

    /// Every line, in file order: the main file, then `.homedirs`, then `.local`.
    public var specifications: [FileContextSpecification] {
        (0..<core.records.count).map { FileContextSpecification(core: core, index: $0) }
    }
    /// The number of lines.
    public var count: Int { core.records.count }
    /// The path aliases from `.subs` and `.subs_dist`.
    public var aliases: FileContextsAliases { core.aliases }

    /// Parses and compiles the files. The first bad line is an error naming its file, line and column, unless
    /// `ignoreErrors` is set: then each bad line is left out and reported in `skipped`.
    public init(main: FileContextsSource, homedirs: FileContextsSource? = nil, local: FileContextsSource? = nil,
                distributionAliases: FileContextsSource? = nil, localAliases: FileContextsSource? = nil,
                ignoreErrors: Bool = false) throws {
        var skipped: [SELinuxError] = []
        var files: [String] = []
        let sources = [main, homedirs, local].compactMap { $0 }
        var parser = FileContextsParser(ignoreErrors: ignoreErrors,
                                        expectedBytes: sources.reduce(0) { $0 + $1.bytes.count })
        for (k, source) in sources.enumerated() {
            files.append(source.path)
            try parser.parse(source, index: UInt8(k), skipped: &skipped)
        }
        var distribution: [FileContextsAliases.Rule] = [], local: [FileContextsAliases.Rule] = []
        if let d = distributionAliases {
            files.append(d.path)
            distribution = try FileContextsAliases.parse(d.bytes, path: d.path, ignoreErrors: ignoreErrors,
                                                         skipped: &skipped)
        }
        if let l = localAliases {
            files.append(l.path)
            local = try FileContextsAliases.parse(l.bytes, path: l.path, ignoreErrors: ignoreErrors, skipped: &skipped)
        }
        let aliases = FileContextsAliases(local: local, distribution: distribution)
        let core = parser.finish(sources: sources, aliases: aliases)
        self.core = core
        self.shared = SharedFileContextsMatcher(core: core)
        self.skipped = skipped
        self.files = files
    }

    /// Parses one file_contexts text with no companions.
    public init(parsing text: String, path: String = "file_contexts", ignoreErrors: Bool = false) throws {
        try self.init(main: FileContextsSource(path: path, text: text), ignoreErrors: ignoreErrors)
    }

    /// Reads `path` and its companions `path.homedirs`, `path.local`, `path.subs_dist` and `path.subs` with
    /// `readFile`, which returns a file's bytes or nil when it does not exist. The main file must exist.
    public static func load(path: String, ignoreErrors: Bool = false,
                            readFile: (String) throws -> [UInt8]?) throws -> FileContexts {
        guard let main = try readFile(path) else {
            throw SELinuxError(code: .fileUnreadable,
                               message: "cannot read file_contexts '\(path)': the file does not exist; give the path "
                                   + "of a policy's contexts/files/file_contexts", input: path, file: path)
        }
        func companion(_ suffix: String) throws -> FileContextsSource? {
            let p = "\(path).\(suffix)"
            return try readFile(p).map { FileContextsSource(path: p, bytes: $0) }
        }
        return try FileContexts(main: FileContextsSource(path: path, bytes: main),
                                homedirs: companion("homedirs"), local: companion("local"),
                                distributionAliases: companion("subs_dist"), localAliases: companion("subs"),
                                ignoreErrors: ignoreErrors)
    }

    // MARK: Lookup

    /// The line that labels `path` for a file of type `fileType` (nil: any type, libselinux's mode 0).
    public func lookup(_ path: String, fileType: FileType? = nil) -> FileContextsMatch {
        shared.lookup(path: Array(path.utf8), fileType: fileType)
    }

    /// The same for a path given as bytes (file names need not be UTF-8).
    public func lookup(path: [UInt8], fileType: FileType? = nil) -> FileContextsMatch {
        shared.lookup(path: path, fileType: fileType)
    }

    /// The default context of `path`, or nil when it has none (`<<none>>`, no matching line, or a relative path).
    public func context(for path: String, fileType: FileType? = nil) -> SecurityContext? {
        lookup(path, fileType: fileType).context
    }

    /// A matcher of its own, for a thread that looks up many paths without taking the shared lock.
    public func makeMatcher() -> FileContextsMatcher { FileContextsMatcher(core: core) }

    /// Automaton size, for diagnostics and benchmarks.
    public var automatonNodeCount: Int { core.nfa().nodeCount }
    public var byteClassCount: Int { core.nfa().classCount }
}

/// Reads file_contexts lines into specifications and one automaton.
struct FileContextsParser {
    /// Up to four fields of a line, as byte ranges relative to the line's start.
    struct Fields {
        var count = 0
        var ranges: (Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (0..<0, 0..<0, 0..<0, 0..<0)
        subscript(_ k: Int) -> Range<Int> {
            switch k {
            case 0: return ranges.0
            case 1: return ranges.1
            case 2: return ranges.2
            default: return ranges.3
            }
        }
        mutating func append(_ r: Range<Int>) {
            switch count {
            case 0: ranges.0 = r
            case 1: ranges.1 = r
            case 2: ranges.2 = r
            case 3: ranges.3 = r
            default: break
            }
            count += 1
        }
    }

    /// Parsed contexts by their text, so that each distinct context is parsed once: an open-addressing table
    /// of indices into `entries`.
    struct ContextCache {
        var slots = [Int32](repeating: -1, count: 4096)
        var hashes: [UInt64] = []
        var store: [UInt8] = []
        var spans: [(start: Int, count: Int)] = []
        var entries: [ContextEntry] = []

        static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(b.count)
            var k = 0
            let raw = UnsafeRawBufferPointer(b)
            while k + 8 <= b.count {
                h = (h ^ raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
                k += 8
            }
            while k < b.count { h = (h ^ UInt64(b[k])) &* 0x0000_0100_0000_01B3; k += 1 }
            return h ^ (h >> 32)
        }

        /// The entry for `b`, or nil; `slot` is where a new entry for it goes.
        func find(_ b: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> (entry: Int32?, slot: Int) {
            let mask = slots.count - 1
            var s = Int(truncatingIfNeeded: h) & mask
            while true {
                let e = slots[s]
                if e < 0 { return (nil, s) }
                if hashes[Int(e)] == h {
                    let span = spans[Int(e)]
                    let same = span.count == b.count && store.withUnsafeBufferPointer {
                        FileContextsParser.same(UnsafeBufferPointer(rebasing: $0[span.start..<(span.start + span.count)]), b)
                    }
                    if same { return (e, s) }
                }
                s = (s + 1) & mask
            }
        }

        mutating func insert(_ b: UnsafeBufferPointer<UInt8>, hash h: UInt64, slot: Int, _ entry: ContextEntry) -> Int32 {
            let e = Int32(entries.count)
            slots[slot] = e
            hashes.append(h)
            spans.append((store.count, b.count))
            store.append(contentsOf: b)
            entries.append(entry)
            if entries.count * 2 > slots.count { grow() }
            return e
        }

        mutating func grow() {
            slots = [Int32](repeating: -1, count: slots.count * 2)
            let mask = slots.count - 1
            for (e, h) in hashes.enumerated() {
                var s = Int(truncatingIfNeeded: h) & mask
                while slots[s] >= 0 { s = (s + 1) & mask }
                slots[s] = Int32(e)
            }
        }
    }

    let ignoreErrors: Bool
    /// Automaton nodes the checked expressions need.
    var nodes = 0
    var records: [SpecificationRecord] = []
    var contexts = ContextCache()
    var literals: FileContextsLiterals
    var pattern: [UInt8] = []

    init(ignoreErrors: Bool, expectedBytes: Int) {
        self.ignoreErrors = ignoreErrors
        literals = FileContextsLiterals(expected: expectedBytes / 80)
        records.reserveCapacity(expectedBytes / 40)
        pattern.reserveCapacity(256)
    }

    mutating func parse(_ source: FileContextsSource, index: UInt8, skipped: inout [SELinuxError]) throws {
        try source.bytes.withUnsafeBufferPointer { text in
            var start = 0
            var number = 0
            while start < text.count {
                // A NUL ends the line's text, as it ends a C string; the line itself ends at the newline, a CRLF
                // or a lone CR (libselinux reads a CR as a space, so CRLF files match it exactly).
                var end = FileContextsParser.lineEnd(text, from: start)
                let stop = end
                if end < text.count, text[end] == 0 {
                    while end < text.count, text[end] != 0x0A, text[end] != 0x0D { end += 1 }
                }
                if end + 1 < text.count, text[end] == 0x0D, text[end + 1] == 0x0A { end += 1 }
                number += 1
                let line = UnsafeBufferPointer(rebasing: text[start..<stop])
                do {
                    try parseLine(line, offset: start, number: number, file: source.path, source: index)
                } catch let e as SELinuxError {
                    if ignoreErrors { skipped.append(e) } else { throw e }
                }
                start = end + 1
            }
        }
    }

    /// The index of the first newline, carriage return or NUL at or after `start` (or the end), eight bytes at a
    /// time.
    static func lineEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let raw = UnsafeRawBufferPointer(text)
        var k = start
        while k + 8 <= text.count {
            let w = raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)
            let n = w ^ (ones &* 0x0A), r = w ^ (ones &* 0x0D)
            if ((w &- ones) & ~w & highs) | ((n &- ones) & ~n & highs) | ((r &- ones) & ~r & highs) != 0 { break }
            k += 8
        }
        while k < text.count, text[k] != 0x0A, text[k] != 0x0D, text[k] != 0 { k += 1 }
        return k
    }

    mutating func parseLine(_ line: UnsafeBufferPointer<UInt8>, offset: Int, number: Int, file: String,
                            source: UInt8) throws {
        var fields = Fields()
        var k = 0
        let n = line.count
        // The bytes of the first three fields OR-ed together, to find non-ASCII bytes in one pass.
        var seen: UInt8 = 0
        while k < n, fields.count < 4 {
            while k < n, FileContextsText.isSpace(line[k]) { k += 1 }
            if k == n { break }
            let s = k
            while k < n, !FileContextsText.isSpace(line[k]) { if fields.count < 3 { seen |= line[k] }; k += 1 }
            fields.append(s..<k)
        }
        guard fields.count > 0, line[fields[0].lowerBound] != UInt8(ascii: "#") else { return }
        func field(_ i: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: line[fields[i]]) }
        func text(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }
        func fail(_ code: SELinuxError.Code, _ column: Int, _ message: String) -> SELinuxError {
            FileContextsText.error(code, file: file, line: number, column: column, text: ArraySlice(line), message)
        }
        // libselinux refuses non-ASCII bytes in the three fields it reads.
        for i in 0..<min(3, fields.count) where seen >= 0x80 {
            let r = fields[i]
            for j in r where line[j] >= 0x80 {
                throw fail(.invalidFileContexts, j + 1, "non-ASCII byte 0x\(String(line[j], radix: 16)): "
                           + "file_contexts lines are ASCII; match such a byte with '.' or '\\xhh'")
            }
        }
        // libselinux refuses a field of 65535 bytes or more.
        for i in 0..<min(3, fields.count) where fields[i].count >= 65535 {
            throw fail(.invalidFileContexts, fields[i].lowerBound + 1, "a field of \(fields[i].count) bytes is too long: "
                       + "file_contexts fields are shorter than 65535 bytes")
        }
        guard fields.count >= 2 else {
            throw fail(.invalidFileContexts, fields[0].upperBound + 1,
                       "the line has a path expression but no context: write 'REGEX [FILETYPE] CONTEXT', e.g. "
                           + "'/srv/vm(/.*)? system_u:object_r:virt_image_t:s0', or '<<none>>' for no label")
        }
        if fields.count > 3, line[fields[3].lowerBound] != UInt8(ascii: "#") {
            throw fail(.invalidFileContexts, fields[3].lowerBound + 1,
                       "unexpected fourth field '\(text(3))': a line is 'REGEX [FILETYPE] CONTEXT'; start a "
                           + "trailing comment with '#'")
        }
        var fileType: FileType?
        let contextIndex = fields.count >= 3 ? 2 : 1
        if fields.count >= 3 {
            guard let t = FileType(field: field(1)) else {
                throw fail(.invalidFileType, fields[1].lowerBound + 1,
                           "unknown file type '\(text(1))': use one of \(FileType.fieldList), or leave it out to "
                               + "match every type")
            }
            fileType = t
        }
        let contextBytes = field(contextIndex)
        var context: Int32 = -1
        if !FileContextsParser.same(contextBytes, FileContextsParser.noneBytes) {
            let h = ContextCache.hash(contextBytes)
            let found = contexts.find(contextBytes, hash: h)
            if let e = found.entry {
                context = e
            } else {
                let t = text(contextIndex)
                do {
                    let entry = ContextEntry(context: try SecurityContext(parsing: t), raw: t)
                    context = contexts.insert(contextBytes, hash: h, slot: found.slot, entry)
                } catch let e as SELinuxError {
                    throw fail(e.code, fields[contextIndex].lowerBound + (e.position ?? 0) + 1,
                               "invalid context '\(t)': \(e.message)")
                }
            }
        }
        let id = Int32(records.count)
        let regex = field(0)
        let meta = FileContextSpecification.scanMeta(regex)
        let stem = FileContextSpecification.stemLength(regex)
        if !meta.hasMeta, FileContextsLiterals.isPlainPath(regex) {
            // A plain path: it goes to the literal table, and its stem test is implied.
            literals.insert(regex, line: id)
            records.append(SpecificationRecord(regexStart: Int32(truncatingIfNeeded: offset + fields[0].lowerBound),
                                               regexLength: Int32(truncatingIfNeeded: fields[0].count),
                                               line: Int32(truncatingIfNeeded: number),
                                               fixedPrefixLength: Int32(truncatingIfNeeded: meta.prefix),
                                               context: context, source: source, fileType: fileType?.rawValue ?? 0,
                                               hasMetaCharacters: false, stemLength: Int32(truncatingIfNeeded: stem),
                                               stemImplied: true, inLiteralTable: true))
            return
        }
        // Check the expression now; the automaton is built from it on first use.
        RegexCompiler.wrap(regex, into: &pattern)
        var counter = NodeCounter()
        var topLevelAlternation = false
        do {
            try pattern.withUnsafeBufferPointer { p in
                var compiler = RegexCompiler(pattern: p)
                _ = try compiler.compile(into: &counter)
                topLevelAlternation = compiler.topLevelAlternation
            }
        } catch let e as RegexSyntaxError {
            throw fail(.invalidRegularExpression, fields[0].lowerBound + e.offset + 1,
                       "invalid regular expression '\(text(0))': \(e.message)")
        }
        nodes += counter.count + 1
        if nodes > NFABuilder.nodeLimit {
            throw fail(.invalidFileContexts, 1, "the file_contexts files are too large for svirt's automaton "
                       + "(more than \(NFABuilder.nodeLimit) states)")
        }
        records.append(SpecificationRecord(regexStart: Int32(truncatingIfNeeded: offset + fields[0].lowerBound),
                                           regexLength: Int32(truncatingIfNeeded: fields[0].count),
                                           line: Int32(truncatingIfNeeded: number),
                                           fixedPrefixLength: Int32(truncatingIfNeeded: meta.prefix),
                                           context: context, source: source, fileType: fileType?.rawValue ?? 0,
                                           hasMetaCharacters: meta.hasMeta, stemLength: Int32(truncatingIfNeeded: stem),
                                           stemImplied: FileContextsParser.stemImplied(regex, stem: stem,
                                                                                       topLevelAlternation: topLevelAlternation),
                                           inLiteralTable: false))
    }

    /// Whether every path the expression matches has the expression's stem as its own stem, so that
    /// libselinux's stem test can be skipped. True without a stem. With one, true when the stem has no `\\`,
    /// the `/` after it is not quantified, and no top-level `|` lets part of the expression float; then the
    /// match starts with the stem's bytes and that `/`. Other lines (rare) are tested at lookup.
    static func stemImplied(_ regex: UnsafeBufferPointer<UInt8>, stem: Int, topLevelAlternation: Bool) -> Bool {
        if stem == 0 { return true }
        if topLevelAlternation { return false }
        for k in 0..<stem where regex[k] == UInt8(ascii: "\\") { return false }
        if stem + 1 < regex.count, RegexCompiler.mayQuantify(regex[stem + 1]) { return false }
        return true
    }

    static let noneBytes: [UInt8] = Array("<<none>>".utf8)

    static func same(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count where a[k] != b[k] { return false }
        return true
    }

    static func same(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Bool {
        b.withUnsafeBufferPointer { same(a, $0) }
    }

    /// libselinux's `sort_specs`: expressions first, then literal paths, each group in file order; the last
    /// match in that order wins, so a line's precedence is its position in it.
    func finish(sources: [FileContextsSource], aliases: FileContextsAliases) -> FileContextsCore {
        let metaCount = records.reduce(0) { $0 + ($1.hasMetaCharacters ? 1 : 0) }
        var nextMeta: Int32 = 0, nextLiteral = Int32(metaCount)
        var priority: [Int32] = []
        priority.reserveCapacity(records.count)
        var modes: [UInt8] = []
        modes.reserveCapacity(records.count)
        var stemChecked: [Bool] = []
        stemChecked.reserveCapacity(records.count)
        for r in records {
            stemChecked.append(!r.stemImplied)
            if r.hasMetaCharacters {
                priority.append(nextMeta); nextMeta += 1
            } else {
                priority.append(nextLiteral); nextLiteral += 1
            }
            modes.append(r.fileType)
        }
        var literals = self.literals
        literals.finish(priority: priority, modes: modes)
        return FileContextsCore(sources: sources, records: records, contexts: contexts.entries, aliases: aliases,
                                literals: literals, priority: priority, modes: modes, stemChecked: stemChecked,
                                expectedNodes: nodes)
    }
}
