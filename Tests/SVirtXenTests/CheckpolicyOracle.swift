import Foundation
import SELinux
import SELinuxPolicy

/// libsepol's answers for a Xen binary policy, from `checkpolicy -t xen [-M] -d -b POLICY`: checkpolicy's debug mode
/// loads the binary and reads menu commands on standard input (2 context_to_sid, 0 compute_access_vector,
/// 3 transition_sid, 1 sid_to_context, h set a boolean). The test writes a script of commands into a pipe and reads
/// the answers from another.
struct CheckpolicyOracle {
    let policyPath: String
    let mls: Bool

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The answers, in the order they were asked.
    enum Answer: Equatable {
        case sid(Int)
        case error(String)
        case allowed(Set<String>)
        case context(String)
    }

    /// Runs a script of menu commands and returns the answer lines, in order.
    func run(_ script: String) throws -> [Answer] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/checkpolicy")
        p.arguments = ["-t", "xen"] + (mls ? ["-M"] : []) + ["-d", "-b", policyPath]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        try p.run()
        // Write the script while the answers are read, so neither pipe fills up and blocks the other side.
        let writer = input.fileHandleForWriting
        let data = Data((script + "q\n").utf8)
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            writer.write(data)
            try? writer.close()
            group.leave()
        }
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = errors.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        guard p.terminationStatus == 0 || !out.isEmpty else {
            throw Failure(description: "checkpolicy failed on \(policyPath): \(String(decoding: errData, as: UTF8.self))")
        }
        var answers: [Answer] = []
        for raw in String(decoding: out, as: UTF8.self).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if let r = line.range(of: "return code ") {
                answers.append(.error(String(line[r.upperBound...])))
            } else if line.hasPrefix("sid "), let n = Int(line.dropFirst(4)) {
                answers.append(.sid(n))
            } else if line.hasPrefix("allowed {"), line.hasSuffix("}") {
                let inner = line.dropFirst("allowed {".count).dropLast()
                answers.append(.allowed(Set(inner.split(separator: " ").map(String.init))))
            } else if line.hasPrefix("scontext ") {
                answers.append(.context(String(line.dropFirst("scontext ".count))))
            }
        }
        return answers
    }

    /// The allowed permissions of each (source, target, class value) query, with booleans set first; nil where a
    /// context is not valid in the policy.
    func allowed(_ queries: [(source: String, target: String, classValue: Int)],
                 booleans: [String: Bool] = [:]) throws -> [Set<String>?] {
        var contexts: [String] = []
        var index: [String: Int] = [:]
        for q in queries {
            for c in [q.source, q.target] where index[c] == nil {
                index[c] = contexts.count
                contexts.append(c)
            }
        }
        var script = ""
        for c in contexts { script += "2\n\(c)\n" }
        for (name, value) in booleans.sorted(by: { $0.key < $1.key }) { script += "h\n\(name)\n\(value ? 1 : 0)\n" }
        let answers = try run(script)
        guard answers.count >= contexts.count else {
            throw Failure(description: "checkpolicy answered \(answers.count) of \(contexts.count) context_to_sid calls")
        }
        var sids: [Int?] = []
        for a in answers.prefix(contexts.count) {
            if case .sid(let n) = a { sids.append(n) } else { sids.append(nil) }
        }
        // Second run: the decisions, with the SIDs the first run gave (context_to_sid is repeated so they match).
        var script2 = ""
        for c in contexts { script2 += "2\n\(c)\n" }
        for (name, value) in booleans.sorted(by: { $0.key < $1.key }) { script2 += "h\n\(name)\n\(value ? 1 : 0)\n" }
        var asked: [Int] = []
        for (i, q) in queries.enumerated() {
            guard let s = sids[index[q.source] ?? 0], let t = sids[index[q.target] ?? 0] else { continue }
            script2 += "0\n\(s)\n\(t)\n\(q.classValue)\n"
            asked.append(i)
        }
        let answers2 = try run(script2)
        let decisions = answers2.dropFirst(contexts.count)
        guard decisions.count == asked.count else {
            throw Failure(description: "checkpolicy answered \(decisions.count) of \(asked.count) access queries")
        }
        var out = [Set<String>?](repeating: nil, count: queries.count)
        for (i, a) in zip(asked, decisions) {
            guard case .allowed(let set) = a else { throw Failure(description: "unexpected answer \(a) to query \(queries[i])") }
            out[i] = set
        }
        return out
    }

    /// `transition_sid` (then `sid_to_context`) for each (source, target, class value); nil where it fails.
    func transitions(_ queries: [(source: String, target: String, classValue: Int)]) throws -> [String?] {
        var contexts: [String] = []
        var index: [String: Int] = [:]
        for q in queries {
            for c in [q.source, q.target] where index[c] == nil {
                index[c] = contexts.count
                contexts.append(c)
            }
        }
        var script = ""
        for c in contexts { script += "2\n\(c)\n" }
        let first = try run(script)
        var sids: [Int?] = []
        for a in first.prefix(contexts.count) {
            if case .sid(let n) = a { sids.append(n) } else { sids.append(nil) }
        }
        // Pass 1: the new SIDs. Pass 2: the same script (so the same SIDs), then sid_to_context for each.
        var asked: [Int] = []
        for (i, q) in queries.enumerated() {
            guard let s = sids[index[q.source] ?? 0], let t = sids[index[q.target] ?? 0] else { continue }
            script += "3\n\(s)\n\(t)\n\(q.classValue)\n"
            asked.append(i)
        }
        let second = try run(script)
        let newSIDs = Array(second.dropFirst(contexts.count))
        guard newSIDs.count == asked.count else {
            throw Failure(description: "checkpolicy answered \(newSIDs.count) of \(asked.count) transition_sid calls")
        }
        var naming = script
        for a in newSIDs { if case .sid(let n) = a { naming += "1\n\(n)\n" } }
        let names = try run(naming).compactMap { a -> String? in
            if case .context(let c) = a { return c }
            return nil
        }
        var out = [String?](repeating: nil, count: queries.count)
        var k = 0
        for (i, a) in zip(asked, newSIDs) {
            guard case .sid = a, k < names.count else { continue }
            out[i] = names[k]
            k += 1
        }
        return out
    }
}
