import SELinux
import SELinuxPolicy

/// The security side of `xl create` for one xl.cfg, simulated offline: which labels the domain (and its stub device
/// model) get, and every check the hypervisor makes while libxl builds it, in order, each allowed or denied with the
/// reason.
///
/// The steps follow libxl and xen/xsm/flask:
/// 1. libxl resolves each label string (`FLASK_CONTEXT_TO_SID`: the toolstack needs `security check_context`);
/// 2. `XEN_DOMCTL_createdomain`: the toolstack needs `domain create` on the create label (`init_seclabel` if given,
///    else `seclabel`, else the domU initial SID); Xen computes the `_self` label;
/// 3. the build itself (vCPUs, memory, the kernel written into the guest's memory);
/// 4. a stub device model: created like a domain (on `device_model_stubdomain_seclabel`, else the domDM initial SID),
///    then `XEN_DOMCTL_set_target` checks `domain2 make_priv_for` (toolstack → model), `domain2 set_as_target`
///    (toolstack → guest) and `domain set_target` (model → guest), and Xen computes the model's `_target` label;
/// 5. passthrough devices;
/// 6. with `init_seclabel`, the relabel to `seclabel` (`FLASK_RELABEL_DOMAIN`): `domain2 relabelfrom` (toolstack →
///    old), `domain2 relabelto` (toolstack → new), `domain transition` (old → new);
/// 7. `XEN_DOMCTL_unpausedomain` on the running label.
public struct XenDomainBuild: Sendable {
    /// One label of the configuration, checked against the policy.
    public struct LabelReport: Sendable {
        /// The xl.cfg key, or the initial SID libxl falls back to.
        public var key: String
        public var context: SecurityContext
        /// The xl.cfg line, nil for a default label.
        public var line: Int?
        /// What the label is for: "create", "run", "device model create"...
        public var role: String
        /// Problems by component; empty when the label is valid.
        public var problems: [(component: String, problem: String)]
        public var valid: Bool { problems.isEmpty }
    }

    /// One step: a check, or a label the hypervisor computes.
    public enum Step: Sendable {
        case check(XenCheck)
        case computed(XenComputedLabel)
        case note(String)
    }

    public var configuration: XenDomainConfiguration
    public var toolstack: XenDomain
    public var labels: [LabelReport]
    public var steps: [Step]
    /// The domain as it runs, with the stub device model when there is one.
    public var domain: XenDomain
    public var deviceModel: XenDomain?

    /// Every check made.
    public var checks: [XenCheck] { steps.compactMap { if case .check(let c) = $0 { return c } else { return nil } } }
    /// True when every label is valid and every check is allowed.
    public var allowed: Bool { labels.allSatisfy(\.valid) && checks.allSatisfy(\.allowed) }

