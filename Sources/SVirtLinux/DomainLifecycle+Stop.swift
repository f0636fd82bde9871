import Foundation
import SELinux
import SVirt

extension DomainLifecycle {
    /// How to stop a guest.
    public enum StopMode: Sendable, Hashable {
        /// SIGTERM, then SIGKILL (`virsh destroy`).
        case destroy
        /// The ACPI power button over QMP, and `destroy` when the guest is still up after `timeout`.
        case shutdown(timeout: Duration)
    }

    /// What `stop` (or a reconciliation) did.
    public struct Stopped: Sendable {
        public var name: String
        public var outcome: StopOutcome
        /// The labels given back (nil when the restore could not run at all).
        public var restored: SecurityDriver.Restored?
        public var owners: [DACRelabeler.Item]
        /// What could not be given back (each also logged).
        public var failures: [String]
        public var warnings: [String]
        /// The domain was transient and is gone.
        public var vanished: Bool
    }

    /// Stops a running guest and gives everything back. `.notFound` ("domain is not running") when it does not run,
    /// `.state` when another svirt process is starting or stopping it.
    public func stop(name: String, mode: StopMode) async throws -> Stopped {
        let row = try local.claimStop(name: name, holder: holder, isAlive: { self.env.proc.isAlive($0) })
        var outcome = StopOutcome.alreadyGone
        if let g = row.guest {
            switch mode {
            case .destroy: outcome = GuestSupervisor.stop(g, powerdownTimeout: .zero, proc: env.proc)
            case .shutdown(let t): outcome = GuestSupervisor.stop(g, powerdownTimeout: t, proc: env.proc)
            }
        }
        let done = await release(row, outcome: outcome)
        try? local.log(domain: name, kind: "stop", message: "\(outcome.rawValue)"
                       + (done.failures.isEmpty ? "" : "; not given back: " + done.failures.joined(separator: "; ")))
        return done
    }

    /// After the process is gone: owners and labels back, level released, runtime directory and row removed.
    func release(_ row: RunningDomain, outcome: StopOutcome) async -> Stopped {
        var failures: [String] = []
        var warnings: [String] = []
        var restored: SecurityDriver.Restored?
        var owners: [DACRelabeler.Item] = []
        do {
            var driver = try driver()
            // The files the start held are reopened by their handles: owners and labels go back to those inodes,
            // whatever their paths name now.
            let held = HeldFileLabelStore(base: XattrFileLabelStore(), records: row.details.heldFiles ?? [])
            if !held.files.isEmpty || !held.gone.isEmpty { driver.store = held }
            for g in held.gone {
                warnings.append("\(g.planPath) was deleted while '\(row.name)' ran, so there was no file to give its owner "
                                + "and label back to; a file at that path now is another file, and was left alone")
            }
            let domain = try DomainDefinition(xml: row.liveXML, mode: row.label == nil && row.imageLabel == nil ? .inactive : .live,
                                              source: "the live XML of '\(row.name)'")
            let runtime = RuntimeResources(privatePaths: row.details.privatePaths)
            // Owners first: their paths come from the plan, which restore computes again from the live XML.
            if row.details.ownersChanged {
                let label = try domain.mode == .live ? driver.generator.liveLabel(of: domain) : nil
                if let label {
                    let plan = try driver.planner.plan(for: domain, label: label, runtime: runtime, mode: .restore)
                    let paths = DACRelabeler.paths(plan, domain: domain).filter { !row.details.privatePaths.contains($0) }
                    let dac = DACRelabeler(bootTime: driver.bootTime)
                    let heldFiles = paths.compactMap { p in held.keys[p].flatMap { held.files[$0] } }
                    let byPath = paths.filter { held.keys[$0].flatMap { held.files[$0] } == nil && !held.isGone($0) }
                    let r1 = dac.restoreAll(files: heldFiles, holder: row.name)
                    let r2 = dac.restoreAll(byPath, holder: row.name)
                    owners = r1.items + r2.items
                    failures += r1.failures + r2.failures
                }
                do { try KVMDeviceAccess(bootTime: driver.bootTime).release(holder: row.name) } catch {
                    failures.append("taking back access to /dev/kvm from '\(row.name)': \(error)")
                }
            }
            let r = try await driver.restoreAll(for: domain, runtime: runtime)
            restored = r
            failures += r.report.failures
            warnings += r.report.warnings + r.warnings.filter { w in !r.unreleased.contains { w.contains("level \($0.level) ") } }
            for u in r.unreleased {
                if let done = await releaseLater?(u.level) {
                    warnings.append("the level \(u.level) of '\(row.name)': \(done)")
                } else {
                    failures.append("the level \(u.level) of '\(row.name)' stays reserved: \(u.reason)")
                }
            }
        } catch {
            failures.append("restoring the labels of '\(row.name)': \(error)")
        }
        // What Landlock refused QEMU, from its log, before the runtime directory goes.
        for d in LandlockDenialLog.live(row) {
            LandlockDenialLog.record(d.message, origin: d.origin, running: row, registry: local)
        }
        if let dir = row.runtimeDirectory { RuntimeDirectory(path: dir).remove() }
        do { try local.removeRunning(name: row.name) } catch { failures.append("removing the running record: \(error)") }
        let vanished = row.details.transient || ((try? local.definedDomain(named: row.name)) ?? nil) == nil
        return Stopped(name: row.name, outcome: outcome, restored: restored, owners: owners, failures: failures,
                       warnings: warnings, vanished: vanished)
    }

