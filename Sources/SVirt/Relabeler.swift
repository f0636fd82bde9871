import SELinux

/// Sets and restores the labels of a `LabelPlan`, remembering originals so no label is ever lost
/// (sections 6, 7 and 9 of the reference).
///
/// - `labelAll(_:options:)` is one transaction per domain: every path is checked first (it exists, it is not a
///   host system path or a device the XML does not hand over), then labelled in plan order. A failure undoes
///   the changes already made, in reverse, and nothing is left half done.
/// - `restoreAll(_:)` gives every label back and keeps going past failures, reporting each.
/// - A filesystem without labels (EOPNOTSUPP, e.g. NFS) is not an error: it is reported as `.unsupported`,
///   with the boolean that lets VMs use such files.
///
/// Both are synchronous and touch files one at a time on the calling thread.
public struct Relabeler: Sendable {
    public var store: any FileLabelStore
    public var defaults: any DefaultLabelSource
    /// The host's boot time, seconds since the epoch, written on records and checked on restore.
    public var bootTime: Int
    public var records: RememberedLabels
    /// Who holds a level, to name the VM that uses a shared path (from the registry's reservations).
    public var ownerOfLevel: @Sendable (SecurityLevel) -> String?

    public init(store: any FileLabelStore, defaults: any DefaultLabelSource, bootTime: Int,
                records: RememberedLabels = RememberedLabels(model: "selinux"),
                ownerOfLevel: @escaping @Sendable (SecurityLevel) -> String? = { _ in nil }) {
        self.store = store
        self.defaults = defaults
        self.bootTime = bootTime
        self.records = records
        self.ownerOfLevel = ownerOfLevel
    }

    public struct Options: Sendable, Hashable {
        /// Relabel host system paths and device nodes the XML does not hand to the guest.
        public var force: Bool
        /// svirt's own directories (state, runtime): nothing in them is ever a guest resource.
        public var protectedDirectories: [String]

        public init(force: Bool = false, protectedDirectories: [String] = []) {
            self.force = force
            self.protectedDirectories = protectedDirectories
        }
    }

    // MARK: Host paths

    /// Top-level directories that are refused themselves.
    public static let systemDirectories: Set<String> = ["/", "/etc", "/usr", "/boot", "/bin", "/sbin", "/proc", "/sys",
                                                        "/var", "/home", "/root"]
    /// Trees that are refused entirely.
    public static let systemTrees = ["/etc/", "/usr/", "/boot/"]

