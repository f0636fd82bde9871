import Foundation
import Glibc
import SELinux
import SVirt

/// Starts, stops and reconciles VMs without a daemon: the registry is the only shared state, and every svirt
/// process that opens it first reconciles it with `/proc`.
///
/// `start` is one sequence in which every step is undone if a later one fails:
/// claim the name (a `starting` row) → label (`SecurityDriver.labelAll`: level, plan, preflight, labels) →
/// record the label → give the files to the guest user (root) → confine (SELinux exec context, or a Landlock
/// ruleset whose every grant the policy allows) → spawn and wait for the monitor → `running`.
///
/// `stop` claims the row (`stopping`), stops the process, gives owners and labels back, releases the level and
/// removes the row. A row whose svirt process died midway is taken over by the next reconciliation.
public final class DomainLifecycle {
    public let env: HostEnvironment
    /// Domains and running VMs.
    public let local: SQLiteRegistry
    /// Where levels are reserved (the local registry, or a shared one).
    public let levels: any LevelRegistry
    public var probe: HostProbe
    /// Where runtime directories are made.
    public var runtimeRoot: String
    /// The svirt executable the stand-in guest runs as.
    public var svirtExecutable: String
    /// svirt's built-in sVirt policy, for decisions the host's policy cannot make (a boolean it lacks).
    public var builtInPolicy: (@Sendable () throws -> any PolicyInspector)?
    /// Gives back later a level the registry would not release at stop (a shared registry out of reach queues
    /// the release); returns what was done, or nil when nothing could be. The labels are restored either way.
    public var releaseLater: (@Sendable (SecurityLevel) async -> String?)?
    /// The svirt process itself: the holder of the rows it acts on.
    public let holder: ProcessIdentity
    private var cachedDriver: SecurityDriver?
    /// Tests: the mechanism to use instead of the probe's answer, and the procfs the spawn writes contexts to.
    var mechanismOverride: HostProbe.Mechanism?
    var launchProcRoot: String?
    private let makeDriver: ((HostEnvironment, any LevelRegistry) throws -> SecurityDriver)?

    public init(environment env: HostEnvironment, local: SQLiteRegistry, levels: (any LevelRegistry)? = nil,
                probe: HostProbe = HostProbe(), runtimeRoot: String? = nil,
                svirtExecutable: String = StandInGuest.currentExecutable(),
                driver: ((HostEnvironment, any LevelRegistry) throws -> SecurityDriver)? = nil) throws {
        self.env = env
        self.local = local
        self.levels = levels ?? local
        self.probe = probe
        self.runtimeRoot = runtimeRoot ?? Self.runtimeRoot(for: env)
        self.svirtExecutable = svirtExecutable
        makeDriver = driver
        builtInPolicy = { try PolicyAccessChecker.builtIn() }
        guard let me = env.proc.selfIdentity() else {
            throw SVirtError(.unsupported, "cannot read this process's start time from \(env.proc.root)/self/stat; "
                             + "svirt needs procfs to record who acts on a VM")
        }
        holder = me
    }

    /// `/run/svirt` (root; `SVIRT_RUNTIME_DIR` overrides) for the default state directory, and `<state>/run`
    /// for any other, so that separate state directories never share runtime directories.
    public static func runtimeRoot(for env: HostEnvironment) -> String {
        let defaultState = StateDirectory.resolve(nil).path
        if ProcessInfo.processInfo.environment["SVIRT_RUNTIME_DIR"] != nil || env.state.path == defaultState {
            return RuntimeDirectory.defaultRoot()
        }
        return "\(env.state.path)/run"
    }

    /// The security driver, made once. By default its checker is svirt's policy engine over the host's policy,
    /// with svirt's own boolean settings applied where SELinux is off (where it is on, the kernel's booleans
    /// decide).
    public func driver() throws -> SecurityDriver {
        if let d = cachedDriver { return d }
        let d: SecurityDriver
        if let makeDriver {
            d = try makeDriver(env, levels)
        } else {
            let booleans = probe.selinux() == .disabled ? try local.booleanSettings() : [:]
            d = try SecurityDriver.host(env, registry: levels, checker: HostPolicyAccessChecker(try env.selinux(), booleans: booleans))
        }
        cachedDriver = d
        return d
    }

    // MARK: Definitions

