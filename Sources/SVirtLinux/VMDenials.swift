import Foundation
import Glibc
import SELinux
import SELinuxPolicy
import SVirt

/// What marks a VM in a denial: its labels (process and image), its level (when it has categories) and its QEMU
/// pids: the running one and those recorded at each start in the registry's event log.
public struct VMIdentity: Sendable, Hashable, Codable {
    public var domain: String
    public var contexts: [String]
    public var levels: [String]
    public var pids: [Int32]

    /// True when the record's scontext or tcontext is one of the VM's labels or carries its level, or its `pid`
    /// is one of the VM's QEMU pids.
    public func matches(_ r: AVCRecord) -> Bool {
        let cs = Set(contexts), ls = Set(levels)
        for c in [r.source, r.target] {
            if cs.contains(c.description) { return true }
            if let low = c.range?.low, !low.categories.isEmpty, ls.contains(low.description) { return true }
        }
        if let p = r.fields["pid"].flatMap({ Int32($0) }), pids.contains(p) { return true }
        return false
    }

    public var isEmpty: Bool { contexts.isEmpty && levels.isEmpty && pids.isEmpty }
}

/// One denial that concerns a VM, explained.
public struct VMDenial: Sendable, Hashable, Codable {
    /// `audit` (an AVC record) or `landlock` (an EACCES svirt recorded from a Landlock-confined QEMU).
    public var origin: String
    /// The line of the audit input, for `audit`.
    public var line: Int?
    /// The audit stamp (`TIME:SERIAL`), or for `landlock` the time svirt saw it (seconds since the epoch).
    public var time: String?
    /// The AVC line, or QEMU's words.
    public var text: String
    public var path: String?
    /// For `landlock`: the rule of the VM's ruleset that refused it.
    public var landlockRule: String?
    /// The policy's explanation (for `landlock`: of the same access under SELinux).
    public var explanation: DenialExplanation
}

/// The denials of one VM.
public struct VMDenialReport: Sendable, Hashable, Codable {
    public var domain: String
    public var identity: VMIdentity
    /// What was read: `audit log PATH`, `standard input`, `svirt's Landlock records`.
    public var sources: [String]
    public var policy: String
    public var denials: [VMDenial]
    /// What the reader should know (no identity yet, no audit log, ...).
    public var notes: [String]
}

/// Collects the denials that concern one VM and explains each with the policy engine (the host's policy with the
/// effective booleans, `BooleanStore.effectivePolicy()`).
public struct VMDenials {
    public let env: HostEnvironment
    public let registry: SQLiteRegistry
    public let policy: PolicyDatabase
    public let policySource: String
    public var probe = HostProbe()

    public init(environment env: HostEnvironment, registry: SQLiteRegistry, policy: PolicyDatabase, policySource: String) {
        self.env = env
        self.registry = registry
        self.policy = policy
        self.policySource = policySource
    }

    /// Over the host's policy with svirt's effective booleans.
    public init(store: BooleanStore) throws {
        self.init(environment: store.env, registry: store.registry, policy: try store.effectivePolicy(),
                  policySource: store.policySource)
    }

    /// The default audit log.
    public static let auditLog = "/var/log/audit/audit.log"

    /// The VM's identity: its running labels and pid, its static label, and the labels and pids of its past
    /// starts from the event log. `.notFound` when svirt knows no VM by that name (defined, running or logged).
    public func identity(of name: String) throws -> VMIdentity {
        var contexts: [String] = [], pids: [Int32] = []
        var known = false
        func add(_ text: String?) {
            guard let text, let c = try? SecurityContext(parsing: text), !contexts.contains(c.description) else { return }
            contexts.append(c.description)
        }
        if let run = try registry.runningDomain(named: name) {
            known = true
            add(run.label)
            add(run.imageLabel)
            if let p = run.process?.pid { pids.append(p) }
        }
        if let def = try registry.definedDomain(named: name) {
            known = true
            if let d = try? DomainDefinition(xml: def.xml, source: "the definition of '\(name)'"),
               d.selinuxSeclabel.type == .static, let l = d.selinuxSeclabel.selinuxLabel {
                add(l.description)
                add(d.selinuxSeclabel.selinuxImageLabel?.description)
            }
        }
        for e in try registry.events(domain: name, kind: "start", limit: 1000) {
            known = true
            // "started: pid N, label L, MODE" (L holds commas: s0:c1,c2)
            let m = e.message
            if let p = m.range(of: "pid "), let end = m[p.upperBound...].firstIndex(of: ","),
               let n = Int32(m[p.upperBound..<end]), !pids.contains(n) {
                pids.append(n)
            }
            if let l = m.range(of: ", label "), let end = m.range(of: ", ", options: .backwards), end.lowerBound > l.upperBound {
                add(String(m[l.upperBound..<end.lowerBound]))
            }
        }
        if !known, try !LandlockDenialLog.recorded(domain: name, registry: registry, limit: 1).isEmpty { known = true }
        guard known else { throw SVirtError(.notFound, "failed to get domain '\(name)': svirt knows no VM by that name") }
        var levels: [String] = []
        for c in contexts {
            if let low = (try? SecurityContext(parsing: c))?.range?.low, !low.categories.isEmpty, !levels.contains(low.description) {
                levels.append(low.description)
            }
        }
        return VMIdentity(domain: name, contexts: contexts, levels: levels, pids: pids)
    }

