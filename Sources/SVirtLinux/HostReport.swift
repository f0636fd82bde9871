import Foundation
import SELinux
import SVirt

/// What `svirt host` reports, as a value that prints as text or encodes as JSON.
public struct HostReport: Sendable, Codable {
    public struct ContextEntry: Sendable, Codable {
        public var role: String
        public var context: String?
        public var source: String
    }

    public struct BooleanEntry: Sendable, Codable {
        public var name: String
        /// `on` or `off`, or nil when it cannot be read (`detail` says why).
        public var value: String?
        public var detail: String?
    }

    public var selinux: String
    public var selinuxDetail: String
    public var selinuxRoot: String
    public var configuredMode: String?
    public var policyType: String?
    public var policyTypeSource: String?
    public var policyPath: String?
    public var policyVersion: Int?
    /// Why the host's policy is not used, when it has one.
    public var policyProblem: String?
    /// The kernel's `virt_*` booleans, from selinuxfs (empty where SELinux is off).
    public var booleans: [BooleanEntry]
    public var fileContexts: String?
    public var contexts: [ContextEntry]
    public var managerContext: String
    public var managerContextSource: String
    public var categoryPool: String?
    public var categoryPairs: Int?
    public var poolError: String?
    public var landlockABI: Int?
    public var landlockDetail: String
    public var kvmUsable: Bool
    public var kvmDetail: String
    public var stateDirectory: String
    public var labelsWritable: Bool
    public var labelsDetail: String
    public var confinement: String
    public var notes: [String]

    /// Gathers the report. It writes nothing but a probe file in the state directory (removed at once).
    public static func gather(environment env: HostEnvironment, probe: HostProbe = HostProbe()) throws -> HostReport {
        let sel = try env.selinux()
        let state = probe.selinux()
        let mount = probe.selinuxfsMount()
        let c = sel.contexts
        var entries: [ContextEntry] = [
            ContextEntry(role: "process (KVM)", context: c.processBase.context.description, source: c.processBase.source.description),
        ]
        if let t = c.tcgProcessBase {
            entries.append(ContextEntry(role: "process (TCG)", context: t.context.description, source: t.source.description))
        } else {
            entries.append(ContextEntry(role: "process (TCG)", context: nil,
                                        source: "none: TCG guests take \(c.processBase.context.type) and need virt_use_execmem"))
        }
        entries += [
            ContextEntry(role: "image", context: c.imageBase.context.description, source: c.imageBase.source.description),
            ContextEntry(role: "shared image", context: c.imageBase.context.description, source: c.imageBase.source.description),
            ContextEntry(role: "read-only content", context: c.contentLabel.context.description, source: c.contentLabel.source.description),
            ContextEntry(role: "restored image", context: c.restoreFallback.context.description, source: c.restoreFallback.source.description),
        ]
        let manager = env.managerContext()
        var poolText: String?, pairs: Int?, poolError: String?
        do {
            let pool = try env.pool()
            poolText = pool.description
            pairs = pool.pairCount
        } catch {
            poolError = String(describing: error)
        }
        let ll = probe.landlock()
        var kvm = probe.kvm()
        if kvm.usable, getuid() == 0,
           let user = try? GuestUser.resolve(user: env.configuration.user, group: env.configuration.group), !user.isRoot {
            // QEMU never runs as root: what counts is whether the guest user can open it.
            let asGuest = KVMDeviceAccess.usable(by: user)
            kvm.reason += asGuest.usable ? "; \(user.user), the guest user, can open it"
                : "; \(asGuest.reason), so svirt gives \(user.user) an ACL entry on it for each KVM guest's life"
        }
        try? env.state.create()
        let labels = probe.labelsWritable(in: env.state.path, imageLabel: c.imageBase.context.description)
        return HostReport(
            selinux: state.rawValue,
            selinuxDetail: mount.map { "selinuxfs at \($0)" } ?? "selinuxfs is not mounted: the kernel does not run SELinux",
            selinuxRoot: sel.root,
            configuredMode: sel.configuredMode?.rawValue,
            policyType: sel.policyType,
            policyTypeSource: sel.policyTypeSource?.description,
            policyPath: sel.policyPath, policyVersion: sel.policyVersion, policyProblem: sel.policyProblem,
            booleans: mount.map { probe.kernelBooleans(selinuxfs: $0, prefix: "virt_") } ?? [],
            fileContexts: sel.fileContextsPath,
            contexts: entries,
            managerContext: manager.context.description, managerContextSource: manager.source.description,
            categoryPool: poolText, categoryPairs: pairs, poolError: poolError,
            landlockABI: ll.abi, landlockDetail: ll.reason,
            kvmUsable: kvm.usable, kvmDetail: kvm.reason,
            stateDirectory: env.state.path,
            labelsWritable: labels.writable, labelsDetail: labels.reason,
            confinement: probe.mechanism().rawValue,
            notes: sel.notes)
    }

