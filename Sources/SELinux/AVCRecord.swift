import Foundation

/// One AVC message from the audit log or the kernel log, such as
/// `type=AVC msg=audit(1326028680.405:367): avc:  denied  { execmem } for  pid=5404 comm="qemu-system-x86"
/// scontext=system_u:system_r:svirt_t:s0:c1,c2 tcontext=system_u:system_r:svirt_t:s0:c1,c2 tclass=process permissive=0`.
public struct AVCRecord: Sendable, Hashable {
    /// `denied` or `granted`.
    public var denied: Bool
    public var permissions: [String]
    public var source: SecurityContext
    public var target: SecurityContext
    public var tclass: String
    /// The other `key=value` fields (`pid`, `comm`, `name`, `path`, `dev`, `ino`, `permissive`...), unquoted.
    public var fields: [String: String]
    /// The `audit(TIME:SERIAL)` stamp, when the line has one.
    public var stamp: String?

    public init(denied: Bool, permissions: [String], source: SecurityContext, target: SecurityContext, tclass: String,
                fields: [String: String] = [:], stamp: String? = nil) {
        self.denied = denied
        self.permissions = permissions
        self.source = source
        self.target = target
        self.tclass = tclass
        self.fields = fields
        self.stamp = stamp
    }

    /// The object's file name or path, when the record names one.
    public var objectName: String? { fields["path"] ?? fields["name"] }

    /// Parses a log line. Returns nil for a line that holds no AVC message; throws a `SELinuxError` that names the
    /// line for an AVC message that cannot be read.
    public static func parse(_ line: String) throws -> AVCRecord? {
        guard let avc = line.range(of: "avc:") else { return nil }
        var stamp: String?
        if let a = line.range(of: "audit("), let e = line[a.upperBound...].firstIndex(of: ")") {
            stamp = String(line[a.upperBound..<e])
        }
        let rest = line[avc.upperBound...]
        let words = rest.split(separator: " ", omittingEmptySubsequences: true)
        guard let verdict = words.first, verdict == "denied" || verdict == "granted" else { return nil }
        guard let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") else {
            throw SELinuxError(code: .invalidConfiguration,
                               message: "AVC message without '{ permissions }': \(line.prefix(200))", input: line)
        }
        let perms = rest[rest.index(after: open)..<close].split(separator: " ").map(String.init)
        var fields: [String: String] = [:]
        var i = rest.index(after: close)
        let s = rest
        // Fields are separated by spaces; a tab or a line ending left on the line (a CR from a serial console)
        // separates too, so it never becomes part of a value such as tclass.
        func blank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" }
        while i < s.endIndex {
            while i < s.endIndex, blank(s[i]) { i = s.index(after: i) }
            guard i < s.endIndex else { break }
            let start = i
            while i < s.endIndex, s[i] != "=", !blank(s[i]) { i = s.index(after: i) }
            guard i < s.endIndex, s[i] == "=" else { continue }
            let key = String(s[start..<i])
            i = s.index(after: i)
            var value = ""
            if i < s.endIndex, s[i] == "\"" {
                i = s.index(after: i)
                let vs = i
                while i < s.endIndex, s[i] != "\"" { i = s.index(after: i) }
                value = String(s[vs..<i])
                if i < s.endIndex { i = s.index(after: i) }
            } else {
                let vs = i
                while i < s.endIndex, !blank(s[i]) { i = s.index(after: i) }
                value = String(s[vs..<i])
            }
            fields[key] = value
        }
        guard let scon = fields.removeValue(forKey: "scontext"), let tcon = fields.removeValue(forKey: "tcontext"),
              let tclass = fields.removeValue(forKey: "tclass") else {
            throw SELinuxError(code: .invalidConfiguration,
                               message: "AVC message without scontext=, tcontext= and tclass=: \(line.prefix(200))",
                               input: line)
        }
        return AVCRecord(denied: verdict == "denied", permissions: perms, source: try SecurityContext(parsing: scon),
                         target: try SecurityContext(parsing: tcon), tclass: tclass, fields: fields, stamp: stamp)
    }
}