    /// Why `path` (canonical) must not be relabelled without force, or nil.
    public static func systemPathReason(_ path: String) -> String? {
        if systemDirectories.contains(path) {
            return "\(path) is a host system directory, and relabelling it would change what the whole host may do with it"
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count == 1, parts[0].hasPrefix("lib") {
            return "\(path) is a host system directory, and relabelling it would change what the whole host may do with it"
        }
        for tree in systemTrees where path.hasPrefix(tree) {
            return "\(path) is part of the host system (under \(tree.dropLast())), and other programs rely on its label"
        }
        return nil
    }

    // MARK: Apply

    /// A path that will be labelled, checked and opened.
    struct Target {
        var entry: LabelPlan.Entry
        var context: SecurityContext
        var file: any LabeledFile
    }

    /// What was done to one path, kept for undoing it.
    struct Applied {
        var target: Target
        var original: String?
        var remembered: Bool
    }

    /// A plan checked and opened: every path the guest is handed passed the guard and is held open, and nothing
    /// has changed yet.
    public struct Prepared: Sendable {
        public var domain: String
        var targets: [Target]
        /// Every file of the plan that exists, opened once, by the plan's path. Later steps (owners, Landlock,
        /// QEMU) use these, never the path again.
        public var files: [String: any LabeledFile]
        var report: LabelReport
    }

    /// Labels every path of `plan` for the domain `plan.domain`.
    public func labelAll(_ plan: LabelPlan, options: Options = Options()) throws -> LabelReport {
        try commit(try prepare(plan, options: options))
    }

    /// Checks and opens every path of `plan` (see `prepare(_:options:report:)`); changes nothing.
    public func prepare(_ plan: LabelPlan, options: Options = Options()) throws -> Prepared {
        var report = LabelReport(domain: plan.domain, warnings: plan.warnings)
        var files: [String: any LabeledFile] = [:]
        let targets = try prepare(plan, options: options, report: &report, files: &files)
        return Prepared(domain: plan.domain, targets: targets, files: files, report: report)
    }

    /// Labels the prepared paths, in plan order; a failure undoes what was done and throws.
    public func commit(_ prepared: Prepared) throws -> LabelReport {
        var report = prepared.report
        let targets = prepared.targets
        var applied: [Applied] = []
        for t in targets {
            do {
                if let a = try apply(t, holder: prepared.domain, report: &report) { applied.append(a) }
            } catch let error as SVirtError {
                let problems = undo(applied, holder: prepared.domain)
                var message = "\(t.entry.resource): \(error.message)"
                message += applied.isEmpty ? "; nothing had been changed"
                    : problems.isEmpty ? "; the \(applied.count) label(s) already set were restored"
                    : "; undoing the labels already set failed too: " + problems.joined(separator: "; ")
                throw SVirtError(error.code, message, cause: error)
            }
        }
        return report
    }

    /// Checks every path before anything changes: it exists, passes the guard (`ResourceGuard`: not a host
    /// system path, not svirt's own, not on a pseudo filesystem, not hard-linked, not a device node the XML
    /// does not hand over), and is not used twice with different labels. Paths the guest is handed without a
    /// label (seclabel type='none', relabel='no') pass the same guard, since their owners may still change and
    /// QEMU opens them.
    func prepare(_ plan: LabelPlan, options: Options, report: inout LabelReport,
                 files: inout [String: any LabeledFile]) throws -> [Target] {
        var targets: [Target] = []
        var seen: [String: (String, SecurityContext)] = [:]
        for entry in plan.entries {
            guard let context = entry.context else {
                report.items.append(.init(entry: entry, path: nil, outcome: .left(entry.note ?? "left as it is")))
                if entry.path.hasPrefix("/"), ResourceGuard.guards(entry), files[entry.path] == nil {
                    // Not labelled, but handed to the guest all the same: held and guarded. A path that does not
                    // exist yet (a socket QEMU will create) is left to QEMU.
                    let path: String
                    do { path = try store.resolve(entry.path) } catch let e as SVirtError where e.code == .notFound { continue }
                    let file: any LabeledFile
                    do { file = try store.open(path) } catch let e as SVirtError where e.code == .notFound { continue }
                    try guardFile(file, at: path, entry: entry, options: options, doing: "hand", to: " to the guest",
                                  forced: "handed to the guest", report: &report)
                    // Not relabelled does not mean free to take: a file that carries another VM's level is that VM's.
                    if let text = try? file.selinuxContext(), let level = (try? SecurityContext(parsing: text))?.level,
                       !level.categories.isEmpty, let owner = ownerOfLevel(level), owner != plan.domain {
                        throw SVirtError(.labeling, "\(entry.resource): \(path) carries \(text), the level of VM '\(owner)', so it "
                                         + "is that VM's private file and '\(plan.domain)' may not use it, labelled or not; "
                                         + "give this VM its own file")
                    }
                    files[entry.path] = file
                }
                continue
            }
            let path: String
            do {
                path = try store.resolve(entry.path)
            } catch let e as SVirtError {
                throw SVirtError(e.code, "\(entry.resource): cannot label \(entry.path) with \(context): \(e.message)", cause: e)
            }
            if !options.force, let why = Self.systemPathReason(path) {
                throw SVirtError(.labeling, "\(entry.resource): refusing to relabel \(path)\(path == entry.path ? "" : " (from \(entry.path))"): "
                                 + "\(why); give the VM its own file, or pass --force if you really mean it")
            }
            if let (other, otherContext) = seen[path] {
                if otherContext != context {
                    throw SVirtError(.invalidDomain, "\(entry.resource) and \(other) both use \(path), with different labels "
                                     + "(\(context) and \(otherContext)); give each its own file")
                }
                files[entry.path] = targets.first { $0.file.path == path }?.file
                continue
            }
            let file: any LabeledFile
            do {
                file = try store.open(path)
            } catch let e as SVirtError {
                throw SVirtError(e.code, "\(entry.resource): cannot open \(path): \(e.message)", cause: e)
            }
            if !options.force, file.kind.isDevice, !entry.isDeviceGrant {
                throw SVirtError(.labeling, "\(entry.resource): refusing to relabel \(path): it is a \(file.kind == .blockDevice ? "block" : "character") "
                                 + "device that the XML does not hand to the guest as a <hostdev>, and relabelling it would change "
                                 + "who on the host may use it; pass --force if the device belongs to this VM")
            }
            try guardFile(file, at: path, entry: entry, options: options, doing: "relabel", to: "",
                          forced: "relabelled", report: &report)
            seen[path] = (entry.resource, context)
            files[entry.path] = file
            targets.append(Target(entry: entry, context: context, file: file))
        }
        return targets
    }

    /// `ResourceGuard`'s rule on one opened file: a refusal throws, naming the resource, the path and the reason;
    /// under `--force` it becomes a warning that says what was overridden.
    func guardFile(_ file: any LabeledFile, at path: String, entry: LabelPlan.Entry, options: Options, doing verb: String,
                   to suffix: String, forced: String, report: inout LabelReport) throws {
        guard let why = ResourceGuard.refusal(path: path, file: file, entry: entry, protected: options.protectedDirectories) else { return }
        guard options.force else {
            let from = path == entry.path ? "" : " (from \(entry.path))"
            let joiner = suffix.isEmpty ? ":" : "\(suffix):"
            throw SVirtError(.labeling, "\(entry.resource): refusing to \(verb) \(path)\(from)\(joiner) \(why)")
        }
        report.warnings.append("--force: \(entry.resource): \(path) is \(forced) although \(why)")
    }

    /// Labels one path. Returns what to undo, or nil when nothing changed (no label support).
    func apply(_ t: Target, holder: String, report: inout LabelReport) throws -> Applied? {
        let file = t.file
        let tcon = t.context.description
        let original: String?
        do {
            original = try file.selinuxContext()
        } catch let e as SVirtError where e.code == .unsupported {
            report.items.append(.init(entry: t.entry, path: file.path, outcome: .unsupported(unsupportedReason(file, tcon, e))))
            return nil
        } catch let e as SVirtError {
            throw SVirtError(e.code, "cannot read the SELinux context of \(file.path): \(e.message)", cause: e)
        }
        // A path that carries another running VM's level belongs to that VM, whether or not it has a record.
        if let o = original, o != tcon, let level = (try? SecurityContext(parsing: o))?.level, !level.categories.isEmpty,
           let owner = ownerOfLevel(level), owner != holder {
            throw SVirtError(.labeling, sharedMessage(file.path, tcon, original, [owner]))
        }
        var remembered = false
        if t.entry.remember {
            let outcome: RememberedLabels.Remembered
            do {
                outcome = try records.remember(original: original, holder: holder, on: file, bootTime: bootTime)
            } catch {
                // Leave no half-written record behind (a partial one would be harmless, but untidy).
                _ = try? undoRecord(file, holder: holder)
                throw error
            }
            switch outcome {
            case .first:
                remembered = true
            case .joined(let r):
                remembered = true
                let others = (r.holders ?? []).filter { $0 != holder }
                if (r.holders == nil ? r.count > 1 : !others.isEmpty), original != tcon {
                    _ = try? records.recall(holder: holder, on: file, bootTime: bootTime)
                    throw SVirtError(.labeling, sharedMessage(file.path, tcon, original, others))
                }
            case .unsupported:
                report.warnings.append("\(file.path): the filesystem keeps no \(records.labelAttribute) attributes, so its "
                                       + "original label is not remembered; restore gives it the file_contexts default")
            }
        }
        do {
            try file.setSELinuxContext(tcon)
        } catch let e as SVirtError where e.code == .unsupported {
            if remembered { _ = try? undoRecord(file, holder: holder) }
            report.items.append(.init(entry: t.entry, path: file.path, outcome: .unsupported(unsupportedReason(file, tcon, e))))
            return nil
        } catch let e as SVirtError {
            if remembered { _ = try? undoRecord(file, holder: holder) }
            throw SVirtError(e.code, "unable to set the security context \(tcon) on \(file.path): \(e.message)", cause: e)
        }
        report.items.append(.init(entry: t.entry, path: file.path, outcome: .labelled(t.context)))
        return Applied(target: t, original: original, remembered: remembered)
    }

    func sharedMessage(_ path: String, _ tcon: String, _ current: String?, _ others: [String]) -> String {
        var who = others.map { "VM '\($0)'" }
        if who.isEmpty, let c = current, let level = (try? SecurityContext(parsing: c))?.level, let owner = ownerOfLevel(level) {
            who = ["VM '\(owner)'"]
        }
        let holder = who.isEmpty ? "another VM" : who.joined(separator: " and ")
        return "\(path) is already in use by \(holder) with the label \(current ?? "(none)"), so it cannot take \(tcon); "
            + "two VMs may share a disk only when both mark it <shareable/>, or use the same static label"
    }

    func unsupportedReason(_ file: any LabeledFile, _ tcon: String, _ e: SVirtError) -> String {
        let fs = file.filesystem.map { " (\($0))" } ?? ""
        return "the filesystem of \(file.path)\(fs) does not support SELinux labels, so it keeps its label instead of \(tcon); "
            + "VMs may still use it where the policy allows: on NFS turn on the boolean virt_use_nfs "
            + "(setsebool -P virt_use_nfs on)"
    }

    /// Takes this holder off a record made by a failed apply, setting nothing back (the label was not changed).
    func undoRecord(_ file: any LabeledFile, holder: String) throws {
        if case .restore = try records.recall(holder: holder, on: file, bootTime: bootTime) {
            try records.forget(file)
        }
    }

    /// Undoes applied changes in reverse; returns what could not be undone.
    func undo(_ applied: [Applied], holder: String) -> [String] {
        var problems: [String] = []
        for a in applied.reversed() {
            let file = a.target.file
            do {
                if a.remembered {
                    switch try records.recall(holder: holder, on: file, bootTime: bootTime) {
                    case .restore(let original):
                        try setBack(file, original)
                        try records.forget(file)
                    case .stillInUse, .notHolder, .noRecord, .partialRemoved, .staleRemoved, .unsupported:
                        // Others use it with the same label: nothing to set back.
                        break
                    }
                } else if let original = a.original, original != a.target.context.description {
                    try file.setSELinuxContext(original)
                }
            } catch {
                problems.append("\(file.path): \(error)")
            }
        }
        return problems
    }

    /// Sets a remembered original back; a file that had no label gets its default. Returns the label set and
    /// where it came from.
    @discardableResult
    func setBack(_ file: any LabeledFile, _ original: String?) throws -> (String?, String) {
        if let original {
            try file.setSELinuxContext(original)
            return (original, "remembered original")
        } else if let d = try defaults.defaultLabel(for: file.path, kind: file.kind) {
            try file.setSELinuxContext(d.description)
            return (d.description, "default label (it had none before)")
        }
        return (nil, "it had no label before, and file_contexts gives none")
    }

    // MARK: Restore

    /// Gives back the labels of `plan`'s paths for the domain `plan.domain`. Shared, read-only and backing
    /// images are left as they are. Failures are reported per path and do not stop the rest.
    ///
    /// `labelKnown` says whether the plan's contexts are the ones svirt set (false when the VM's level is no
    /// longer known): a path without a record gets its default label only when it still carries svirt's label,
    /// so without a known label such paths are left as they are.
    public func restoreAll(_ plan: LabelPlan, labelKnown: Bool = true) -> LabelReport {
        var report = LabelReport(domain: plan.domain, warnings: plan.warnings)
        var done: Set<String> = []
        for entry in plan.entries {
            guard let context = entry.context else {
                report.items.append(.init(entry: entry, path: nil, outcome: .left(entry.note ?? "left as it is")))
                continue
            }
            if entry.restore == .leave {
                report.items.append(.init(entry: entry, path: nil, outcome: .left(entry.note ?? "left as it is: other VMs may use it")))
                continue
            }
            do {
                let path: String
                do {
                    path = try store.resolve(entry.path)
                } catch let e as SVirtError where e.code == .notFound {
                    report.items.append(.init(entry: entry, path: nil, outcome: .left("\(entry.path) no longer exists")))
                    continue
                }
                guard done.insert(path).inserted else { continue }
                let file = try store.open(path)
                let outcome = try restore(file, entry: entry, context: context, holder: plan.domain, labelKnown: labelKnown,
                                          report: &report)
                report.items.append(.init(entry: entry, path: path, outcome: outcome))
            } catch {
                report.items.append(.init(entry: entry, path: nil, outcome: .failed("\(entry.resource): \(entry.path): \(error)")))
            }
        }
        return report
    }

    func restore(_ file: any LabeledFile, entry: LabelPlan.Entry, context: SecurityContext, holder: String,
                 labelKnown: Bool, report: inout LabelReport) throws -> LabelReport.Outcome {
        if entry.restore == .recall {
            switch try records.recall(holder: holder, on: file, bootTime: bootTime) {
            case .restore(let original):
                let set: (String?, String)
                do {
                    set = try setBack(file, original)
                } catch let e as SVirtError where e.code == .unsupported {
                    return .unsupported(unsupportedReason(file, original ?? "its default label", e))
                }
                try records.forget(file)
                return .restored(set.0.flatMap { try? SecurityContext(parsing: $0) }, how: set.1)
            case .stillInUse(let remaining, let count):
                let who = remaining.map { $0.map { "'\($0)'" }.joined(separator: ", ") } ?? "\(count) other user(s)"
                return .left("still in use by \(who)")
            case .notHolder(let holders):
                return .left("svirt's record does not list '\(holder)'" + (holders.map { " (it lists \($0.map { "'\($0)'" }.joined(separator: ", ")))" } ?? "")
                             + "; left as it is")
            case .partialRemoved:
                return .left("an unfinished record was removed; the label had not been changed")
            case .staleRemoved(let boot):
                report.warnings.append("\(file.path): the remembered label was recorded at boot time \(boot), before this boot "
                                       + "(\(bootTime)); the record is discarded and the file_contexts default is used")
            case .noRecord, .unsupported:
                break
            }
        }
        // Nothing remembered: give the default back, but only to a path that still carries the label svirt set.
        let current: String?
        do {
            current = try file.selinuxContext()
        } catch let e as SVirtError where e.code == .unsupported {
            return .unsupported(unsupportedReason(file, "its default label", e))
        }
        guard labelKnown else {
            return .left("no record, and the VM's level is not known, so svirt cannot tell whether it set \(current ?? "no label"); left as it is")
        }
        guard current == context.description else {
            return .left("it carries \(current ?? "no label"), not the label svirt set, so it is left as it is")
        }
        guard let d = try defaults.defaultLabel(for: file.path, kind: file.kind) else {
            report.warnings.append("\(file.path): file_contexts gives no default label, so it keeps \(context)")
            return .left("no default label")
        }
        try file.setSELinuxContext(d.description)
        return .restored(d, how: "default label")
    }
}

/// What `labelAll` and `restoreAll` did, path by path.
public struct LabelReport: Sendable {
    public enum Outcome: Sendable, Hashable {
        /// The label was set.
        case labelled(SecurityContext)
        /// The label was given back (nil: the file keeps no label); `how` says where it came from.
        case restored(SecurityContext?, how: String)
        /// The filesystem keeps no labels: a soft outcome, with the reason and the boolean to turn on.
        case unsupported(String)
        /// Nothing was done, and why.
        case left(String)
        /// Restoring failed (restore keeps going).
        case failed(String)
    }

    public struct Item: Sendable {
        public var entry: LabelPlan.Entry
        /// The canonical path that was touched, when one was.
        public var path: String?
        public var outcome: Outcome
    }

    public var domain: String
    public var items: [Item] = []
    public var warnings: [String] = []

    public init(domain: String, items: [Item] = [], warnings: [String] = []) {
        self.domain = domain
        self.items = items
        self.warnings = warnings
    }

    /// The failures of a restore.
    public var failures: [String] {
        items.compactMap { if case .failed(let m) = $0.outcome { return m } else { return nil } }
    }

    /// The paths whose filesystem keeps no labels.
    public var unsupported: [Item] {
        items.filter { if case .unsupported = $0.outcome { return true } else { return false } }
    }
}