    /// The definition of `name`: the defined XML, or for a running transient VM its live XML read as a
    /// definition. `.notFound` otherwise.
    public func definition(named name: String) throws -> (domain: DomainDefinition, persistent: Bool) {
        if let r = try local.definedDomain(named: name) {
            return (try DomainDefinition(xml: r.xml, source: "the definition of '\(name)'"), true)
        }
        if let run = try local.runningDomain(named: name) {
            return (try DomainDefinition(xml: run.liveXML, mode: run.label == nil ? .inactive : .live,
                                         source: "the live XML of '\(name)'"), false)
        }
        throw SVirtError(.notFound, "failed to get domain '\(name)'")
    }

    /// Defines (or redefines) a domain.
    @discardableResult
    public func define(_ domain: DomainDefinition) throws -> SQLiteRegistry.DefineOutcome {
        if let run = try local.runningDomain(named: domain.name), run.uuid != domain.uuid {
            throw SVirtError(.alreadyExists, "domain '\(domain.name)' already runs with uuid \(run.uuid); give the new "
                             + "definition that <uuid>, or another <name>")
        }
        let outcome = try local.define(name: domain.name, uuid: domain.uuid, xml: domain.xmlText())
        if var run = try local.runningDomain(named: domain.name), run.details.transient {
            run.details.transient = false
            try local.updateRunning(run)
        }
        try local.log(domain: domain.name, kind: "define", message: outcome == .created ? "defined" : "definition replaced")
        return outcome
    }

    /// Removes a definition. A running VM keeps running as a transient one and disappears when it stops.
    public func undefine(name: String) throws {
        _ = try local.undefine(name: name)
        if var run = try local.runningDomain(named: name) {
            run.details.transient = true
            try local.updateRunning(run)
        }
        try local.log(domain: name, kind: "undefine", message: "undefined")
    }

    // MARK: Start

    public struct StartOptions: Sendable {
        /// Start without SELinux or Landlock confinement (required where neither is available).
        public var unconfined = false
        /// Relabel host system paths and device nodes the XML does not hand over.
        public var force = false
        /// Run svirt's stand-in guest instead of QEMU (where QEMU is missing).
        public var standIn = false
        /// `-S`: no guest code runs until `cont`.
        public var startPaused = false
        /// How long QEMU may take to answer on its monitor.
        public var timeout: Duration = .seconds(30)
        /// Treat the domain as transient (`start --xml`): it is not defined and disappears when it stops.
        public var transient = false

        public init() {}
    }

    /// How a guest was confined.
    public enum Confinement: Sendable, Hashable {
        /// The kernel enforces the exec context (SELinux enforcing or permissive).
        case selinux(enforcing: Bool)
        /// A Landlock ruleset of `grants` path rules, each allowed by the policy.
        case landlock(grants: Int)
        /// Nothing confines it, and why.
        case unconfined(reason: String)

        /// The word `dominfo` shows after the label.
        public var mode: String {
            switch self {
            case .selinux(let enforcing): return enforcing ? "enforcing" : "permissive"
            case .landlock: return "landlock"
            case .unconfined: return "unconfined"
            }
        }

        init?(mode: String?, reason: String?) {
            switch mode {
            case "enforcing": self = .selinux(enforcing: true)
            case "permissive": self = .selinux(enforcing: false)
            case "landlock": self = .landlock(grants: 0)
            case "unconfined": self = .unconfined(reason: reason ?? "")
            default: return nil
            }
        }
    }

    /// What `start` did.
    public struct Started: Sendable {
        public var domain: RunningDomain
        public var label: SecurityLabel
        public var plan: LabelPlan
        public var report: LabelReport
        public var confinement: Confinement
        /// The command line, shell-quoted (for `--verbose`).
        public var commandLine: String
        public var owners: [DACRelabeler.Item]
        public var grants: LandlockGrantCheck.Report?
        public var warnings: [String]
        /// Decisions worth telling (a policy fallback).
        public var notes: [String]
    }

