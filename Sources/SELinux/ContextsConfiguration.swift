/// Where a configured value came from, so `svirt host` can say it.
public enum ConfigurationSource: Sendable, Hashable, CustomStringConvertible {
    /// A line of a host file.
    case file(path: String, line: Int)
    /// svirt's built-in default, with the reason no host value was used.
    case builtIn(reason: String)

    public var description: String {
        switch self {
        case .file(let path, let line): return "\(path):\(line)"
        case .builtIn(let reason): return "built-in (\(reason))"
        }
    }

    public var isBuiltIn: Bool { if case .builtIn = self { return true } else { return false } }
}

/// A context together with the place it came from.
public struct ConfiguredContext: Sendable, Hashable {
    public var context: SecurityContext
    public var source: ConfigurationSource

    public init(_ context: SecurityContext, source: ConfigurationSource) {
        self.context = context
        self.source = source
    }
}

/// The mode `/etc/selinux/config` asks for at boot. The running kernel's state comes from selinuxfs instead.
public enum SELinuxMode: String, Sendable, Hashable, CaseIterable {
    case enforcing, permissive, disabled
}

/// `/etc/selinux/config`: `SELINUX=` and `SELINUXTYPE=`.
public struct SELinuxConfigFile: Sendable, Hashable {
    public var mode: SELinuxMode?
    public var policyType: String?
    public var modeLine: Int?
    public var policyTypeLine: Int?

    public init(mode: SELinuxMode? = nil, policyType: String? = nil) {
        self.mode = mode
        self.policyType = policyType
    }

    /// Parses the file's text. Comments (`#`) and blank lines are skipped, as are keys svirt does not use.
    /// A bad `SELINUX=` value or an unsafe `SELINUXTYPE=` (one that is not a plain directory name) is an error
    /// naming the file and the line.
    public static func parse(_ text: String, path: String) throws -> SELinuxConfigFile {
        var out = SELinuxConfigFile()
        for (i, raw) in text.textLines().enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingWhitespace()
            var value = line[line.index(after: eq)...].trimmingWhitespace()
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
            switch key {
            case "SELINUX":
                guard let mode = SELinuxMode(rawValue: value.lowercased()) else {
                    throw SELinuxError(
                        code: .invalidConfiguration,
                        message: "\(path):\(i + 1): SELINUX='\(value)' is not a mode; use enforcing, permissive or disabled",
                        input: path, position: i + 1)
                }
                out.mode = mode
                out.modeLine = i + 1
            case "SELINUXTYPE":
                guard !value.isEmpty, !value.contains("/"), value != ".", value != ".." else {
                    throw SELinuxError(
                        code: .invalidConfiguration,
                        message: "\(path):\(i + 1): SELINUXTYPE='\(value)' is not a policy directory name under /etc/selinux; "
                            + "use a plain name such as default, targeted or mls",
                        input: path, position: i + 1)
                }
                out.policyType = value
                out.policyTypeLine = i + 1
            default:
                continue
            }
        }
        return out
    }
}

/// The contexts svirt labels VMs with: libvirt's `virtual_domain_context` and `virtual_image_context`, plus
/// the label restored to images when file_contexts has none.
public struct ContextsConfiguration: Sendable, Hashable {
    /// Line 1 of `virtual_domain_context`: the base of a KVM guest's process label (`svirt_t`).
    public var processBase: ConfiguredContext
    /// Line 2 of `virtual_domain_context`: the base for TCG guests (`svirt_tcg_t`), when the host has one.
    public var tcgProcessBase: ConfiguredContext?
    /// Line 1 of `virtual_image_context`: the base of image labels (`svirt_image_t`), also the shared-disk label.
    public var imageBase: ConfiguredContext
    /// Line 2 of `virtual_image_context`: the label of read-only content (`virt_content_t`).
    public var contentLabel: ConfiguredContext
    /// The label an image gets back when nothing better is known (`virt_image_t`, what file_contexts gives
    /// `/var/lib/libvirt/images`).
    public var restoreFallback: ConfiguredContext

    public init(processBase: ConfiguredContext, tcgProcessBase: ConfiguredContext?, imageBase: ConfiguredContext,
                contentLabel: ConfiguredContext, restoreFallback: ConfiguredContext) {
        self.processBase = processBase
        self.tcgProcessBase = tcgProcessBase
        self.imageBase = imageBase
        self.contentLabel = contentLabel
        self.restoreFallback = restoreFallback
    }

    /// Built-in contexts: the ones the reference policies ship.
    public static func builtIn(reason: String) -> ContextsConfiguration {
        func c(_ s: String) -> ConfiguredContext {
            // These literals are valid; a failure here would be a programming error caught by the tests.
            let ctx = (try? SecurityContext(parsing: s)) ?? SecurityContext(user: "system_u", role: "object_r", type: "unlabeled_t")
            return ConfiguredContext(ctx, source: .builtIn(reason: reason))
        }
        return ContextsConfiguration(
            processBase: c(BuiltInContexts.process),
            tcgProcessBase: c(BuiltInContexts.tcgProcess),
            imageBase: c(BuiltInContexts.image),
            contentLabel: c(BuiltInContexts.content),
            restoreFallback: c(BuiltInContexts.restoredImage))
    }

    /// Parses `virtual_domain_context`: one context per line, blank lines and `#` comments skipped.
    /// Returns the contexts with their line numbers. At least one is required.
    public static func parseContextsFile(_ text: String, path: String) throws -> [(SecurityContext, Int)] {
        var out: [(SecurityContext, Int)] = []
        for (i, raw) in text.textLines().enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                out.append((try SecurityContext(parsing: line), i + 1))
            } catch let e as SELinuxError {
                throw SELinuxError(code: .invalidConfiguration, message: "\(path):\(i + 1): \(e.message)",
                                   input: path, position: i + 1)
            }
        }
        guard !out.isEmpty else {
            throw SELinuxError(code: .invalidConfiguration,
                               message: "\(path) has no context; write one context per line, e.g. \(BuiltInContexts.process)",
                               input: path)
        }
        return out
    }
}

/// The contexts svirt uses on hosts without an SELinux configuration.
public enum BuiltInContexts {
    public static let process = "system_u:system_r:svirt_t:s0"
    public static let tcgProcess = "system_u:system_r:svirt_tcg_t:s0"
    public static let image = "system_u:object_r:svirt_image_t:s0"
    public static let content = "system_u:object_r:virt_content_t:s0"
    public static let restoredImage = "system_u:object_r:virt_image_t:s0"
    /// The managing process's context when the kernel gives none (libvirtd's usual label).
    public static let manager = "system_u:system_r:virtd_t:s0-s0:c0.c1023"
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingWhitespace() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !ws($0) }) else { return "" }
        let last = lastIndex(where: { !ws($0) }) ?? first
        return String(self[first...last])
    }
}
