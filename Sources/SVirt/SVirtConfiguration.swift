import SELinux

/// svirt's own settings, from `svirt.conf` in the state directory: `key = value` lines, `#` comments.
///
/// ```
/// categories = c0.c1023          # the pool; default: the managing process's clearance
/// reserved_categories = c900.c1023   # set aside for other tools (containers), never handed out
/// cooldown_seconds = 3600        # how long a released level stays out of the pool
/// manager_context = system_u:system_r:virtd_t:s0-s0:c0.c1023
/// user = libvirt-qemu           # who QEMU runs as when svirt runs as root (default: libvirt-qemu, else nobody)
/// group = kvm                   # its group (default: the user's primary group)
/// ```
public struct SVirtConfiguration: Sendable, Hashable {
    /// The category pool, when set; otherwise the managing process's clearance is used.
    public var categories: SecurityLevel?
    /// Categories set aside for other tools.
    public var reservedCategories = CategorySet()
    public var coolDownSeconds: Double = 3600
    /// The managing process's context when the kernel gives none.
    public var managerContext: SecurityContext?
    /// The user QEMU runs as when svirt runs as root (a name or a number); nil: `libvirt-qemu` if it exists,
    /// else `nobody`.
    public var user: String?
    /// The group QEMU runs as; nil: the user's primary group.
    public var group: String?

    public init() {}

    /// Parses a pool given as `c0.c1023` or `s0:c0.c1023`.
    public static func parseCategories(_ text: String) throws -> SecurityLevel {
        let t = text.trimmingCharacters(in: " \t")
        return try SecurityLevel(parsing: t.hasPrefix("s") ? t : "s0:\(t)")
    }

    public static func parse(_ text: String, path: String) throws -> SVirtConfiguration {
        var out = SVirtConfiguration()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = String(line).trimmingCharacters(in: " \t\r")
            if trimmed.isEmpty { continue }
            func bad(_ why: String) -> SVirtError {
                SVirtError(.configuration, "\(path):\(i + 1): \(why)")
            }
            guard let eq = trimmed.firstIndex(of: "=") else { throw bad("expected 'key = value', found '\(trimmed)'") }
            let key = String(trimmed[..<eq]).trimmingCharacters(in: " \t")
            let value = String(trimmed[trimmed.index(after: eq)...]).trimmingCharacters(in: " \t\"")
            do {
                switch key {
                case "categories":
                    out.categories = try parseCategories(value)
                case "reserved_categories":
                    out.reservedCategories = try parseCategories(value).categories
                case "cooldown_seconds":
                    guard let v = Double(value), v >= 0, v.isFinite else {
                        throw bad("cooldown_seconds must be a number of seconds, found '\(value)'")
                    }
                    out.coolDownSeconds = v
                case "manager_context":
                    out.managerContext = try SecurityContext(parsing: value)
                case "user", "group":
                    guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.$".contains($0)) }) else {
                        throw bad("\(key) must be a user or group name or number, found '\(value)'")
                    }
                    if key == "user" { out.user = value } else { out.group = value }
                default:
                    // Keys for later features are read by their own code; unknown keys are an error, so typos show.
                    if !Self.otherKeys.contains(key) {
                        throw bad("unknown key '\(key)'; known keys: categories, reserved_categories, cooldown_seconds, manager_context, user, group"
                                  + (Self.otherKeys.isEmpty ? "" : ", " + Self.otherKeys.sorted().joined(separator: ", ")))
                    }
                }
            } catch let e as SELinuxError {
                throw bad(e.message)
            }
        }
        return out
    }

    /// Keys that other parts of svirt read from the same file.
    public static let otherKeys: Set<String> = ["registry", "registry_cert", "registry_key", "registry_ca", "host_id"]
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        guard let first = firstIndex(where: { !chars.contains($0) }) else { return "" }
        let last = lastIndex(where: { !chars.contains($0) }) ?? first
        return String(self[first...last])
    }
}
