import Foundation
import SVirtTestSupport
import SELinux
import SVirtLinux
import Testing

/// Differential tests against libselinux: svirt's `FileContexts` must give the same answer as
/// `selabel_lookup_raw` for every path on the root file system and for generated edge cases, on the Debian
/// policies' file_contexts and on random ones. The oracle is Tests/Oracles/fcontext_oracle.c, compiled here
/// with cc against the system libselinux (Debian: libselinux1-dev, gcc).
@Suite("file_contexts against libselinux", .enabled(if: Oracle.available, "needs cc and libselinux1-dev"))
struct FileContextsOracleTests {
    @Test("the default policy's file_contexts: every path on / and the edge cases match libselinux")
    func defaultPolicy() throws {
        try compareHostPolicy("default")
    }

    @Test("the mls policy's file_contexts: every path on / and the edge cases match libselinux")
    func mlsPolicy() throws {
        try compareHostPolicy("mls")
    }

    @Test("random file_contexts with random aliases match libselinux", arguments: [1, 2, 3])
    func random(seed: Int) throws {
        let base = UInt64(ProcessInfo.processInfo.environment["SVIRT_FCONTEXT_SEED"].flatMap { UInt64($0) } ?? 0)
        var rng = SeededRandom(seed: base &+ UInt64(seed) &* 0x9E37_79B9)
        let files = RandomFileContexts.make(&rng)
        let dir = try Oracle.TemporaryDirectory()
        for (suffix, text) in files.texts { try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir.path)/file_contexts\(suffix)")) }
        var records = RandomFileContexts.paths(&rng, count: 30_000)
        records += EdgeCases.make(from: records.prefix(3_000).map(\.path), aliases: files.aliasSources,
                                  relative: false, rng: &rng)
        try compare(fileContexts: "\(dir.path)/file_contexts", records: records,
                    what: "random file_contexts (seed \(base &+ UInt64(seed) &* 0x9E37_79B9))")
        // Relative paths are where svirt departs from libselinux on purpose: libselinux labels one when an
        // expression matches it (these files have '.*' and top-level '|'), svirt gives no label.
        let fc = try FileContexts.load(path: "\(dir.path)/file_contexts")
        for r in records.prefix(2_000) where r.path.first == UInt8(ascii: "/") {
            #expect(fc.lookup(path: Array(r.path.dropFirst())) == .noMatch)
        }
    }

    func compareHostPolicy(_ type: String) throws {
        let source = "/etc/selinux/\(type)/contexts/files/file_contexts"
        guard FileManager.default.fileExists(atPath: source) else {
            Issue.record("\(source) is missing: install selinux-policy-\(type)")
            return
        }
        // Copy the text files only, so that libselinux cannot prefer file_contexts.bin.
        let dir = try Oracle.TemporaryDirectory()
        var aliasSources: [String] = []
        for suffix in ["", ".homedirs", ".local", ".subs_dist", ".subs"] where FileManager.default.fileExists(atPath: source + suffix) {
            try FileManager.default.copyItem(atPath: source + suffix, toPath: "\(dir.path)/file_contexts\(suffix)")
            if suffix.hasPrefix(".subs"), let text = try? String(contentsOfFile: source + suffix, encoding: .utf8) {
                aliasSources += text.split(separator: "\n").compactMap { line in
                    let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    return f.count >= 2 && !f[0].hasPrefix("#") ? String(f[0]) : nil
                }
            }
        }
        var records = try Oracle.rootFileSystem()
        #expect(records.count > 1_000, "find / -xdev listed only \(records.count) paths")
        var rng = SeededRandom(seed: 0x5EED_F11E)
        let sample = stride(from: 0, to: records.count, by: max(1, records.count / 4_000)).map { records[$0].path }
        records += EdgeCases.make(from: sample, aliases: aliasSources, relative: true, rng: &rng)
        try compare(fileContexts: "\(dir.path)/file_contexts", records: records, what: "\(type) policy")
    }

