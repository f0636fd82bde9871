/// The path alias files that come with file_contexts: `file_contexts.subs_dist` (from the distribution) and
/// `file_contexts.subs` (local). Each line `ALIAS TARGET` says that paths under ALIAS are labelled as the same
/// paths under TARGET: with `/var/run /run`, `/var/run/x` is looked up as `/run/x`.
///
/// The rules are libselinux's: an alias matches whole leading components only (`/var/run` rewrites `/var/run`
/// and `/var/run/x`, not `/var/runx`); when several lines match, the last one in the file wins; one rewrite is
/// made per file, first with `.subs`, then `.subs_dist` on the result; and a rewritten path is not cleaned again.
public struct FileContextsAliases: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        public var alias: String
        public var target: String
        public var file: String
        public var line: Int
        let aliasBytes: [UInt8]
        let targetBytes: [UInt8]

        public init(alias: String, target: String, file: String = "", line: Int = 0) {
            self.init(alias: Array(alias.utf8), target: Array(target.utf8), file: file, line: line)
        }

        init(alias: [UInt8], target: [UInt8], file: String, line: Int) {
            self.alias = String(decoding: alias, as: UTF8.self)
            self.target = String(decoding: target, as: UTF8.self)
            self.file = file
            self.line = line
            aliasBytes = alias
            targetBytes = target
        }
    }

    /// The rules of one file packed for lookups: byte strings in one buffer, no per-rule references.
    struct Table: Sendable, Hashable {
        var bytes: [UInt8] = []
        /// Per rule: alias start, alias length, target start, target length.
        var spans: [Int] = []
        var count: Int { spans.count / 4 }

        init(_ rules: [Rule]) {
            for r in rules {
                spans.append(bytes.count); spans.append(r.aliasBytes.count)
                bytes += r.aliasBytes
                spans.append(bytes.count); spans.append(r.targetBytes.count)
                bytes += r.targetBytes
            }
        }

        /// The last rule whose alias is `key` or a leading run of whole components of it.
        func lastMatch(_ key: UnsafeBufferPointer<UInt8>) -> Int? {
            bytes.withUnsafeBufferPointer { b in
                spans.withUnsafeBufferPointer { sp in
                    var k = sp.count / 4 - 1
                    while k >= 0 {
                        let start = sp[4 * k], n = sp[4 * k + 1]
                        k -= 1
                        guard key.count >= n, n > 0 else { continue }
                        if key.count > n, key[n] != UInt8(ascii: "/") { continue }
                        var same = true
                        var j = n - 1
                        while j >= 0 { if key[j] != b[start + j] { same = false; break }; j -= 1 }
                        if same { return k + 1 }
                    }
                    return nil
                }
            }
        }

        /// Writes the target and the rest of `key` after the alias to `out`. When the target is `/` itself,
        /// the `/` after the alias is dropped, as libselinux does.
        func apply(_ rule: Int, _ key: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
            let aliasLength = spans[4 * rule + 1]
            let targetStart = spans[4 * rule + 2], targetLength = spans[4 * rule + 3]
            var rest = aliasLength
            let targetIsRoot = targetLength == 1 && bytes[targetStart] == UInt8(ascii: "/")
            if targetIsRoot, key.count > rest, key[rest] == UInt8(ascii: "/") { rest += 1 }
            out.append(contentsOf: bytes[targetStart..<(targetStart + targetLength)])
            out.append(contentsOf: UnsafeBufferPointer(rebasing: key[rest...]))
        }
    }

    /// `.subs` lines, in file order.
    public let local: [Rule]
    /// `.subs_dist` lines, in file order.
    public let distribution: [Rule]
    let localTable: Table
    let distributionTable: Table

    public init(local: [Rule] = [], distribution: [Rule] = []) {
        self.local = local
        self.distribution = distribution
        localTable = Table(local)
        distributionTable = Table(distribution)
    }

    public var isEmpty: Bool { local.isEmpty && distribution.isEmpty }

    /// Whether an alias rewrites `key`.
    func applies(to key: UnsafeBufferPointer<UInt8>) -> Bool {
        localTable.lastMatch(key) != nil || distributionTable.lastMatch(key) != nil
    }

    /// Reads an alias file. Lines are `ALIAS TARGET`; blank lines and lines starting with `#` are skipped.
    /// A line with one path, or with a third field that is not a `#` comment, is an error with its file and
    /// line, or, with `ignoreErrors`, is reported in `skipped` and left out.
    public static func parse(_ text: some Collection<UInt8>, path: String, ignoreErrors: Bool = false,
                             skipped: inout [SELinuxError]) throws -> [Rule] {
        var rules: [Rule] = []
        var lineNumber = 0
        for line in FileContextsText.lines(text) {
            lineNumber += 1
            let ranges = FileContextsText.fields(line)
            let fields = ranges.map { line[relative: $0] }
            if fields.isEmpty || fields[0].first == UInt8(ascii: "#") { continue }
            var problem: (column: Int, message: String)?
            if fields.count == 1 {
                problem = (ranges[0].upperBound + 1, "alias '\(String(decoding: fields[0], as: UTF8.self))' "
                           + "has no target: write 'ALIAS TARGET', e.g. '/var/run /run'")
            } else if fields.count > 2, fields[2].first != UInt8(ascii: "#") {
                problem = (ranges[2].lowerBound + 1, "unexpected third field "
                           + "'\(String(decoding: fields[2], as: UTF8.self))': an alias line is 'ALIAS TARGET'")
            }
            if let problem {
                let e = FileContextsText.error(.invalidFileContexts, file: path, line: lineNumber, column: problem.column,
                                               text: line, problem.message)
                if ignoreErrors { skipped.append(e); continue }
                throw e
            }
            rules.append(Rule(alias: Array(fields[0]), target: Array(fields[1]), file: path,
                              line: lineNumber))
        }
        return rules
    }

    /// The path `path` is looked up as, or nil when no alias applies.
    public func rewrite(_ path: String) -> String? {
        var out: [UInt8] = []
        let changed = Array(path.utf8).withUnsafeBufferPointer { rewrite($0, into: &out) }
        return changed ? String(decoding: out, as: UTF8.self) : nil
    }

    /// Writes the rewritten path to `out` and returns true, or returns false when no alias applies.
    func rewrite(_ key: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        if let rule = localTable.lastMatch(key) {
            var first: [UInt8] = []
            localTable.apply(rule, key, into: &first)
            out.removeAll(keepingCapacity: true)
            first.withUnsafeBufferPointer { k in
                if let d = distributionTable.lastMatch(k) {
                    distributionTable.apply(d, k, into: &out)
                } else {
                    out.append(contentsOf: k)
                }
            }
            return true
        }
        if let rule = distributionTable.lastMatch(key) {
            out.removeAll(keepingCapacity: true)
            distributionTable.apply(rule, key, into: &out)
            return true
        }
        return false
    }
}