    /// The denials of VM `name`: the AVC records of `auditText` (named `auditSource`; nil: no audit input) that
    /// match its identity, then the Landlock refusals svirt recorded for it (and those in a running VM's live
    /// QEMU log), each explained.
    public func collect(vm name: String, auditText: String?, auditSource: String?) throws -> VMDenialReport {
        let id = try identity(of: name)
        var report = VMDenialReport(domain: name, identity: id, sources: [], policy: policySource, denials: [], notes: [])
        if let auditText {
            report.sources.append(auditSource ?? "audit input")
            if id.isEmpty {
                report.notes.append("'\(name)' has no label yet (a dynamic label is given at start, and no start is recorded), "
                                    + "so no AVC record can be told to be its own")
            }
            var unreadable: [String] = []
            for (n, line) in auditText.textLines().enumerated() {
                let parsed: AVCRecord?
                do { parsed = try AVCRecord.parse(String(line)) } catch {
                    unreadable.append("line \(n + 1): \((error as? SELinuxError)?.message ?? "\(error)")")
                    continue
                }
                guard !id.isEmpty, let r = parsed, r.denied, id.matches(r) else { continue }
                report.denials.append(VMDenial(origin: "audit", line: n + 1, time: r.stamp, text: String(line), path: r.objectName,
                                               landlockRule: nil, explanation: withStoreFix(policy.explain(denial: r))))
            }
            if let first = unreadable.first {
                report.notes.append("\(unreadable.count) AVC line\(unreadable.count == 1 ? "" : "s") could not be read (\(first))")
            }
        }
        report.sources.append("svirt's Landlock records")
        var landlock = try LandlockDenialLog.recorded(domain: name, registry: registry)
        if let run = try registry.runningDomain(named: name) {
            let recorded = Set(landlock.map(\.message))
            landlock += LandlockDenialLog.live(run).filter { !recorded.contains($0.message) }
        }
        for d in landlock { report.denials.append(explain(d)) }
        return report
    }

    /// `collect` over an audit log file: `auditLog` (default `/var/log/audit/audit.log`) when it exists, with a
    /// note when it does not (no auditd), so only svirt's Landlock records are read. What the console calls.
    public func collect(vm name: String, auditLog path: String = VMDenials.auditLog) throws -> VMDenialReport {
        var text: String?
        if let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() {
            text = String(decoding: data, as: UTF8.self)
        }
        var report = try collect(vm: name, auditText: text, auditSource: text == nil ? nil : "audit log \(path)")
        if text == nil {
            report.notes.insert("\(path) does not exist or is not readable (no auditd?); pipe ausearch output with '-' or name a log file",
                                at: 0)
        }
        return report
    }

    /// A Landlock refusal with the SELinux decision the policy gives for the same access.
    public func explain(_ d: LandlockDenial) -> VMDenial {
        var e = DenialExplanation(permissions: [], source: d.process ?? "", target: "", tclass: "file", object: d.path,
                                  result: "UNKNOWN", reason: "", fixes: [])
        if let p = d.process, let process = try? SecurityContext(parsing: p), let path = d.path {
            let (tclass, exists) = DomainAccessNeeds.objectClass(of: path)
            var perms = tclass == "dir" ? ["open", "read", "search"] : ["open", "read"]
            if d.write != false && tclass != "dir" { perms.append("write") }
            if let (target, from) = label(of: path, exists: exists) {
                let record = AVCRecord(denied: true, permissions: perms, source: process, target: target, tclass: tclass,
                                       fields: ["path": path])
                e = withStoreFix(policy.explain(denial: record))
                e.reason = "SELinux (\(target), from \(from)): " + e.reason
            } else {
                e.reason = "\(path) has no label and file_contexts gives none: the policy cannot be asked"
            }
        } else {
            e.reason = d.process == nil ? "the VM had no process label" : "QEMU's message names no path"
        }
        return VMDenial(origin: "landlock", line: nil, time: String(format: "%.3f", d.at), text: d.message, path: d.path,
                        landlockRule: d.rule, explanation: e)
    }

    /// Where SELinux is off, a boolean fix also names svirt's own store, which decides svirt's checks there.
    func withStoreFix(_ e: DenialExplanation) -> DenialExplanation {
        guard !e.booleans.isEmpty, probe.selinux() == .disabled else { return e }
        var e = e
        e.fixes += e.booleans.map { "svirt booleans \($0.name)=\($0.value ? "on" : "off") (SELinux is off here: svirt's boolean store decides)" }
        return e
    }

    /// The label the kernel would see on `path`: its `security.selinux`, else its file_contexts default.
    func label(of path: String, exists: Bool) -> (SecurityContext, String)? {
        if exists, let c = DomainAccessNeeds.xattrLabel(path) { return (c, "security.selinux") }
        if let fc = try? env.selinux().loadFileContexts(), let d = try? fc.defaultLabel(for: path, kind: .regular) {
            return (d, "file_contexts")
        }
        return nil
    }
}