    func compare(fileContexts path: String, records: [Oracle.Record], what: String) throws {
        let expected = try Oracle.lookup(fileContexts: path, records: records)
        try #require(expected.count == records.count, "the oracle answered \(expected.count) of \(records.count) lookups")
        let fc = try FileContexts.load(path: path)
        let matcher = fc.makeMatcher()
        var mismatches: [String] = []
        var count = 0
        for (k, r) in records.enumerated() {
            let got = matcher.lookup(path: r.path, fileType: FileType(mode: r.mode)).rawContext
            if Array(got.utf8) != expected[k] {
                count += 1
                if mismatches.count < 20 {
                    mismatches.append("\(Oracle.show(r.path)) mode \(String(r.mode, radix: 8)): libselinux "
                                      + "\(String(decoding: expected[k], as: UTF8.self)), svirt \(got)")
                }
            }
        }
        #expect(count == 0, "\(what): \(count) of \(records.count) lookups differ:\n\(mismatches.joined(separator: "\n"))")
    }
}

/// The libselinux oracle and the inputs it is run on.
enum Oracle {
    struct Record { var mode: UInt32; var path: [UInt8] }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let compiler = ["/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool {
        compiler != nil && FileManager.default.fileExists(atPath: "/usr/include/selinux/label.h")
    }

    /// The oracle executable, compiled into the build directory (again when the source is newer), under a
    /// temporary name that is then renamed, so concurrent test processes never run a half-written file.
    static let executable: Result<String, OracleError> = {
        guard let cc = compiler else { return .failure(OracleError("no C compiler")) }
        let dir = "\(repository)/.build/oracles"
        let source = "\(repository)/Tests/Oracles/fcontext_oracle.c"
        let out = "\(dir)/fcontext_oracle"
        let fm = FileManager.default
        if let built = (try? fm.attributesOfItem(atPath: out))?[.modificationDate] as? Date,
           let written = (try? fm.attributesOfItem(atPath: source))?[.modificationDate] as? Date, built >= written {
            return .success(out)
        }
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let temporary = "\(out).\(getpid())"
            let status = try run([cc, "-O2", "-o", temporary, source, "-lselinux"], stdinPath: nil, stdoutPath: nil)
            guard status == 0 else { return .failure(OracleError("cc failed to build the oracle (status \(status))")) }
            guard rename(temporary, out) == 0 else { return .failure(OracleError("cannot rename \(temporary)")) }
            return .success(out)
        } catch {
            return .failure(OracleError("cannot build the oracle: \(error)"))
        }
    }()

    /// libselinux's answers, one per record, as raw bytes.
    static func lookup(fileContexts: String, records: [Record]) throws -> [[UInt8]] {
        let exe = try executable.get()
        let dir = try TemporaryDirectory()
        var input: [UInt8] = []
        input.reserveCapacity(records.count * 64)
        for r in records {
            input += Array(String(r.mode, radix: 8).utf8)
            input.append(0x20)
            input += r.path
            input.append(0)
        }
        try Data(input).write(to: URL(fileURLWithPath: "\(dir.path)/in"))
        let status = try run([exe, fileContexts], stdinPath: "\(dir.path)/in", stdoutPath: "\(dir.path)/out")
        guard status == 0 else { throw OracleError("the oracle exited with status \(status)") }
        let out = Array(FileManager.default.contents(atPath: "\(dir.path)/out") ?? Data())
        return out.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { Array($0) }
    }

    /// Every path on the root file system with its lstat type, from `find / -xdev`, listed once per process.
    static func rootFileSystem() throws -> [Record] { try rootListing.get() }

    static let rootListing: Result<[Record], OracleError> = {
        do { return .success(try listRoot()) } catch { return .failure(OracleError("find / failed: \(error)")) }
    }()

    static func listRoot() throws -> [Record] {
        let dir = try TemporaryDirectory()
        _ = try run(["/usr/bin/find", "/", "-xdev", "-printf", "%y %p\\0"], stdinPath: nil, stdoutPath: "\(dir.path)/find")
        let data = Array(FileManager.default.contents(atPath: "\(dir.path)/find") ?? Data())
        let modes: [UInt8: UInt32] = [UInt8(ascii: "f"): 0o100000, UInt8(ascii: "d"): 0o040000,
                                      UInt8(ascii: "l"): 0o120000, UInt8(ascii: "p"): 0o010000,
                                      UInt8(ascii: "s"): 0o140000, UInt8(ascii: "c"): 0o020000,
                                      UInt8(ascii: "b"): 0o060000]
        return data.split(separator: 0).compactMap { rec in
            guard rec.count > 2, let m = modes[rec[rec.startIndex]] else { return nil }
            return Record(mode: m, path: Array(rec.dropFirst(2)))
        }
    }

    static func run(_ argv: [String], stdinPath: String?, stdoutPath: String?) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardInput = try stdinPath.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        if let stdoutPath {
            _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        } else {
            p.standardOutput = FileHandle.nullDevice
        }
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    static func show(_ path: [UInt8]) -> String {
        var s = "'"
        for b in path {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "'") { s.append(Character(UnicodeScalar(b))) } else { s += "\\x" + String(b, radix: 16) }
        }
        if s.count > 200 { s = String(s.prefix(200)) + "…" }
        return s + "'"
    }

    struct OracleError: Error, Sendable, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    final class TemporaryDirectory: Sendable {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "svirt-oracle-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }
}


