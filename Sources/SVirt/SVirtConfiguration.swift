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
/// registry = etcd://10.0.0.1:2379,10.0.0.2:2379   # shared level registry; default: sqlite (local)
/// registry_ca = /etc/svirt/etcd-ca.pem             # TLS: CA, client certificate and key
/// registry_cert = /etc/svirt/etcd-client.pem
/// registry_key = /etc/svirt/etcd-client-key.pem
/// registry_user = svirt                          # etcd auth; the password is read from registry_password_file
/// registry_password_file = /etc/svirt/etcd-password
/// registry_timeout_seconds = 10                  # how long a registry call may take before it refuses
/// host_id = hv01                                  # this host's name in the shared registry
/// host_lease_seconds = 10                         # how long a dead host keeps its lease
/// emulators = /opt/qemu/bin/qemu-system-x86_64     # emulators allowed besides /usr/bin/qemu-system-* (root-owned)
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
    /// The level registry: nil or `sqlite` for the local one, `etcd://host:port,...` for a shared one.
    public var registry: String?
    /// Where `registry` was set (`path:line`), for error messages.
    public var registrySource: String?
    public var registryCA: String?
    public var registryCertificate: String?
    public var registryKey: String?
    public var registryUser: String?
    public var registryPasswordFile: String?
    public var registryTimeoutSeconds: Double?
    /// This host's name in a shared registry; when unset, one is generated and kept in the state directory.
    public var hostID: String?
    public var hostLeaseSeconds: Double?
    /// Emulator paths allowed besides the `qemu-system-*` binaries of the system directories (each must still
    /// be owned by root and writable by nobody else).
    public var emulators: [String] = []

    public init() {}

    /// Parses a pool given as `c0.c1023` or `s0:c0.c1023`.
    public static func parseCategories(_ text: String) throws -> SecurityLevel {
        let t = text.trimmingCharacters(in: " \t")
        return try SecurityLevel(parsing: t.hasPrefix("s") ? t : "s0:\(t)")
    }

    public static func parse(_ text: String, path: String) throws -> SVirtConfiguration {
        var out = SVirtConfiguration()
        for (i, raw) in text.textLines().enumerated() {
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
                case "registry":
                    guard value == "sqlite" || value == "local" || value.hasPrefix("etcd://") || value.hasPrefix("etcds://") else {
                        throw bad("registry must be 'sqlite' or etcd://host1:2379,host2:2379 (etcds:// for TLS), found '\(value)'")
                    }
                    out.registry = value
                    out.registrySource = "\(path):\(i + 1)"
                case "registry_ca", "registry_cert", "registry_key", "registry_password_file":
                    guard value.hasPrefix("/") else { throw bad("\(key) must be an absolute path, found '\(value)'") }
                    switch key {
                    case "registry_ca": out.registryCA = value
                    case "registry_cert": out.registryCertificate = value
                    case "registry_key": out.registryKey = value
                    default: out.registryPasswordFile = value
                    }
                case "registry_user":
                    guard !value.isEmpty else { throw bad("registry_user is empty") }
                    out.registryUser = value
                case "registry_timeout_seconds", "host_lease_seconds":
                    guard let v = Double(value), v.isFinite, v >= 1, v <= 3600 else {
                        throw bad("\(key) must be a number of seconds from 1 to 3600, found '\(value)'")
                    }
                    if key == "host_lease_seconds" { out.hostLeaseSeconds = v } else { out.registryTimeoutSeconds = v }
                case "host_id":
                    guard !value.isEmpty, value.count <= 128,
                          value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                        throw bad("host_id must be 1 to 128 letters, digits, '-', '_' or '.', found '\(value)'")
                    }
                    out.hostID = value
                case "emulators":
                    let paths = value.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
                    guard !paths.isEmpty, paths.allSatisfy({ $0.hasPrefix("/") }) else {
                        throw bad("emulators must be absolute paths separated by commas or spaces, found '\(value)'")
                    }
                    out.emulators += paths
                default:
                    // Keys for later features are read by their own code; unknown keys are an error, so typos show.
                    if !Self.otherKeys.contains(key) {
                        throw bad("unknown key '\(key)'; known keys: " + Self.knownKeys.joined(separator: ", ")
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
    public static let otherKeys: Set<String> = []

    /// The keys this type reads.
    public static let knownKeys = ["categories", "reserved_categories", "cooldown_seconds", "manager_context", "registry",
                                   "registry_ca", "registry_cert", "registry_key", "registry_user", "registry_password_file",
                                   "registry_timeout_seconds", "host_id", "host_lease_seconds", "user", "group", "emulators"]
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        guard let first = firstIndex(where: { !chars.contains($0) }) else { return "" }
        let last = lastIndex(where: { !chars.contains($0) }) ?? first
        return String(self[first...last])
    }
}
