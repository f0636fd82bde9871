import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirtXen

/// `svirt xen check-config FILE.cfg...`: the labels of xl.cfg files and the checks Xen makes while building them.
struct XenCheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check an xl.cfg's labels against a Xen policy and simulate the domain build, step by step.",
        discussion: """
            Reads seclabel, init_seclabel and device_model_stubdomain_seclabel, checks each label's user, role, type \
            and level, then follows the build as the hypervisor checks it: create on the create label from dom0; \
            relabelfrom, relabelto and transition when init_seclabel is used; make_priv_for, set_as_target and \
            set_target for a stub device model; passthrough devices; unpause. Each step is allowed or denied with the \
            reason. Exits 0 when every step is allowed, 1 when one is denied, 2 when a file cannot be read.
            """)

    @OptionGroup var options: XenPolicyOptions
    @Option(help: ArgumentHelp("The domain that builds guests (default: dom0's initial SID).", valueName: "CONTEXT"))
    var toolstack: String?
    @Flag(help: "Print one line per permission checked (STEP;SOURCE;TARGET;CLASS;PERMISSION;VERDICT).") var lines = false
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: ArgumentHelp("xl domain configuration files.", valueName: "FILE.cfg")) var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one xl.cfg file") }
        if let t = toolstack { _ = try parseArgument(t) { try SecurityContext(parsing: $0) } }
    }

    func run() async throws {
        let (policy, source) = try options.load()
        let builds: [XenDomainBuild] = try await reportingXenErrors("check-config") {
            let ts = try toolstack.map { XenDomain(name: "toolstack", label: try SecurityContext(parsing: $0)) }
            return try readXenConfigurations(files).map {
                try XenDomainBuild($0, policy: policy, toolstack: ts, iommu: options.iommu)
            }
        }
        if json {
            let reports = builds.map { $0.report(policy: source, release: policy.release) }
            if reports.count == 1 { try printJSON(reports[0]) } else { try printJSON(reports) }
        } else if lines {
            for b in builds { for l in b.stepLines { print(l) } }
        } else {
            print(builds.map { $0.text(policy: source, release: policy.release, assumed: policy.releaseAssumed) }
                .joined(separator: "\n\n"))
        }
        if !builds.allSatisfy(\.allowed) { throw ExitCode(1) }
    }
}