/// Paths that exercise the cleaning and alias rules, built from real or generated paths.
enum EdgeCases {
    static let modes: [UInt32] = [0, 0o100000, 0o040000, 0o120000, 0o010000, 0o140000, 0o020000, 0o060000]

    /// Edge cases from `sample`. Relative paths (and the empty path) are included only when `relative` is set:
    /// libselinux labels a relative path that an expression matches, and svirt never labels one, so they are
    /// compared only on files whose expressions all start with '/' (the Debian policies), where both say none.
    static func make(from sample: [[UInt8]], aliases: [String], relative: Bool,
                     rng: inout SeededRandom) -> [Oracle.Record] {
        var paths: [[UInt8]] = [Array("/".utf8), Array("//".utf8), Array("///".utf8), Array("/\n".utf8)]
        if relative {
            paths += [[], Array(".".utf8), Array("relative/path".utf8), Array("usr/bin/ls".utf8), [0x0A]]
        }
        for a in aliases {
            let b = Array(a.utf8)
            paths += [b, b + Array("/".utf8), b + Array("/x".utf8), b + Array("x".utf8), b + Array("//x//".utf8),
                      Array("/".utf8) + b, b + Array("/../x".utf8), b + [0x0A], b + Array("/x\n".utf8)]
        }
        let long = [UInt8](repeating: UInt8(ascii: "n"), count: 255)
        for p in sample {
            guard p.first == UInt8(ascii: "/") else { continue }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: paths.append(p.flatMap { $0 == UInt8(ascii: "/") ? [$0, $0] : [$0] })
            case 1: paths.append(p + Array("/".utf8))
            case 2: paths.append(p + Array("/../x/./y".utf8))
            case 3: paths.append(p + [UInt8(ascii: "/"), 0xC3, 0xA9, 0xFF, 0x80, UInt8(ascii: "z")])
            case 4: paths.append(p + [0x0A])
            case 5: paths.append(p + [UInt8(ascii: "/")] + long + [UInt8(ascii: "/")] + long)
            case 6: paths.append(relative ? Array(p.dropFirst()) : p + Array("/.".utf8))
            case 7: paths.append(p + Array("/a b\tc\r".utf8))
            case 8: paths.append(Array((p + [UInt8(ascii: "/")] + long + long + long + long).prefix(4000)))
            default: paths.append(p + Array("//".utf8))
            }
        }
        return paths.flatMap { p in [Oracle.Record(mode: 0, path: p), Oracle.Record(mode: modes.randomElement(using: &rng) ?? 0, path: p)] }
    }
}

/// Random file_contexts, aliases and paths in the file_contexts dialect.
enum RandomFileContexts {
    struct Files {
        var texts: [(String, String)]
        var aliasSources: [String]
    }

    static let words = ["a", "b", "c", "lib", "bin", "x.y", "run", "1", "12", "ab", "usr", "var", "d-e", "f_g"]
    static let fileTypes = ["", "", "", "--", "-d", "-l", "-p", "-s", "-c", "-b"]

