import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirtLinux

/// `svirt policy`: the policy engine, for administrators.
struct Policy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Read a binary SELinux policy and decide access like the kernel (libsepol) does.",
        subcommands: [PolicyInfo.self, PolicyCheck.self])
}

/// Which policy to load, and boolean overrides.
struct PolicyOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("A binary policy file (default: the host's policy from the SELinux configuration, else svirt's built-in policy).", valueName: "PATH"))
    var policy: String?

    @Option(name: .customLong("bool"), help: ArgumentHelp("Set a boolean for this run, e.g. virt_use_execmem=1 (repeatable).", valueName: "NAME=0|1"))
    var booleans: [String] = []

    func validate() throws {
        _ = try parsedBooleans()
    }

    func parsedBooleans() throws -> [String: Bool] { try Self.parseBooleans(booleans) }

    /// Reads `NAME=0|1` boolean settings (also on/off, true/false).
    static func parseBooleans(_ booleans: [String]) throws -> [String: Bool] {
        var out: [String: Bool] = [:]
        for b in booleans {
            let parts = b.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("invalid --bool '\(b)': write NAME=1 or NAME=0, e.g. --bool virt_use_execmem=1")
            }
            switch parts[1].lowercased() {
            case "1", "on", "true": out[parts[0]] = true
            case "0", "off", "false": out[parts[0]] = false
            default: throw ValidationError("invalid --bool '\(b)': the value must be 1 or 0 (on/off)")
            }
        }
        return out
    }

    /// The policy and a description of where it came from.
    func load() throws -> (PolicyDatabase, String) {
        var policy: PolicyDatabase
        var source: String
        if let path = self.policy {
            policy = try Self.read(path)
            source = path
        } else {
            let root = HostSELinuxConfiguration.resolveRoot(global.selinuxRoot)
            let config = try HostSELinuxConfiguration.load(root: root)
            if let path = config.policyPath {
                policy = try Self.read(path)
                source = path
            } else {
                policy = try BuiltInPolicy.load()
                source = "svirt built-in policy (\(root) has no binary policy)"
            }
        }
        var overrides: [String: Bool] = [:]
        if self.policy == nil, let selinuxfs = HostProbe().selinuxfsMount() {
            // The host's policy as the kernel runs it: its booleans' current values, not the file's defaults.
            let known = Set(policy.booleans.map(\.name))
            for b in HostProbe().kernelBooleans(selinuxfs: selinuxfs, prefix: "") where known.contains(b.name) {
                if let v = b.value { overrides[b.name] = v == "on" }
            }
        }
        overrides.merge(try parsedBooleans()) { _, given in given }
        if !overrides.isEmpty {
            do { policy = try policy.settingBooleans(overrides) } catch let e as PolicyFormatError {
                throw ValidationError("\(e.section): \(e.found)")
            }
        }
        return (policy, source)
    }

    static func read(_ path: String) throws -> PolicyDatabase {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("cannot read SELinux policy '\(path)': no such file; give a binary policy such as /etc/selinux/default/policy/policy.33")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read SELinux policy '\(path)': permission denied; run as root or copy the file")
        }
        do {
            return try PolicyDatabase(bytes: [UInt8](data), source: path)
        } catch let e as PolicyFormatError {
            throw ValidationError(e.description)
        }
    }
}

/// Resolves context text against a policy, as a usage error that says what is wrong.
func resolveContext(_ text: String, in policy: PolicyDatabase, role: String) throws -> PolicyContext {
    do {
        return try policy.resolve(text)
    } catch let e as PolicyFormatError {
        throw ValidationError("invalid \(role) context '\(text)': \(e.found)")
    }
}
