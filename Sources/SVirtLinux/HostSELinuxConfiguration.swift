import Foundation
import Glibc
import SELinux
import SVirt

/// The host's SELinux configuration, read from `/etc/selinux` (or another tree): the policy type, the
/// contexts svirt labels with and where each came from, the file_contexts path and the newest binary policy.
///
/// Missing pieces fall back to built-in defaults, and `notes` says so. Malformed files are errors that name
/// the file and line.
public struct HostSELinuxConfiguration: Sendable {
    /// The tree that was read (normally `/etc/selinux`).
    public var root: String
    /// `SELINUX=` from the config file, if there is one. The kernel's state is `HostProbe.selinux`.
    public var configuredMode: SELinuxMode?
    /// `SELINUXTYPE=`, if the config file has it.
    public var policyType: String?
    public var policyTypeSource: ConfigurationSource?
    public var contexts: ContextsConfiguration
    /// `contexts/files/file_contexts`, when it exists.
    public var fileContextsPath: String?
    /// `policy/policy.NN` with the highest NN, when one exists.
    public var policyPath: String?
    public var policyVersion: Int?
    /// Why the host's binary policy is not used although the policy type has a policy directory (it may not be
    /// read by this process, or holds no policy.NN).
    public var policyProblem: String?
    /// What was missing and which built-in value stands in for it.
    public var notes: [String]

    /// True when no host file was used at all.
    public var isBuiltIn: Bool { policyType == nil }

    /// The default tree.
    public static let defaultRoot = "/etc/selinux"

    /// `--selinux-root` wins, then `SVIRT_SELINUX_ROOT`, then `/etc/selinux`.
    public static func resolveRoot(_ override: String?) -> String {
        if let o = override, !o.isEmpty { return o }
        if let e = ProcessInfo.processInfo.environment["SVIRT_SELINUX_ROOT"], !e.isEmpty { return e }
        return defaultRoot
    }