    static func make(_ rng: inout SeededRandom) -> Files {
        var main: [String] = ["/.*\tsystem_u:object_r:default_t:s0"]
        for k in 0..<350 { main.append(line(k, &rng)) }
        let homedirs = (0..<20).map { line(1000 + $0, &rng) }
        let local = (0..<20).map { line(2000 + $0, &rng) }
        var aliasSources: [String] = []
        func aliasLines(_ n: Int) -> String {
            (0..<n).map { _ in
                let from = "/" + pick(["al", "usr", "var", "a", "lib", "x.y"], &rng) + (Bool.random(using: &rng) ? "/" + pick(words, &rng) : "")
                let to = pick(["/", "/usr", "/var/run", "/a/b", "/lib", "//c", "/b/"], &rng)
                aliasSources.append(from)
                return "\(from) \(to)"
            }.joined(separator: "\n")
        }
        let subsDist = "# aliases\n" + aliasLines(6)
        let subs = aliasLines(3)
        return Files(texts: [("", main.joined(separator: "\n")), (".homedirs", homedirs.joined(separator: "\n")),
                             (".local", local.joined(separator: "\n")), (".subs_dist", subsDist), (".subs", subs)],
                     aliasSources: aliasSources)
    }

    static func pick(_ a: [String], _ rng: inout SeededRandom) -> String { a[Int.random(in: 0..<a.count, using: &rng)] }

    static func line(_ k: Int, _ rng: inout SeededRandom) -> String {
        let t = pick(fileTypes, &rng)
        let context = Int.random(in: 0..<10, using: &rng) == 0 ? "<<none>>"
            : "system_u:object_r:t\(k)_t:s0" + (Bool.random(using: &rng) ? "" : ":c\(k % 1024)")
        return t.isEmpty ? "\(regex(&rng))\t\(context)" : "\(regex(&rng))\t\(t)\t\(context)"
    }

    /// An expression: mostly the shapes real file_contexts use, sometimes the odd corners of the dialect.
    static func regex(_ rng: inout SeededRandom) -> String {
        switch Int.random(in: 0..<40, using: &rng) {
        case 0: return "/" + pick(words, &rng) + "|/" + pick(words, &rng)
        case 1: return "/" + pick(words, &rng) + "/?" + pick(words, &rng)
        case 2: return "/" + pick(words, &rng) + "\\-x/" + pick(words, &rng)
        case 3: return "/" + pick(words, &rng) + "$"
        case 4: return "/" + pick(words, &rng) + "/^" + pick(words, &rng)
        default: break
        }
        var r = ""
        let depth = Int.random(in: 1...4, using: &rng)
        for _ in 0..<depth { r += "/" + component(&rng) }
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: r += "(/.*)?"
        case 1: r += "/.*"
        case 2: r += "(/[^/]*)?"
        default: break
        }
        return r
    }

    static func component(_ rng: inout SeededRandom) -> String {
        switch Int.random(in: 0..<22, using: &rng) {
        case 0: return ".*"
        case 1: return "[^/]*"
        case 2: return "[^/]+"
        case 3: return "(.*/)?" + pick(words, &rng)
        case 4: return pick(words, &rng) + "[0-9]+"
        case 5: return "(" + pick(words, &rng) + "|" + pick(words, &rng) + ")"
        case 6: return pick(words, &rng) + "?"
        case 7: return "[a-c]{1,3}"
        case 8: return "[[:digit:]]+"
        case 9: return "\\d\\.\\w"
        case 10: return pick(words, &rng).replacingOccurrences(of: ".", with: "\\.")
        case 11: return "[]a-]x"
        case 12: return "(ab)*c"
        case 13: return "x{2}"
        case 14: return "(?:a|b)+"
        case 15: return "[^a-z/]"
        default: return pick(words, &rng)
        }
    }

    /// Paths built from the same words, so that many of them match the expressions.
    static func paths(_ rng: inout SeededRandom, count: Int) -> [Oracle.Record] {
        let extra = ["abab", "ababc", "xx", "123", "7.z", "]x", "ax", "aab", "cc", "Z", "x.y", ".", ".."]
        return (0..<count).map { _ in
            var p = ""
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                p += "/" + (Int.random(in: 0..<4, using: &rng) == 0 ? pick(extra, &rng) : pick(words, &rng))
            }
            if Int.random(in: 0..<8, using: &rng) == 0 { p += "/" }
            return Oracle.Record(mode: EdgeCases.modes.randomElement(using: &rng) ?? 0, path: Array(p.utf8))
        }
    }
}