    /// Starts `domain`. See the type's description for the sequence; any failure undoes what was done (labels,
    /// owners, level, runtime directory, the claim) and throws, with QEMU's own words when QEMU failed.
    public func start(_ domain: DomainDefinition, options: StartOptions = StartOptions()) async throws -> Started {
        let mechanism = mechanismOverride ?? probe.mechanism()
        if mechanism == .none && !options.unconfined {
            let ll = probe.landlock()
            throw SVirtError(.confinement, "cannot confine '\(domain.name)': SELinux is disabled and Landlock is unavailable "
                             + "(\(ll.reason)); start it with --unconfined to run it without confinement")
        }
        let persistent = try local.definedDomain(named: domain.name)
        if options.transient, let p = persistent {
            throw SVirtError(.alreadyExists, "domain '\(domain.name)' is already defined (uuid \(p.uuid)); start it by name")
        }
        let root = getuid() == 0
        let user: GuestUser? = root
            ? try GuestUser.resolve(user: env.configuration.user, group: env.configuration.group, source: env.state.configurationPath)
            : nil
        var row = try local.claimStart(name: domain.name, uuid: domain.uuid, xml: domain.xmlText(), holder: holder,
                                       details: RunningDomain.Details(transient: options.transient, user: user))
        var progress = StartProgress()
        do {
            return try await startClaimed(domain, options: options, mechanism: mechanism, user: user, row: &row,
                                          progress: &progress)
        } catch {
            // QEMU's own words on what Landlock refused it, before the runtime directory goes.
            if "\(error)".contains("exited during startup") {
                LandlockDenialLog.record("\(error)", origin: "start", running: row, registry: local)
            }
            let problems = await undoStart(domain, row: row, progress: progress)
            try? local.log(domain: domain.name, kind: "start-failed", message: "\(error)")
            if problems.isEmpty { throw error }
            throw SVirtError((error as? SVirtError)?.code ?? .launch,
                             "\(error)\nundoing the start also failed: " + problems.joined(separator: "; "), cause: error as? SVirtError)
        }
    }

    /// What a start has done so far, for undoing it.
    struct StartProgress {
        var runtime: RuntimeDirectory?
        var prepared: SecurityDriver.PreparedLabels?
        var labelled: SecurityDriver.Labelled?
        var dacFiles: [any LabeledFile] = []
        var kvmGranted = false
        /// Descriptors opened for QEMU, closed once it runs (or the start fails).
        var descriptors: [Int32] = []
        var guest: GuestProcess?
    }

