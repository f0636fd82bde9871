import Foundation
import Glibc
import SELinux
import SVirt

/// One path rule of a guest's Landlock ruleset, as the running record keeps it (for explaining refusals later).
public struct LandlockRuleRecord: Sendable, Hashable, Codable {
    public var path: String
    /// `read-only`, `read-write`, `device`, ... (`Landlock.FilesystemAccess.summary`).
    public var access: String
    public var writable: Bool
    public var reason: String

    public init(_ rule: Landlock.PathRule) {
        path = rule.path
        access = rule.access.summary
        writable = rule.access.contains(.writeFile)
        reason = rule.reason
    }

    public var description: String { "\(access) \(path)" + (reason.isEmpty ? "" : " (\(reason))") }
}

/// An access a Landlock-confined QEMU reported refused (EACCES, "Permission denied"), as svirt recorded it: from
/// a QMP error reply (`svirt qemu-monitor-command`), from QEMU's log in the runtime directory (read when the VM
/// stops, and live by `svirt explain --vm`), or from the output of a QEMU that exited during startup.
public struct LandlockDenial: Sendable, Hashable, Codable {
    public var domain: String
    /// Seconds since the epoch when svirt saw it.
    public var at: Double
    public var pid: Int32?
    /// The VM's process label (what the policy is asked about).
    public var process: String?
    /// The refused path, when QEMU's message names one.
    public var path: String?
    /// Whether QEMU asked to write (nil: not known from its message).
    public var write: Bool?
    /// `qmp`, `qemu-log` or `start`.
    public var origin: String
    /// QEMU's words.
    public var message: String
    /// The Landlock rule that refused it, for people.
    public var rule: String
}

/// Finds, records and reads back the Landlock refusals of VMs (`LandlockDenial`), in the registry's event log
/// (kind `landlock-eacces`, the record as JSON).
public enum LandlockDenialLog {
    public static let eventKind = "landlock-eacces"

    /// The "Permission denied" lines of QEMU output or a QMP error text, each with the path it names: the last
    /// single-quoted string before "Permission denied" (`Could not open '/x.img': Permission denied`), else the
    /// last word starting with `/`.
    public static func permissionDenials(in text: String) -> [(path: String?, line: String)] {
        var out: [(String?, String)] = []
        for raw in text.nonEmptyTextLines() {
            let line = String(raw)
            guard let r = line.range(of: "Permission denied") else { continue }
            let head = line[..<r.lowerBound]
            var path: String?
            let quotes = head.indices.filter { head[$0] == "'" }
            if quotes.count >= 2 {
                let a = quotes[quotes.count - 2], b = quotes[quotes.count - 1]
                let inner = String(head[head.index(after: a)..<b])
                if inner.hasPrefix("/") { path = inner }
            }
            if path == nil {
                path = head.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ":,\"")) }
                    .last { $0.hasPrefix("/") }
            }
            out.append((path, line.trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    /// The rule of `rules` that governs `path` (the rule for the path itself, else the deepest directory rule
    /// above it), and a sentence on why Landlock refused the access.
    public static func refusingRule(for path: String?, write: Bool?, rules: [LandlockRuleRecord]?) -> String {
        guard let rules else { return "the ruleset was not recorded (the VM was started by an older svirt)" }
        guard let path else { return "QEMU's message names no path; the ruleset has \(rules.count) path rules" }
        var resolved = path
        if let r = realpath(path, nil) { resolved = String(cString: r); free(r) }
        let governing = rules.filter { r in
            [path, resolved].contains { $0 == r.path || $0.hasPrefix(r.path == "/" ? "/" : r.path + "/") }
        }.max { $0.path.count < $1.path.count }
        guard let rule = governing else {
            return "no rule of the VM's Landlock ruleset covers \(path): outside its own resources and QEMU's system "
                + "paths Landlock refuses every access (the ruleset has \(rules.count) path rules)"
        }
        if !rule.writable && write != false {
            return "the rule '\(rule.description)' grants it \(rule.access) only; writing is refused"
        }
        return "the rule '\(rule.description)' grants this access; the refusal came from the file's mode and owner (DAC) "
            + "or from a right the rule lacks"
    }

    /// Records the "Permission denied" lines of `text` for a running VM. Returns what was recorded.
    @discardableResult
    public static func record(_ text: String, origin: String, write: Bool? = nil, running r: RunningDomain,
                              registry: SQLiteRegistry, at: Double = Date().timeIntervalSince1970) -> [LandlockDenial] {
        guard r.details.confinement == "landlock" else { return [] }
        var out: [LandlockDenial] = []
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for d in permissionDenials(in: text) {
            let denial = LandlockDenial(domain: r.name, at: at, pid: r.process?.pid, process: r.label, path: d.path, write: write,
                                        origin: origin, message: d.line,
                                        rule: refusingRule(for: d.path, write: write, rules: r.details.landlockRules))
            guard let data = try? enc.encode(denial) else { continue }
            try? registry.log(domain: r.name, kind: eventKind, message: String(decoding: data, as: UTF8.self))
            out.append(denial)
        }
        return out
    }

    /// The refusals recorded for `domain`, oldest first.
    public static func recorded(domain: String, registry: SQLiteRegistry, limit: Int = 1000) throws -> [LandlockDenial] {
        try registry.events(domain: domain, kind: eventKind, limit: limit).compactMap { e in
            try? JSONDecoder().decode(LandlockDenial.self, from: Data(e.message.utf8))
        }
    }

    /// The refusals in the live QEMU log of a running VM (not yet recorded: the log is recorded when it stops).
    public static func live(_ r: RunningDomain) -> [LandlockDenial] {
        guard r.details.confinement == "landlock", let log = r.details.logFile,
              let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        let at = Date().timeIntervalSince1970
        return permissionDenials(in: text).map { d in
            LandlockDenial(domain: r.name, at: at, pid: r.process?.pid, process: r.label, path: d.path, write: nil,
                           origin: "qemu-log", message: d.line,
                           rule: refusingRule(for: d.path, write: nil, rules: r.details.landlockRules))
        }
    }
}
