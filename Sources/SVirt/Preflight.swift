import SELinux

/// Before a VM with a static label starts: may its process label use each of its resources with the labels
/// they will carry? The chapter's Static_VM1 is the case: `svirt_t` cannot use `virt_image_t`, so the VM would
/// fail on its first disk access. The preflight refuses it and says what fixes it.
public struct Preflight: Sendable {
    public var checker: any AccessChecker
    public var store: any FileLabelStore
    public var contexts: ContextsConfiguration

    public init(checker: any AccessChecker, store: any FileLabelStore, contexts: ContextsConfiguration) {
        self.checker = checker
        self.store = store
        self.contexts = contexts
    }

    /// The label an unlabelled file has for the kernel.
    public static let unlabeled = SecurityContext(user: "system_u", role: "object_r", type: "unlabeled_t",
                                                  range: SecurityRange(SecurityLevel(sensitivity: 0)))

    public struct Check: Sendable, Hashable {
        public var entry: LabelPlan.Entry
        /// The label the resource will carry while the VM runs.
        public var target: SecurityContext
        public var objectClass: String
        public var permissions: [String]
        public var decision: AccessDecision
    }

    public struct Report: Sendable {
        public var checks: [Check]
        /// Checks the checker could not decide.
        public var unchecked: [String]
    }

    /// Whether the preflight applies: static labels only (dynamic labels relabel everything the VM uses).
    public static func applies(to plan: LabelPlan) -> Bool { plan.label.type == .static && plan.label.process != nil }

    /// Checks every local resource of a static-label VM. Throws `SVirtError(.preflight)` that lists each denial
    /// with its reason and its fix; checks the checker cannot decide are returned as `unchecked`.
    public func run(_ plan: LabelPlan) throws -> Report {
        var report = Report(checks: [], unchecked: [])
        guard Self.applies(to: plan), let process = plan.label.process else { return report }
        for entry in plan.entries where Self.checked(entry.kind) {
            let path: String
            let file: any LabeledFile
            do {
                path = try store.resolve(entry.path)
                file = try store.open(path)
            } catch let e as SVirtError where e.code == .notFound {
                continue  // labelling reports missing files
            }
            let target: SecurityContext
            if let c = entry.context {
                target = c
            } else {
                let text = (try? file.selinuxContext()) ?? nil
                target = text.flatMap { try? SecurityContext(parsing: $0) } ?? Self.unlabeled
            }
            let (cls, perms) = Self.access(file.kind, entry.access)
            let decision = try checker.check(source: process, target: target, objectClass: cls, permissions: perms)
            report.checks.append(Check(entry: entry, target: target, objectClass: cls, permissions: perms, decision: decision))
            if case .unknown(let why) = decision {
                report.unchecked.append("\(entry.resource) \(path): not checked (\(why))")
            }
        }
        let denials = report.checks.compactMap { c -> String? in
            guard case .denied(let d) = c.decision else { return nil }
            return explain(c, d, process: process, plan: plan)
        }
        if !denials.isEmpty {
            throw SVirtError(.preflight, "'\(plan.domain)' cannot start: its process label \(process) may not use "
                             + "\(denials.count == 1 ? "one of its resources" : "\(denials.count) of its resources"):\n"
                             + denials.map { "  - " + $0 }.joined(separator: "\n"))
        }
        return report
    }

    static func checked(_ kind: LabelPlan.Kind) -> Bool {
        switch kind {
        case .disk, .backingImage, .nvram, .kernel, .initrd, .dtb, .loader, .characterDevice, .hostDevice, .tpm, .input, .runtime:
            return true
        case .filesystem:
            return false  // virtiofsd, not the emulator, opens the shared directory
        }
    }

    /// The object class and permissions QEMU needs on a file of `kind`.
    public static func access(_ kind: FileKind, _ access: LabelPlan.Access) -> (String, [String]) {
        let cls: String
        switch kind {
        case .regular, .unknown, .symlink: cls = "file"
        case .directory: cls = "dir"
        case .blockDevice: cls = "blk_file"
        case .characterDevice: cls = "chr_file"
        case .fifo: cls = "fifo_file"
        case .socket: cls = "sock_file"
        }
        if kind == .socket { return (cls, ["getattr", "write"]) }
        if kind == .directory { return (cls, access == .read ? ["getattr", "open", "read", "search"] : ["getattr", "open", "read", "search", "write", "add_name"]) }
        return (cls, access == .read ? ["getattr", "open", "read"] : ["getattr", "open", "read", "write"])
    }

    func explain(_ c: Check, _ d: Denial, process: SecurityContext, plan: LabelPlan) -> String {
        let verb = c.entry.access == .read ? "read" : "read and write"
        var s = "\(c.entry.resource) \(c.entry.path) (\(c.target)): \(process.type) may not \(verb) it"
        let relabelFix = c.entry.context == nil ? " or set relabel='yes' so svirt labels it" : ""
        switch d.kind {
        case .typeEnforcement:
            s += " — the policy has no rule that lets \(process.type) use \(c.target.type) \(c.objectClass)s"
            if c.target.type != contexts.imageBase.context.type {
                s += "; run 'chcon -t \(contexts.imageBase.context.type) \(c.entry.path)'\(relabelFix)"
            }
        case .boolean:
            s += " — the boolean\(d.booleans.count == 1 ? "" : "s") \(d.booleans.joined(separator: ", ")) would allow it; run "
                + d.booleans.map { "'setsebool -P \($0) on'" }.joined(separator: " or ")
        case .constraint:
            s += " — the levels do not allow it (\(d.detail.trimmingCharacters(in: " \n")))"
            if let r = process.range { s += "; give the file the VM's level with 'chcon -l \(r.low) \(c.entry.path)'\(relabelFix)" }
        case .rbac, .bounds, .other:
            s += " — \(d.kind.rawValue): \(d.detail)"
        }
        return s
    }
}