    private func startClaimed(_ domain: DomainDefinition, options: StartOptions, mechanism: HostProbe.Mechanism,
                              user: GuestUser?, row: inout RunningDomain, progress: inout StartProgress) async throws -> Started {
        var warnings: [String] = []
        var notes: [String] = []
        // Everything that can be refused without touching a file comes first.
        let emulator: QEMUEmulator? = options.standIn ? nil
            : try local.emulator(at: QEMUEmulator.locate(arch: domain.os.arch ?? QEMUEmulator.hostArchitecture(), path: domain.emulator),
                                 allowed: env.configuration.emulators, user: user)
        let kvm = probe.kvm()
        // The runtime directory stays root's (0700): QEMU gets its monitor socket and its log as descriptors, so
        // the QEMU user needs nothing there, and cannot plant a symlink that root would later open.
        let runtime = try RuntimeDirectory.create(name: domain.name, root: runtimeRoot)
        progress.runtime = runtime
        var config = try QEMUConfiguration(domain: domain, qmpSocket: runtime.qmpSocket, kvm: kvm)
        config.startPaused = options.startPaused
        let driver = try driver()

        // The level, the plan and the preflight; every path guarded and opened once. Nothing changes yet.
        // The runtime directory is not labelled: QEMU gets its monitor socket and its log as descriptors and never
        // opens anything there.
        let prepared = try await driver.prepareLabels(for: domain, force: options.force,
                                                      protectedDirectories: [env.state.path, runtimeRoot])
        progress.prepared = prepared
        warnings += prepared.warnings + prepared.preflight.unchecked.map { "preflight: \($0)" }
        let label = prepared.label
        let live = domain.xmlText(seclabels: domain.liveSeclabels(with: label))
        row.label = label.process?.description
        row.imageLabel = label.image.description
        row.level = label.reservedLevel?.description
        row.liveXML = live
        row.runtimeDirectory = runtime.path
        row.details.qmpSocket = runtime.qmpSocket
        row.details.logFile = runtime.logFile
        row.details.standIn = options.standIn
        row.details.emulator = emulator?.path ?? svirtExecutable
        row.details.heldFiles = prepared.files.sorted { $0.key < $1.key }.compactMap { HeldFileRecord.make(planPath: $0.key, file: $0.value) }
        try local.updateRunning(row)

        // Every check comes before the first change: the guest user must reach its files...
        let program = emulator?.path ?? svirtExecutable
        var ownedFiles: [any LabeledFile] = []
        if let user, !user.isRoot {
            let paths = DACRelabeler.paths(prepared.plan, domain: domain)
            ownedFiles = paths.compactMap { prepared.files[$0] }
            var unreachable: [String] = []
            if let why = user.unreachableReason(program, write: false, ownerWillBeSet: false) { unreachable.append(why) }
            for f in ownedFiles { if let why = user.unreachableReason(f.path, write: false, ownerWillBeSet: true) { unreachable.append(why) } }
            if !unreachable.isEmpty {
                throw SVirtError(.launch, "'\(domain.name)' would run as \(user), which cannot reach its files:\n"
                                 + Set(unreachable).sorted().map { "  - " + $0 }.joined(separator: "\n"))
            }
        }

        // ...and the launch and its confinement (the Landlock grants, each checked against the policy).
        var launch: LaunchDescription
        var systemRules: [Landlock.PathRule]
        if let emulator {
            // QEMU opens its disks from the files svirt holds: descriptors reopened through /proc/self/fd, never
            // the path again.
            let inherited = try diskDescriptors(&config, files: prepared.files)
            progress.descriptors = inherited.map(\.source)
            launch = try QEMUCommandLine(config, emulator: emulator).launchDescription()
            launch.inheritedDescriptors += inherited
            systemRules = []
            if mechanism == .landlock && !options.unconfined {
                systemRules = try QEMUSystemPaths.compute(for: emulator, kvm: config.accelerator == .kvm).rules
            }
        } else {
            launch = StandInGuest.launchDescription(for: config, svirtExecutable: svirtExecutable)
            systemRules = mechanism == .landlock && !options.unconfined ? try ProgramPaths.compute(for: svirtExecutable).rules : []
            notes.append("QEMU stands in as svirt's built-in guest (\(svirtExecutable) __guest): it opens its disks and answers QMP")
        }
        if let user, !user.isRoot { launch.credentials = user.credentials }
        if let root = launchProcRoot { launch.procRoot = root }
        let confinement = try confine(&launch, domain: domain, label: label, plan: prepared.plan, files: prepared.files,
                                      config: config, mechanism: mechanism, options: options, systemRules: systemRules,
                                      checkSystem: emulator != nil, entrypoint: program, warnings: &warnings, notes: &notes)

        // Now the changes, each recorded first so that a crash at any point is given back by the next command:
        // the labels...
        let labelled = try await driver.commit(prepared)
        progress.prepared = nil
        progress.labelled = labelled
        warnings += labelled.report.warnings

        // ...the owners (root): the guest user gets the files it uses, the very files checked above...
        var owners: [DACRelabeler.Item] = []
        if let user, !user.isRoot {
            progress.dacFiles = ownedFiles
            row.details.ownersChanged = true
            try local.updateRunning(row)
            owners = try DACRelabeler(bootTime: driver.bootTime).labelAll(files: ownedFiles, user: user, holder: domain.name)
            if config.accelerator == .kvm {
                // /dev/kvm is often root's alone (no kvm group): the guest user gets it for the VM's life.
                progress.kvmGranted = true
                if case .granted(let note) = try KVMDeviceAccess(bootTime: driver.bootTime).grant(to: user, holder: domain.name) {
                    notes.append(note)
                }
            }
        }
        row.mechanism = mechanism.rawValue
        row.details.confinement = confinement.mode
        row.details.landlockRules = launch.landlock?.pathRules.map(LandlockRuleRecord.init)
        if case .unconfined(let why) = confinement { row.details.unconfinedReason = why }
        row.details.notes = notes
        try local.updateRunning(row)

        // QEMU's log is appended by QEMU in its VM's domain: it carries the VM's image label.
        if mechanism == .selinux || mechanism == .selinuxPermissive, label.process != nil {
            do {
                try runtime.createLabelledLog(label.image.description)
            } catch {
                warnings.append("QEMU may not be able to write its log \(runtime.logFile): cannot label it "
                                + "\(label.image): \(error)")
            }
        }

        // Spawn, record the process at once, wait for the monitor.
        let commandLine = launch.commandLine
        let name = domain.name
        var spawnedRow = row
        let started = try GuestSupervisor.start(launch, qmpSocket: runtime.qmpSocket, logFile: runtime.logFile,
                                                timeout: options.timeout, proc: env.proc, spawned: { identity in
            spawnedRow.process = identity
            try self.local.updateRunning(spawnedRow)
        })
        started.monitor.close()
        for fd in progress.descriptors { close(fd) }
        progress.descriptors = []
        progress.guest = started.process
        row.process = started.process.identity
        row.state = .running
        row.holder = nil
        try local.updateRunning(row)
        try? local.log(domain: name, kind: "start", message: "started: pid \(started.process.identity.pid), "
                       + "label \(label.process?.description ?? "none"), \(confinement.mode)")
        return Started(domain: row, label: label, plan: labelled.plan, report: labelled.report, confinement: confinement,
                       commandLine: commandLine, owners: owners,
                       grants: lastGrantReport, warnings: warnings, notes: notes)
    }

