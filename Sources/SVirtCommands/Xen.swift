import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirtXen

/// `svirt xen`: Xen FLASK (XSM) labels, checked offline against the policy Xen loads.
struct Xen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xen",
        abstract: "Check Xen FLASK (XSM) labels offline: xl.cfg labels, domain builds, isolation and MCS categories.",
        discussion: """
            Xen enforces its own FLASK policy in the hypervisor; these commands read that policy (the file Xen \
            loads, e.g. /boot/xenpolicy-4.19) and the xl.cfg files, and answer without a Xen host.
            """,
        subcommands: [XenCheckConfig.self, XenQueryCommand.self, XenMatrix.self, XenLabel.self])
}

extension XenIOMMU: ExpressibleByArgument {}

/// The Xen policy to read, how to read it, and how the host runs.
struct XenPolicyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The Xen binary policy (default: the newest /boot/xenpolicy-*).", valueName: "XENPOLICY"))
    var policy: String?

    @Option(help: ArgumentHelp("The Xen version the policy was built for, which names its initial SIDs (4.2, 4.3 to 4.16, 4.17 and later; default: what the policy tells, else 4.17).", valueName: "VERSION"))
    var xenVersion: String?

    @Option(name: .customLong("bool"), help: ArgumentHelp("Set a policy boolean for this run, e.g. prot_doms_locked=1 (repeatable).", valueName: "NAME=0|1"))
    var booleans: [String] = []

    @Option(help: ArgumentHelp("The IOMMU of the host, which picks the permission a domain needs to use a device: intremap (use_iommu), nointremap (use_iommu_nointremap) or off (use_noiommu).", valueName: "MODE"))
    var iommu: XenIOMMU = .intremap

    func validate() throws {
        _ = try PolicyOptions.parseBooleans(booleans)
        if let v = xenVersion, XenRelease(version: v) == nil {
            throw ValidationError("--xen-version \(v): give a Xen version such as 4.16 or 4.19 (svirt knows 4.2 and later)")
        }
    }

    /// The policy path: the option, else the newest /boot/xenpolicy-VERSION.
    func policyPath() throws -> String {
        if let policy { return policy }
        let boot = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
        let candidates = boot.filter { $0.hasPrefix("xenpolicy-") }.sorted { a, b in
            a.compare(b, options: .numeric) == .orderedAscending
        }
        guard let newest = candidates.last else {
            throw ValidationError("give --policy XENPOLICY: the Xen binary policy (built by 'make -C tools/flask/policy', "
                                  + "installed as /boot/xenpolicy-VERSION); /boot has none")
        }
        return "/boot/" + newest
    }

    /// Reads the policy, applies the booleans, and wraps it for Xen.
    func load() throws -> (XenPolicy, String) {
        let path = try policyPath()
        var db = try PolicyOptions.read(path)
        let overrides = try PolicyOptions.parseBooleans(booleans)
        if !overrides.isEmpty {
            do { db = try db.settingBooleans(overrides) } catch let e as PolicyFormatError {
                throw ValidationError("\(e.section): \(e.found)")
            }
        }
        let release = xenVersion.flatMap { XenRelease(version: $0) }
        do {
            return (try XenPolicy(db, release: release), path)
        } catch let e as XenError {
            throw ValidationError("\(path): \(e.message)")
        }
    }
}

/// Reads and parses xl.cfg files; a file that cannot be read or parsed is an error naming it (and the line).
func readXenConfigurations(_ paths: [String]) throws -> [XenDomainConfiguration] {
    try paths.map { path in
        guard FileManager.default.fileExists(atPath: path) else {
            throw XenError(.value, "no such file; give an xl domain configuration (xl.cfg)", file: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw XenError(.value, "cannot read the file (permission denied?)", file: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw XenError(.syntax, "the file is not UTF-8 text", file: path)
        }
        return try XenDomainConfiguration(parsing: text, source: path)
    }
}

/// Runs `body`; an `XenError` (bad input) is printed as `svirt xen COMMAND: FILE:LINE: message` with exit status 2.
func reportingXenErrors<T>(_ command: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as XenError {
        printError("svirt xen \(command): \(e)")
        throw ExitCode(2)
    }
}

/// A domain named on the command line: an xl.cfg file (the domain it builds), `dom0`, or a context.
func xenDomain(_ text: String, policy: XenPolicy, iommu: XenIOMMU) throws -> XenDomain {
    if text == "dom0" { return try policy.dom0() }
    if text.hasSuffix(".cfg") || text.contains("/") || FileManager.default.fileExists(atPath: text) {
        let config = try readXenConfigurations([text])[0]
        return try XenDomainBuild(config, policy: policy, iommu: iommu).domain
    }
    do {
        let c = try SecurityContext(parsing: text)
        return XenDomain(name: text, label: c)
    } catch {
        throw ValidationError("'\(text)' is not an xl.cfg file, 'dom0', or a context (user:role:type[:level]): \(error)")
    }
}
