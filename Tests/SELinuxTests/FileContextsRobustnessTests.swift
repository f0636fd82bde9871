import Testing
@testable import SELinux

/// file_contexts text comes from files: no input may crash the parser or the matcher.
@Suite("file_contexts robustness") struct FileContextsRobustnessTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state ^ (state >> 29)
        }
    }

    static let alphabet = Array("/\\.^$?*+|[](){},-:0123456789abcdwsxQE\t \n#<>".utf8) + [0x00, 0x80, 0xFF]

    @Test("random bytes as a file_contexts either load or fail with an error naming a line, and never crash")
    func randomFiles() throws {
        var rng = Generator(state: 0x1234_5678)
        var loaded = 0
        for _ in 0..<3_000 {
            let n = Int.random(in: 0..<120, using: &rng)
            var bytes = (0..<n).map { _ in Self.alphabet[Int.random(in: 0..<Self.alphabet.count, using: &rng)] }
            bytes += Array(" u:r:t:s0".utf8)
            do {
                let fc = try FileContexts(main: FileContextsSource(path: "fuzz", bytes: bytes))
                loaded += 1
                let m = fc.makeMatcher()
                for _ in 0..<5 {
                    let p = [UInt8(ascii: "/")] + (0..<Int.random(in: 0..<30, using: &rng)).map { _ in
                        Self.alphabet[Int.random(in: 0..<Self.alphabet.count, using: &rng)]
                    }
                    _ = m.lookup(path: p, fileType: FileType(rawValue: UInt8.random(in: 0...7, using: &rng)))
                }
            } catch let e as SELinuxError {
                #expect(e.line != nil && e.column != nil, "\(e.message)")
            }
        }
        #expect(loaded > 100)
    }

    @Test("an ignore-errors load of random lines keeps every good line and reports every bad one")
    func randomIgnoreErrors() throws {
        var rng = Generator(state: 99)
        var lines: [String] = []
        for k in 0..<500 {
            let n = Int.random(in: 1..<20, using: &rng)
            // Bytes from the first 30 of the alphabet: no whitespace, NUL or non-ASCII, so each line stays one line
            // with two fields.
            let regex = "/" + String(decoding: (0..<n).map { _ in Self.alphabet[Int.random(in: 0..<30, using: &rng)] }, as: UTF8.self)
            lines.append("\(regex) u:r:t\(k)_t:s0")
        }
        let fc = try FileContexts(parsing: lines.joined(separator: "\n"), ignoreErrors: true)
        #expect(fc.count + fc.skipped.count == lines.count)
        #expect(fc.skipped.allSatisfy { $0.line != nil })
    }

    @Test("deeply nested groups and huge counts are refused with an error, not a crash")
    func limits() throws {
        let deep = String(repeating: "(", count: 5_000) + String(repeating: ")", count: 5_000)
        #expect(throws: SELinuxError.self) { try FileContexts(parsing: "/\(deep) u:r:t:s0") }
        #expect(throws: SELinuxError.self) { try FileContexts(parsing: "/a{99999} u:r:t:s0") }
        #expect(throws: SELinuxError.self) { try FileContexts(parsing: "/((a{1000}){1000}){1000} u:r:t:s0") }
        let nested = String(repeating: "(", count: 30) + "a" + String(repeating: "){1000}", count: 30)
        #expect(throws: SELinuxError.self) { try FileContexts(parsing: "/\(nested) u:r:t:s0") }
        let fc = try FileContexts(parsing: "/(a|b)*a(a|b){12} u:r:t:s0")
        #expect(fc.lookup("/" + String(repeating: "ab", count: 40)).context == nil)
        #expect(fc.lookup("/aaaaaaaaaaaaa").context?.type == "t")
    }
}