    /// One VM reconciliation did.
    public struct Reconciled: Sendable {
        public var name: String
        /// Why it was found shut off.
        public var reason: String
        public var stopped: Stopped
    }

    /// Every running row whose process is gone (or whose starting or stopping svirt process died) is shut off:
    /// labels and owners given back, level released, the reason logged. Files a dead svirt process was creating
    /// for a domain that was never defined (a clone cut short) are removed. Rows another live svirt process holds
    /// are left to it. Errors never stop a reconciliation; they are logged.
    @discardableResult
    public func reconcile() async -> [Reconciled] {
        reconcilePendingFiles()
        guard let rows = try? local.runningDomains() else { return [] }
        var out: [Reconciled] = []
        for snapshot in rows where staleReason(snapshot) != nil {
            // Decide again inside the claim: the row may have moved on since the snapshot.
            var reason = ""
            let claimed: RunningDomain?
            do {
                claimed = try local.claimIfStale(name: snapshot.name, holder: holder) { r in
                    guard let why = staleReason(r) else { return false }
                    reason = why
                    return true
                }
            } catch {
                try? local.log(domain: snapshot.name, kind: "reconcile", message: "could not claim it: \(error)")
                continue
            }
            guard let claimed else { continue }
            let r = claimed
            var outcome = StopOutcome.alreadyGone
            if let g = claimed.guest, env.proc.isAlive(g.identity) {
                // A start that never finished, or a stop cut short: finish it.
                outcome = GuestSupervisor.stop(g, powerdownTimeout: .zero, proc: env.proc)
            }
            let stopped = await release(claimed, outcome: outcome)
            try? local.log(domain: r.name, kind: "reconcile", message: "shut off: \(reason); labels restored and level released"
                           + (stopped.failures.isEmpty ? "" : "; not given back: " + stopped.failures.joined(separator: "; ")))
            out.append(Reconciled(name: r.name, reason: reason, stopped: stopped))
        }
        return out
    }

    /// Why a running row is stale (its process is gone, or the svirt process acting on it died), or nil when it
    /// is not.
    func staleReason(_ r: RunningDomain) -> String? {
        switch r.state {
        case .running:
            if let p = r.process, env.proc.isAlive(p) { return nil }
            return r.process.map { "its \(r.details.standIn ? "guest" : "QEMU") process (pid \($0.pid)) is gone" } ?? "it has no process"
        case .starting, .stopping:
            guard let h = r.holder else { return "no svirt process holds it" }
            if h == holder || env.proc.isAlive(h) { return nil }
            return "the svirt process (pid \(h.pid)) that was \(r.state == .starting ? "starting" : "stopping") it is gone"
        }
    }
}