    /// Opens each disk of `config` again from the file the start holds (`/proc/self/fd/N` of its O_PATH
    /// descriptor: the same inode, whatever the path names now), read-write and read-only for a writable disk,
    /// read-only otherwise, and records them on the disk as the descriptors QEMU inherits (10 and up).
    func diskDescriptors(_ config: inout QEMUConfiguration, files: [String: any LabeledFile]) throws -> [LaunchDescription.InheritedDescriptor] {
        var out: [LaunchDescription.InheritedDescriptor] = []
        var next: Int32 = 10
        do {
            for i in config.disks.indices {
                guard let held = files[config.disks[i].path] as? XattrFile,
                      held.kind == .regular || held.kind == .blockDevice else { continue }
                for mode in config.disks[i].readOnly ? [O_RDONLY] : [O_RDWR, O_RDONLY] {
                    let fd = Glibc.open(held.handle, mode | O_CLOEXEC | O_NOCTTY)
                    guard fd >= 0 else {
                        let e = errno
                        throw SVirtError(.launch, "cannot open \(held.path) for QEMU: \(String(cString: strerror(e)))",
                                         cause: SystemCallError(call: "open", path: held.path, errno: e))
                    }
                    out.append(.init(source: fd, target: next))
                    config.disks[i].descriptors.append(next)
                    next += 1
                }
            }
        } catch {
            for d in out { close(d.source) }
            throw error
        }
        return out
    }

    /// The grant report of the last Landlock start (kept for `Started`).
    private var lastGrantReport: LandlockGrantCheck.Report?

    /// Undoes a failed start; returns what could not be undone.
    private func undoStart(_ domain: DomainDefinition, row: RunningDomain, progress: StartProgress) async -> [String] {
        var problems: [String] = []
        for fd in progress.descriptors { close(fd) }
        if let g = progress.guest { GuestSupervisor.stop(g, powerdownTimeout: .zero, proc: env.proc) }
        if let p = progress.prepared, let driver = try? driver() {
            // Checked but never labelled: only the level goes back.
            if let problem = await driver.cancel(p) { problems.append(problem) }
        }
        if let l = progress.labelled, let driver = try? driver() {
            if !progress.dacFiles.isEmpty {
                problems += DACRelabeler(bootTime: driver.bootTime).restoreAll(files: progress.dacFiles, holder: domain.name).failures
            }
            if progress.kvmGranted {
                do { try KVMDeviceAccess(bootTime: driver.bootTime).release(holder: domain.name) } catch {
                    problems.append("taking back access to /dev/kvm: \(error)")
                }
            }
            do {
                let r = try await driver.restoreAll(for: domain, label: l.label,
                                                    runtime: RuntimeResources(privatePaths: row.details.privatePaths))
                problems += r.report.failures
                problems += r.unreleased.map { "the level \($0.level) stays reserved: \($0.reason)" }
            } catch {
                problems.append("restoring the labels: \(error)")
            }
        }
        progress.runtime?.remove()
        // The running row is what lets a later command finish an undo that failed here (a full disk, a file that
        // would not take its label back): it goes only when everything else went back. Kept, its holder (this
        // process) is gone once the command exits, and the next svirt command reconciles it as a start cut short.
        if problems.isEmpty {
            do { try local.removeRunning(name: domain.name) } catch { problems.append("removing the running record: \(error)") }
        } else {
            // Held by no one, the row is stale for every command, this process's next ones included.
            var kept = row
            kept.holder = nil
            try? local.updateRunning(kept)
            problems.append("the running record of '\(domain.name)' is kept, so the next svirt command finishes giving "
                            + "everything back once the cause is fixed")
        }
        return problems
    }

