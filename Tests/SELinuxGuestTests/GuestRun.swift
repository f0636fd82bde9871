import Foundation

/// One boot of `scripts/selinux-guest`: its console, and the lines the guest's scripts print, parsed.
///
/// - `SVIRT-RESULT key=value`: a fact (the first `=` splits; a repeated key keeps its last value)
/// - `SVIRT-OUT tag| text`: one line of a command's output, kept in order per tag
/// - `SVIRT-AVC text`: one kernel log line with an AVC record, as the kernel wrote it
/// - `SVIRT-SELINUX-ERR text`: one kernel log line with another SELinux refusal (validatetrans)
/// - `SVIRT-HOST ...`: what the host side saw (accelerator, wall time)
/// - `SVIRT-ENGINE tag| line`, `SVIRT-KERNEL tag| line`, `SVIRT-LIBSELINUX tag| line`: the oracle comparison's
///   answers, svirt's engine's and the kernel's (selinuxfs access) or libselinux's (matchpathcon), per question
///
/// The markers are searched anywhere in a line: the serial console can glue a kernel message in front of one.
struct GuestRun: Sendable {
    var console: String
    var exitStatus: Int32
    var results: [String: String] = [:]
    var outputs: [String: [String]] = [:]
    var avcs: [String] = []
    /// Kernel refusals that are no AVC record (a relabel forbidden by validatetrans), as the kernel wrote them.
    var selinuxErrors: [String] = []
    var hostLines: [String] = []
    /// Oracle answers: marker (`ENGINE`, `KERNEL`, `LIBSELINUX`), then tag, then lines in order.
    var answers: [String: [String: [String]]] = [:]

    init(console: String, exitStatus: Int32) {
        self.console = console
        self.exitStatus = exitStatus
        for line in console.split(separator: "\n", omittingEmptySubsequences: true) {
            if let r = line.range(of: "SVIRT-RESULT ") {
                let fact = line[r.upperBound...]
                guard let eq = fact.firstIndex(of: "=") else { continue }
                results[String(fact[..<eq])] = String(fact[fact.index(after: eq)...])
            } else if let r = line.range(of: "SVIRT-OUT ") {
                let rest = line[r.upperBound...]
                guard let bar = rest.range(of: "| ") ?? rest.range(of: "|") else { continue }
                outputs[String(rest[..<bar.lowerBound]), default: []].append(String(rest[bar.upperBound...]))
            } else if let r = line.range(of: "SVIRT-AVC ") {
                avcs.append(String(line[r.upperBound...]))
            } else if let r = line.range(of: "SVIRT-SELINUX-ERR ") {
                selinuxErrors.append(String(line[r.upperBound...]))
            } else if let r = line.range(of: "SVIRT-HOST ") {
                hostLines.append(String(line[r.upperBound...]))
            } else if let r = line.range(of: "SVIRT-ENGINE ") ?? line.range(of: "SVIRT-KERNEL ") ?? line.range(of: "SVIRT-LIBSELINUX ") {
                let marker = String(line[r].dropFirst("SVIRT-".count).dropLast())
                let rest = line[r.upperBound...]
                guard let bar = rest.range(of: "| ") else { continue }
                answers[marker, default: [:]][String(rest[..<bar.lowerBound]), default: []].append(String(rest[bar.upperBound...]))
            }
        }
    }

    subscript(key: String) -> String? { results[key] }

    /// `RESULT<TAB>QUERY` answers of one marker and tag, keyed by the query.
    func decisions(_ marker: String, _ tag: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in answers[marker]?[tag] ?? [] {
            guard let tab = line.firstIndex(of: "\t") else { continue }
            out[String(line[line.index(after: tab)...])] = String(line[..<tab])
        }
        return out
    }

    /// A command's output lines joined with newlines ("" when it printed nothing or never ran).
    func output(_ tag: String) -> String { (outputs[tag] ?? []).joined(separator: "\n") }

    /// A command's exit status, from `TAG_rc`.
    func status(_ tag: String) -> Int? { results["\(tag)_rc"].flatMap { Int($0) } }

    /// `key=value` words of the host's last `SVIRT-HOST` line that has `key`.
    func host(_ key: String) -> String? {
        for line in hostLines.reversed() {
            for word in line.split(separator: " ") where word.hasPrefix("\(key)=") {
                return String(word.dropFirst(key.count + 1))
            }
        }
        return nil
    }

    /// AVC denials whose source and target contexts are exactly these, as the kernel printed them.
    func denials(scontext: String, tcontext: String) -> [String] {
        avcs.filter { $0.contains("avc:  denied") && $0.contains(" scontext=\(scontext) ") && $0.contains(" tcontext=\(tcontext) ") }
    }
}

/// A context's level (everything after the third colon): `system_u:system_r:svirt_t:s0:c1,c2` gives `s0:c1,c2`.
func contextLevel(_ context: String?) -> String? {
    guard let context else { return nil }
    let parts = context.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
    return parts.count == 4 ? String(parts[3]) : nil
}

/// A context's type (the third field).
func contextType(_ context: String?) -> String? {
    guard let context else { return nil }
    let parts = context.split(separator: ":", omittingEmptySubsequences: false)
    return parts.count >= 3 ? String(parts[2]) : nil
}

/// `s0:cX,cY` with X < Y, both in c0..c1023: the shape of a dynamic sVirt level.
func isCategoryPair(_ level: String?) -> Bool {
    guard let level, level.hasPrefix("s0:c") else { return false }
    let cats = level.dropFirst(3).split(separator: ",")
    guard cats.count == 2, let a = Int(cats[0].dropFirst()), let b = Int(cats[1].dropFirst()),
          cats.allSatisfy({ $0.hasPrefix("c") }) else { return false }
    return a < b && b <= 1023
}
