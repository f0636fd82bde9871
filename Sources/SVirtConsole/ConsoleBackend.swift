import Foundation
import SELinux
import SELinuxPolicy
import SVirt
import SVirtLinux

/// The registries one console request works with, opened the way every `svirt` command opens them.
public struct ConsoleSession {
    public let lifecycle: DomainLifecycle
    let close: () async -> Void

    public init(lifecycle: DomainLifecycle, close: @escaping () async -> Void) {
        self.lifecycle = lifecycle
        self.close = close
    }
}

/// What the console does, for the pages and the API alike: the same library calls as the CLI's commands, on the
/// same state directory and registry, so a VM started here shows up in `svirt list` and the reverse.
public struct ConsoleBackend: Sendable {
    public var environment: HostEnvironment
    /// Opens the registries (local SQLite, or etcd for levels) and the lifecycle over them.
    public var open: @Sendable () async throws -> ConsoleSession
    /// Start options the console uses for every start (the stand-in guest where QEMU is missing, in tests).
    public var startOptions: DomainLifecycle.StartOptions
    /// How long a shutdown waits for the guest before it destroys it.
    public var shutdownTimeout: Duration

    public init(environment: HostEnvironment, open: @escaping @Sendable () async throws -> ConsoleSession,
                startOptions: DomainLifecycle.StartOptions = .init(), shutdownTimeout: Duration = .seconds(60)) {
        self.environment = environment
        self.open = open
        self.startOptions = startOptions
        self.shutdownTimeout = shutdownTimeout
    }

    /// Opens, reconciles (a VM whose QEMU is gone is shut off first, as every command does), runs `body`, closes.
    /// The work runs on the console's own threads (`ConsoleWorkers`), since the lifecycle blocks.
    public func with<T: Sendable>(_ body: (DomainLifecycle) async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(ConsoleWorkers.shared) {
            let session = try await open()
            do {
                _ = await session.lifecycle.reconcile()
                let result = try await body(session.lifecycle)
                await session.close()
                return result
            } catch {
                await session.close()
                throw error
            }
        }
    }

    // MARK: Operations

    public func list() async throws -> [DomainLifecycle.Summary] {
        try await with { try $0.statuses(all: true).map(\.summary) }
    }

    /// One domain: its summary, its resources with their labels now, and its XML (live while it runs).
    public struct DomainPage: Sendable, Codable {
        public var domain: DomainLifecycle.Summary
        public var resources: [DomainLifecycle.ResourceLabel]
        public var xml: String
        /// Why the resources could not be listed, when they could not.
        public var resourcesError: String?
    }

    public func domain(_ name: String) async throws -> DomainPage {
        try await with { lifecycle in
            let s = try lifecycle.status(of: name)
            var page = DomainPage(domain: s.summary, resources: [], xml: s.running?.liveXML ?? s.definedXML ?? "")
            do { page.resources = try lifecycle.resourceLabels(of: s) } catch { page.resourcesError = "\(error)" }
            return page
        }
    }

    public func labels(_ name: String) async throws -> [DomainLifecycle.ResourceLabel] {
        try await with { try $0.resourceLabels(of: try $0.status(of: name)) }
    }

    /// The live XML of a running domain, else its definition.
    public func xml(_ name: String) async throws -> String {
        try await with { lifecycle in
            let s = try lifecycle.status(of: name)
            return s.running?.liveXML ?? s.definedXML ?? ""
        }
    }

    /// What a start, stop or define did.
    public struct ActionResult: Sendable, Codable {
        public var name: String
        public var action: String
        public var message: String
        public var warnings: [String]
        public var domain: DomainLifecycle.Summary?
    }

    public func start(_ name: String) async throws -> ActionResult {
        try await with { lifecycle in
            let s = try lifecycle.status(of: name)
            if s.running != nil { throw SVirtError(.state, "domain is already active") }
            guard let xml = s.definedXML else { throw SVirtError(.notFound, "failed to get domain '\(name)'") }
            let domain = try DomainDefinition(xml: xml, source: "the definition of '\(s.name)'")
            let started = try await lifecycle.start(domain, options: startOptions)
            return ActionResult(name: s.name, action: "start", message: "Domain '\(s.name)' started", warnings: started.warnings,
                                domain: try? lifecycle.status(of: s.name).summary)
        }
    }

    public func stop(_ name: String, mode: DomainLifecycle.StopMode) async throws -> ActionResult {
        try await with { lifecycle in
            let s = try lifecycle.status(of: name)
            let stopped = try await lifecycle.stop(name: s.name, mode: mode)
            let verb = mode == .destroy ? "destroy" : "shutdown"
            let message = mode == .destroy ? "Domain '\(s.name)' destroyed" : "Domain '\(s.name)' is being shutdown"
            return ActionResult(name: s.name, action: verb, message: message, warnings: stopped.warnings + stopped.failures,
                                domain: try? lifecycle.status(of: s.name).summary)
        }
    }

    /// Defines (or redefines) a domain from XML a client sent, read with the CLI's hardened reader.
    public func define(xml text: String, source: String) async throws -> ActionResult {
        let domain = try DomainDefinition(xml: text, source: source)
        return try await with { lifecycle in
            let outcome = try lifecycle.define(domain)
            return ActionResult(name: domain.name, action: "define",
                                message: "Domain '\(domain.name)' \(outcome == .created ? "defined" : "definition replaced")",
                                warnings: [], domain: try? lifecycle.status(of: domain.name).summary)
        }
    }

    public func host() async throws -> HostReport {
        let env = environment
        return try await withTaskExecutorPreference(ConsoleWorkers.shared) { try HostReport.gather(environment: env) }
    }

    /// The isolation matrix of every VM, running or defined, as `svirt check --all` computes it.
    public func matrix() async throws -> IsolationMatrix {
        try await with { try await $0.isolationMatrix() }
    }

    /// The virt booleans with their values and what each changes for the defined VMs (`svirt booleans`).
    public struct BooleansReport: Sendable, Codable {
        /// True: the kernel's booleans decide; false: svirt's boolean store does.
        public var selinuxEnabled: Bool
        public var policy: String
        public var booleans: [VirtBoolean]
        public var warnings: [String]
    }

    public func booleans() async throws -> BooleansReport {
        try await with { lifecycle in
            let store = try BooleanStore(environment: environment, registry: lifecycle.local)
            let listed = try store.listForDomains()
            return BooleansReport(selinuxEnabled: store.selinuxEnabled, policy: store.policySource, booleans: listed.booleans,
                                  warnings: listed.warnings)
        }
    }

    /// The denials that concern one VM, explained (`svirt explain --vm NAME`): the audit log where one exists, and
    /// the Landlock refusals svirt recorded.
    public func denials(_ name: String) async throws -> VMDenialReport {
        try await with { lifecycle in
            let s = try lifecycle.status(of: name)
            let store = try BooleanStore(environment: environment, registry: lifecycle.local)
            return try VMDenials(environment: environment, registry: lifecycle.local, policy: try store.effectivePolicy(),
                                 policySource: store.policySource).collect(vm: s.name)
        }
    }
}
