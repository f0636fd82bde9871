import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirt
import SVirtLinux
import SVirtXen

/// `svirt xen label FILE.cfg...`: unique MCS category pairs for Xen domains, and the constraints that make them count.
struct XenLabel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Give Xen domains unique MCS category pairs (svirt's allocator) and emit the constraint overlay.",
        discussion: """
            Each domain keeps its label's user, role and type and gets one level sN:cA,cB, unique and never \
            dominating another's; a level already in the file is kept when it is still free. The same level goes on \
            init_seclabel and on the stub device model's label. Without --reserve the levels are drawn in memory, \
            avoiding the ones the files already hold; with --reserve they are reserved in svirt's level registry \
            (owner xen:NAME), so later runs never hand them out again. Xen's MLS policy constrains only the domain \
            class: --overlay writes the mlsconstrain statements (grant, event, mmu) that make categories isolate \
            domains; add them to the policy's MLS section (tools/flask/policy/policy/mls) and rebuild with -M.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: XenPolicyOptions
    @Option(help: ArgumentHelp("The category pool, e.g. c0.c255 (default: the categories the policy gives the domU user).", valueName: "CATEGORIES"))
    var categories: String?
    @Flag(help: "Reserve the levels in svirt's level registry (owner xen:NAME).") var reserve = false
    @Flag(help: "Write the labels into the xl.cfg files.") var write = false
    @Option(help: ArgumentHelp("Write the MCS constraint overlay to FILE ('-': standard output).", valueName: "FILE"))
    var overlay: String?
    @Option(help: ArgumentHelp("A type (or attribute) exempt from the overlay's constraints, e.g. xenstore_t (repeatable); dom0 and mls_priv always are.", valueName: "TYPE"))
    var exempt: [String] = []
    @Option(help: ArgumentHelp("Seed for the in-memory draw, for repeatable output (without --reserve).", valueName: "N"))
    var seed: UInt64?
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: ArgumentHelp("xl domain configuration files.", valueName: "FILE.cfg")) var files: [String] = []

    func validate() throws {
        if files.isEmpty && overlay == nil { throw ValidationError("give xl.cfg files to label, or --overlay FILE") }
        if let c = categories { _ = try parseArgument(c, SVirtConfiguration.parseCategories) }
        if reserve && seed != nil { throw ValidationError("--seed is for the in-memory draw; --reserve uses the registry") }
        if reserve { try global.validateRegistry() }
    }

    struct Out: Codable {
        struct Domain: Codable {
            var name: String
            var file: String
            var level: String
            var kept: Bool
            var labels: [String: String]
            var note: String?
            var written: Bool
        }
        var policy: String
        var pool: String
        var registry: String
        var domains: [Domain]
        var overlay: String?
    }

    func run() async throws {
        let (policy, source) = try options.load()
        try await reportingXenErrors("label") {
            let configs = try readXenConfigurations(files)
            var domains: [Out.Domain] = []
            var poolText = "-", registryText = "-"
            if !configs.isEmpty {
                let pool = try categories.map { try CategoryPool(level: try SVirtConfiguration.parseCategories($0)) }
                let labeler = try XenLabeler(policy: policy, pool: pool)
                poolText = labeler.pool.description
                let assignments: [XenLabeler.Assignment]
                if reserve {
                    let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
                    let opened = try await global.openRegistry(env)
                    registryText = "svirt level registry"
                    do {
                        assignments = try await labeler.assign(configs, registry: opened.levels)
                        await opened.close()
                    } catch {
                        await opened.close()
                        throw error
                    }
                } else {
                    registryText = "in memory (not reserved)"
                    let registry = InMemoryLevelRegistry(seed: seed ?? UInt64.random(in: 1...UInt64.max))
                    // Levels already in the files are taken first, so new ones never collide with them.
                    for c in configs {
                        if let l = c.seclabel?.context.range?.low, l.categories.count == 2, labeler.pool.rank(of: l) != nil {
                            try? await registry.reserveLevel(l, owner: "xen:\(c.name)", kind: .admin, process: nil)
                        }
                    }
                    assignments = try await labeler.assign(configs, registry: registry)
                }
                for (c, a) in zip(configs, assignments) {
                    var written = false
                    if write {
                        let text = try XenLabeler.rewrite(c, with: a)
                        if text != c.config.text {
                            try writeAtomically(text, to: c.file)
                            written = true
                        }
                    }
                    var labels: [String: String] = [:]
                    for (k, v) in a.labels { labels[k] = v.description }
                    domains.append(Out.Domain(name: a.name, file: a.file, level: a.level.description, kept: a.kept,
                                              labels: labels, note: a.note, written: written))
                }
            }
            var overlayText: String?
            if let overlay {
                let o = try XenMCSOverlay(policy: policy, exempt: exempt)
                let text = o.text(for: source)
                overlayText = text
                if overlay != "-" { try writeAtomically(text, to: overlay) }
            }
            if json {
                try printJSON(Out(policy: source, pool: poolText, registry: registryText, domains: domains,
                                  overlay: overlayText))
                return
            }
            if !domains.isEmpty {
                print("policy:    \(source)")
                print("pool:      \(poolText)  (registry: \(registryText))")
                print(table(["Domain", "Level", "Kept", "File", "Labels"], domains.map { d in
                    [d.name, d.level, d.kept ? "yes" : "no", d.file + (d.written ? " (written)" : ""),
                     d.labels.sorted { $0.key < $1.key }.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")]
                }))
                for d in domains { if let n = d.note { print("note: \(d.name): \(n)") } }
                if !write { print("(the files are unchanged; --write writes these labels into them)") }
            }
            if let overlay, let overlayText {
                if overlay == "-" { print(overlayText, terminator: "") } else { print("overlay:   written to \(overlay)") }
            } else if !domains.isEmpty {
                print("note: Xen's MLS policy constrains only the domain class; without the overlay (--overlay FILE) "
                      + "categories do not keep these domains apart")
            }
        }
    }

    /// Writes `text` to `path` through a temporary file in the same directory and a rename.
    func writeAtomically(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).svirt-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp.path, contents: Data(text.utf8)) else {
            throw XenError(.value, "cannot write a temporary file next to it", file: path)
        }
        if let attrs = try? FileManager.default.attributesOfItem(atPath: path), let mode = attrs[.posixPermissions] {
            try? FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: tmp.path)
        }
        guard rename(tmp.path, path) == 0 else {
            try? FileManager.default.removeItem(at: tmp)
            throw XenError(.value, "cannot replace the file (errno \(errno))", file: path)
        }
    }
}