    /// What `svirt start` does under a mechanism, in a few words.
    public static func explain(_ mechanism: String) -> String {
        switch HostProbe.Mechanism(rawValue: mechanism) {
        case .selinux?: return "active: the kernel enforces each VM's SELinux label"
        case .selinuxPermissive?: return "active: VMs get their SELinux labels, but the kernel only logs denials"
        case .landlock?: return "active: SELinux is off, so each VM runs in a Landlock ruleset whose every grant the policy "
            + "allows; labels are still written"
        case .none?, nil: return "nothing can confine VMs here: svirt start refuses unless --unconfined"
        }
    }

    /// The report as text for people.
    public var text: String {
        var l: [String] = []
        func row(_ k: String, _ v: String) { l.append(k.padding(toLength: 18, withPad: " ", startingAt: 0) + v) }
        row("SELinux:", "\(selinux) (\(selinuxDetail))")
        if let m = configuredMode { row("Configured mode:", "\(m) (\(selinuxRoot)/config; the kernel's state is the line above)") }
        row("Policy type:", policyType.map { "\($0) (\(policyTypeSource ?? ""))" } ?? "none: built-in defaults (\(selinuxRoot) has no configuration)")
        row("Policy:", policyPath.map { "\($0) (version \(policyVersion ?? 0))" }
            ?? policyProblem.map { "svirt's built-in policy: \($0)" } ?? "none on the host: svirt's built-in policy")
        row("File contexts:", fileContexts ?? "none on the host")
        if !booleans.isEmpty {
            l.append("Booleans (the kernel's, from selinuxfs):")
            for b in booleans {
                l.append("  " + b.name.padding(toLength: 30, withPad: " ", startingAt: 0) + (b.value ?? "unreadable (\(b.detail ?? "?"))"))
            }
        }
        l.append("Contexts:")
        for e in contexts {
            l.append("  " + e.role.padding(toLength: 19, withPad: " ", startingAt: 0)
                     + (e.context ?? "-").padding(toLength: 42, withPad: " ", startingAt: 0) + " " + e.source)
        }
        row("Manager context:", "\(managerContext) (\(managerContextSource))")
        if let p = categoryPool { row("Category pool:", "\(p), \(categoryPairs ?? 0) pairs") } else { row("Category pool:", poolError ?? "none") }
        row("Landlock:", landlockABI.map { "ABI \($0)" } ?? "unavailable (\(landlockDetail))")
        row("KVM:", kvmUsable ? "usable (\(kvmDetail))" : "not usable (\(kvmDetail))")
        row("State directory:", stateDirectory)
        row("Labels:", labelsWritable ? "writable (\(labelsDetail))" : "not writable (\(labelsDetail))")
        row("Confinement:", "\(confinement) (\(Self.explain(confinement)))")
        if !notes.isEmpty {
            l.append("Notes:")
            for n in notes { l.append("  - \(n)") }
        }
        return l.joined(separator: "\n")
    }
}