    /// Simulates the build of `configuration` under `policy`, by `toolstack` (dom0 unless given).
    public init(_ configuration: XenDomainConfiguration, policy: XenPolicy, toolstack: XenDomain? = nil,
                iommu: XenIOMMU = .intremap) throws {
        self.configuration = configuration
        let ts = try toolstack ?? policy.dom0()
        self.toolstack = ts
        let c = configuration
        var labels: [LabelReport] = []
        var steps: [Step] = []
        func report(_ label: XenDomainConfiguration.Label?, fallback: String, role: String) throws -> LabelReport {
            if let label {
                return LabelReport(key: label.key, context: label.context, line: label.line, role: role,
                                   problems: policy.labelProblems(label.context))
            }
            let ctx = try policy.initialContext(fallback)
            return LabelReport(key: "initial SID \(fallback) (libxl's default)", context: ctx, line: nil, role: role,
                               problems: policy.labelProblems(ctx))
        }
        let create = try report(c.createLabel, fallback: "domU", role: "create")
        labels.append(create)
        var run = create
        if let e = c.execLabel {
            run = try report(e, fallback: "domU", role: "run")
            labels.append(run)
        }
        var dmCreate: LabelReport?, dmRun: LabelReport?
        if c.stubDomain {
            let r = try report(c.deviceModelCreateLabel, fallback: "domDM", role: "device model create")
            dmCreate = r
            labels.append(r)
            dmRun = r
            if let e = c.deviceModelExecLabel {
                let x = try report(e, fallback: "domDM", role: "device model run")
                dmRun = x
                labels.append(x)
            }
        }
        for l in labels where !l.valid {
            let where_ = l.line.map { "line \($0)" } ?? "the default label"
            steps.append(.note("\(l.key) (\(where_)) '\(l.context)' is not valid in this policy: Xen refuses it with "
                               + "EINVAL and xl stops before creating anything"))
        }
        let subject = c.name
        func domainStep(_ step: String, _ hook: String, source: XenDomain, target: XenDomain, _ tclass: String,
                        _ perms: [String]) -> Step {
            .check(policy.domainCheck(step: step, hook: hook, source, target, class: tclass, permissions: perms))
        }

        // 1. Resolving the label strings.
        if c.seclabel != nil || c.initSeclabel != nil || c.deviceModelSeclabel != nil || c.deviceModelInitSeclabel != nil {
            let security = try policy.initialContext("security")
            steps.append(.check(policy.check(step: "resolve labels", hook: "FLASK_CONTEXT_TO_SID (libxl_flask_context_to_sid)",
                                             subject: "\(ts.name) → security server", source: ts.label, target: security,
                                             targetNote: "initial SID security", class: "security",
                                             permissions: ["check_context"])))
        }

        // 2. Create, and the _self label.
        let guest = XenDomain(name: subject, label: create.context)
        steps.append(domainStep("create", "XEN_DOMCTL_createdomain", source: ts, target: guest, "domain", ["create"]))
        var s = policy.selfLabel(create.context)
        s.what = "\(subject)'s _self label"
        steps.append(.computed(s))

        // 3. The build.
        steps.append(domainStep("build", "XEN_DOMCTL_max_vcpus, max_mem, setvcpucontext, getdomaininfo", source: ts,
                                target: guest, "domain", ["max_vcpus", "setdomainmaxmem", "setvcpucontext", "getdomaininfo"]))
        steps.append(domainStep("load the kernel", "mmu_update / foreign map of the new domain's memory", source: ts,
                                target: guest, "mmu", ["map_read", "map_write"]))

        // 4. The stub device model.
        var dm: XenDomain?
        if let dmCreate, let dmRun {
            let model = XenDomain(name: "\(subject)-dm", label: dmCreate.context)
            steps.append(domainStep("create device model", "XEN_DOMCTL_createdomain", source: ts, target: model, "domain",
                                    ["create"]))
            var ds = policy.selfLabel(dmCreate.context)
            ds.what = "\(model.name)'s _self label"
            steps.append(.computed(ds))
            steps.append(domainStep("build device model", "XEN_DOMCTL_max_vcpus, max_mem, setvcpucontext, getdomaininfo",
                                    source: ts, target: model, "domain",
                                    ["max_vcpus", "setdomainmaxmem", "setvcpucontext", "getdomaininfo"]))
            steps.append(.check(policy.check(step: "set_target: make_priv_for", hook: "XEN_DOMCTL_set_target",
                                             subject: "\(ts.name) → \(model.name)", source: ts.label, target: model.label,
                                             class: "domain2", permissions: ["make_priv_for"])))
            steps.append(.check(policy.check(step: "set_target: set_as_target", hook: "XEN_DOMCTL_set_target",
                                             subject: "\(ts.name) → \(subject)", source: ts.label, target: guest.label,
                                             class: "domain2", permissions: ["set_as_target"])))
            steps.append(.check(policy.check(step: "set_target", hook: "XEN_DOMCTL_set_target",
                                             subject: "\(model.name) → \(subject)", source: model.label, target: guest.label,
                                             targetNote: "the guest's own label (no substitution)", class: "domain",
                                             permissions: ["set_target"])))
            var t = policy.targetLabel(guest: guest.label, deviceModel: model.label)
            t.what = "\(model.name)'s _target label for \(subject)"
            steps.append(.computed(t))
            var running = XenDomain(name: model.name, label: model.label, deviceModelOf: subject, targetLabel: t.label)
            steps.append(domainStep("device model: emulate", "XEN_DMOP (hvm dm)", source: running, target: guest, "hvm",
                                    ["dm"]))
            steps.append(domainStep("device model: map guest memory", "XENMEM foreign map", source: running, target: guest,
                                    "mmu", ["map_read", "map_write"]))
            if let e = c.deviceModelExecLabel, dmRun.context != dmCreate.context {
                steps += Self.relabel(policy, toolstack: ts, name: model.name, from: dmCreate.context, to: e.context)
                running.label = e.context
            }
            dm = running
            if c.execLabel != nil {
                steps.append(.note("\(model.name)'s _target label was computed from \(subject)'s build label; Xen does not "
                                   + "recompute it when \(subject) is relabelled"))
            }
        }

        // 5. Passthrough devices.
        var builder = guest
        for p in c.passthrough {
            for check in try policy.deviceAssignment(p.device, to: builder, by: ts, iommu: iommu) {
                var ch = check
                ch.step += " (line \(p.line): \(p.key))"
                steps.append(.check(ch))
            }
        }

        // 6. The relabel.
        if c.execLabel != nil {
            steps += Self.relabel(policy, toolstack: ts, name: subject, from: create.context, to: run.context)
            builder.label = run.context
        }

        // 7. Unpause.
        steps.append(domainStep("unpause", "XEN_DOMCTL_unpausedomain", source: ts, target: builder, "domain", ["unpause"]))

        self.labels = labels
        self.steps = steps
        self.domain = builder
        self.deviceModel = dm
    }

    /// The checks of `FLASK_RELABEL_DOMAIN` by the toolstack, and the new `_self` label.
    static func relabel(_ policy: XenPolicy, toolstack ts: XenDomain, name: String, from old: SecurityContext,
                        to new: SecurityContext) -> [Step] {
        var out: [Step] = [
            .check(policy.check(step: "relabel: relabelfrom", hook: "FLASK_RELABEL_DOMAIN", subject: "\(ts.name) → \(name)",
                                source: ts.label, target: old, targetNote: "the build label", class: "domain2",
                                permissions: ["relabelfrom"])),
            .check(policy.check(step: "relabel: relabelto", hook: "FLASK_RELABEL_DOMAIN", subject: "\(ts.name) → \(name)",
                                source: ts.label, target: new, targetNote: "the running label", class: "domain2",
                                permissions: ["relabelto"])),
            .check(policy.check(step: "relabel: transition", hook: "FLASK_RELABEL_DOMAIN",
                                subject: "\(name) (build label) → \(name) (running label)", source: old, target: new,
                                class: "domain", permissions: ["transition"])),
        ]
        var s = policy.selfLabel(new)
        s.what = "\(name)'s _self label after the relabel"
        out.append(.computed(s))
        return out
    }
}