    // MARK: Confinement

    /// Sets the confinement of `launch` for the mechanism, or refuses.
    private func confine(_ launch: inout LaunchDescription, domain: DomainDefinition, label: SecurityLabel, plan: LabelPlan,
                         files: [String: any LabeledFile], config: QEMUConfiguration, mechanism: HostProbe.Mechanism, options: StartOptions,
                         systemRules: [Landlock.PathRule], checkSystem: Bool, entrypoint: String,
                         warnings: inout [String], notes: inout [String]) throws -> Confinement {
        lastGrantReport = nil
        if options.unconfined { return .unconfined(reason: "started with --unconfined") }
        switch mechanism {
        case .none:
            throw SVirtError(.confinement, "cannot confine '\(domain.name)'; start it with --unconfined")
        case .selinux, .selinuxPermissive:
            if let p = label.process {
                launch.execContext = p
                launch.socketCreateContext = p
            }
            return .selinux(enforcing: mechanism == .selinux)
        case .landlock:
            let driver = try driver()
            if let process = label.process {
                let decision = try checkTransition(domain: domain.name, to: process, checker: driver.checker)
                notes += decision.notes
                warnings += decision.warnings
                if decision.unconfined {
                    return .unconfined(reason: "\(process.type) is an unconfined domain in \(decision.policySource): the "
                                       + "policy lets it use every file, so there is nothing for Landlock to enforce")
                }
            }
            // The guest's own resources, with the labels svirt gives them, then the system paths.
            var given: [String: SecurityContext] = [:]
            var readWrite: [String] = [], readOnly: [String] = []
            var held: [String: Int32] = [:]
            // A unix socket serial is created by svirt's spawn and handed to QEMU as a descriptor: no rule.
            var handedOver = Set<String>()
            if case .unixSocket(let p)? = config.serial { handedOver.insert(p) }
            for e in plan.entries where e.path.hasPrefix("/") && e.kind != .filesystem && !handedOver.contains(e.path) {
                // The rule names the file the start holds open, not whatever the path names when the rule is made.
                let file = files[e.path] as? XattrFile
                let canonical = file?.path ?? e.path
                if let file { held[canonical] = file.fd }
                if let c = e.context { given[canonical] = c }
                if e.access == .readWrite { readWrite.append(canonical) } else { readOnly.append(canonical) }
            }
            var devices: [String] = []
            if case .pty? = config.serial { devices = ["/dev/ptmx", "/dev/pts"] }
            let ruleset = Landlock.Ruleset.guest(system: systemRules, readWrite: readWrite, readOnly: readOnly, devices: devices)
            if let process = label.process {
                let checked = checkSystem ? ruleset.pathRules : ruleset.pathRules.filter { r in
                    readWrite.contains(r.path) || readOnly.contains(r.path) || devices.contains(r.path)
                }
                if !checkSystem {
                    notes.append("the stand-in guest's own program files are granted without a policy check; its disks are checked")
                }
                // FallbackDefaultLabels is the restore label for images, not a file_contexts default: with it, the
                // defaults of system paths are unknown.
                let defaults: (any DefaultLabelSource)? = driver.defaults is FallbackDefaultLabels ? nil : driver.defaults
                let report = try LandlockGrantCheck(checker: driver.checker, defaults: defaults)
                    .check(domain: domain.name, process: process, rules: checked, given: given, entrypoint: entrypoint)
                lastGrantReport = report
                if !report.unchecked.isEmpty {
                    warnings.append("\(report.unchecked.count) Landlock grant(s) were not checked against a policy: "
                                    + (report.unchecked.first ?? ""))
                }
            } else {
                notes.append("'\(domain.name)' has no process label (seclabel type='none'); its Landlock ruleset is applied without policy checks")
            }
            var onHeldFiles = ruleset
            onHeldFiles.heldDescriptors = held
            launch.landlock = onHeldFiles
            return .landlock(grants: ruleset.pathRules.count)
        }
    }
}