    /// Reads the tree at `root`.
    public static func load(root: String = defaultRoot) throws -> HostSELinuxConfiguration {
        let fm = FileManager.default
        let configPath = "\(root)/config"
        var notes: [String] = []
        guard let configText = try readIfPresent(configPath) else {
            let reason = "no \(configPath)"
            notes.append("\(configPath) does not exist: using svirt's built-in contexts")
            return HostSELinuxConfiguration(root: root, configuredMode: nil, policyType: nil, policyTypeSource: nil,
                                            contexts: .builtIn(reason: reason), fileContextsPath: nil,
                                            policyPath: nil, policyVersion: nil, notes: notes)
        }
        let config = try SELinuxConfigFile.parse(configText, path: configPath)
        guard let type = config.policyType else {
            let reason = "\(configPath) has no SELINUXTYPE="
            notes.append("\(reason): using svirt's built-in contexts")
            return HostSELinuxConfiguration(root: root, configuredMode: config.mode, policyType: nil, policyTypeSource: nil,
                                            contexts: .builtIn(reason: reason), fileContextsPath: nil,
                                            policyPath: nil, policyVersion: nil, notes: notes)
        }
        let typeDir = "\(root)/\(type)"
        let typeSource = ConfigurationSource.file(path: configPath, line: config.policyTypeLine ?? 0)
        var contexts = ContextsConfiguration.builtIn(reason: "no \(typeDir)/contexts")
        if !fm.fileExists(atPath: typeDir) {
            notes.append("\(typeDir) does not exist: using svirt's built-in contexts")
        }

        let domainPath = "\(typeDir)/contexts/virtual_domain_context"
        if let text = try readIfPresent(domainPath) {
            let lines = try ContextsConfiguration.parseContextsFile(text, path: domainPath)
            contexts.processBase = ConfiguredContext(lines[0].0, source: .file(path: domainPath, line: lines[0].1))
            if lines.count > 1 {
                contexts.tcgProcessBase = ConfiguredContext(lines[1].0, source: .file(path: domainPath, line: lines[1].1))
            } else {
                contexts.tcgProcessBase = nil
                notes.append("\(domainPath) has no TCG line: TCG guests take \(lines[0].0.type), which needs the boolean virt_use_execmem")
            }
        } else {
            let reason = "no \(domainPath)"
            contexts.processBase.source = .builtIn(reason: reason)
            contexts.tcgProcessBase?.source = .builtIn(reason: reason)
            notes.append("\(domainPath) does not exist: using the built-in process contexts")
        }

        let imagePath = "\(typeDir)/contexts/virtual_image_context"
        if let text = try readIfPresent(imagePath) {
            let lines = try ContextsConfiguration.parseContextsFile(text, path: imagePath)
            contexts.imageBase = ConfiguredContext(lines[0].0, source: .file(path: imagePath, line: lines[0].1))
            if lines.count > 1 {
                contexts.contentLabel = ConfiguredContext(lines[1].0, source: .file(path: imagePath, line: lines[1].1))
            } else {
                contexts.contentLabel.source = .builtIn(reason: "\(imagePath) has no line 2")
                notes.append("\(imagePath) has no read-only content line: using \(contexts.contentLabel.context)")
            }
        } else {
            let reason = "no \(imagePath)"
            contexts.imageBase.source = .builtIn(reason: reason)
            contexts.contentLabel.source = .builtIn(reason: reason)
            notes.append("\(imagePath) does not exist: using the built-in image contexts")
        }
        contexts.restoreFallback.source = .builtIn(reason: "restored when file_contexts gives no label")

        let fcPath = "\(typeDir)/contexts/files/file_contexts"
        let fileContexts = fm.fileExists(atPath: fcPath) ? fcPath : nil
        if fileContexts == nil { notes.append("\(fcPath) does not exist: images are restored to \(contexts.restoreFallback.context)") }

        var best: (String, Int)?
        var policyProblem: String?
        switch Self.directoryNames("\(typeDir)/policy") {
        case .success(let names):
            for n in names where n.hasPrefix("policy.") {
                if let v = Int(n.dropFirst("policy.".count)), v > (best?.1 ?? -1) { best = ("\(typeDir)/policy/\(n)", v) }
            }
            if best == nil {
                policyProblem = "\(typeDir)/policy has no policy.NN"
                notes.append("\(typeDir)/policy has no policy.NN: decisions use svirt's built-in policy")
            }
        case .failure(let e) where e.errno == EACCES:
            policyProblem = "\(typeDir)/policy may not be read by this process (\(String(cString: strerror(e.errno))))"
            // A confined svirt: Debian's policy lets virtd_t read no policy_config_t directory or file.
            notes.append("\(typeDir)/policy may not be read by this process (\(String(cString: strerror(e.errno)))), so decisions use "
                         + "svirt's built-in policy; run svirt check and explain from an administrator's shell, or load "
                         + "svirt's policy module, which lets virtd_t read the policy (README: SELinux policy module)")
        case .failure(let e):
            policyProblem = "cannot list \(typeDir)/policy (\(String(cString: strerror(e.errno))))"
            notes.append("cannot list \(typeDir)/policy (\(String(cString: strerror(e.errno)))): decisions use svirt's built-in policy")
        }

        var result = HostSELinuxConfiguration(root: root, configuredMode: config.mode, policyType: type,
                                        policyTypeSource: typeSource, contexts: contexts,
                                        fileContextsPath: fileContexts, policyPath: best?.0, policyVersion: best?.1,
                                        notes: notes)
        result.policyProblem = policyProblem
        return result
    }

    /// The names in a directory, or the errno of opening it.
    static func directoryNames(_ path: String) -> Result<[String], SystemCallError> {
        guard let dir = opendir(path) else { return .failure(SystemCallError(call: "opendir", path: path, errno: errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return .success(names)
    }

    /// The file's text, nil when it does not exist, or an error naming it when it cannot be read.
    static func readIfPresent(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SELinuxError(code: .fileUnreadable, message: "cannot read \(path): check its permissions", input: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SELinuxError(code: .invalidConfiguration, message: "\(path) is not UTF-8 text", input: path)
        }
        return text
    }
}
