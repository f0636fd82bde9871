import CSVirt
import Foundation
import Glibc
import SELinux
import SELinuxPolicy
import SVirt

/// The Virtual Machine Manager's workflows over the registry: import an existing image, clone a VM, edit a
/// definition. The CLI and the web console call these, so both define through the same lifecycle.
extension DomainLifecycle {
    // MARK: Import

    /// Defines a domain around existing disk images (`svirt import`). Each disk's type comes from the file (a
    /// block device gives `<disk type='block'>`) and, where not given, its format from the image (qcow2 when it
    /// starts with qcow2's magic, else raw). Refused when a disk does not exist or the name is taken.
    ///
    /// - Parameter define: false only writes the XML (`--print-xml`).
    public func importDomain(_ imported: ImportedDomain, define: Bool = true) throws -> DomainDefinition {
        var d = imported
        d.disks = try d.disks.map(Self.inspect)
        let domain = try d.definition()
        if define {
            if try local.definedDomain(named: domain.name) != nil || local.runningDomain(named: domain.name) != nil {
                throw SVirtError(.alreadyExists, "domain '\(domain.name)' already exists; choose another --name, or "
                                 + "undefine '\(domain.name)' first")
            }
            try self.define(domain)
            try local.log(domain: domain.name, kind: "import", message: "imported from \(d.disks.map(\.path).joined(separator: ", "))")
        }
        return domain
    }

    /// The disk with its type and format read from the file.
    static func inspect(_ disk: ImportedDomain.ImportedDisk) throws -> ImportedDomain.ImportedDisk {
        var d = disk
        var st = stat()
        guard stat(d.path, &st) == 0 else {
            let e = errno
            if e == ENOENT {
                throw SVirtError(.notFound, "--disk \(d.path): the image does not exist; svirt import uses existing disk "
                                 + "images only (create one with 'qemu-img create -f qcow2 \(d.path) 10G')")
            }
            throw SVirtError(.notFound, "--disk \(d.path): cannot reach the image: \(String(cString: strerror(e)))",
                             cause: SystemCallError(call: "stat", path: d.path, errno: e))
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: d.type = .file
        case S_IFBLK: d.type = .block
        default:
            throw SVirtError(.invalidDomain, "--disk \(d.path): it is neither a regular file nor a block device; give the "
                             + "path of a disk image")
        }
        let header = try LinuxHostInspector().header(of: d.path, count: 4)
        let isQCOW2 = header == QCOW2Header.magic
        switch d.format {
        case nil:
            d.format = isQCOW2 ? .qcow2 : .raw
        case .qcow2? where !isQCOW2:
            throw SVirtError(.invalidDomain, "--disk \(d.path): format=qcow2 was given, but the file does not start with "
                             + "qcow2's magic; drop format= to import it as raw")
        default:
            break
        }
        return d
    }

    // MARK: Clone

    /// Plans `svirt clone NAME NEWNAME`: refuses a name that is taken, a static label without `force`, and a source
    /// that runs while it has private writable disks to copy (its image would be copied mid-write; virt-clone
    /// refuses this too). Copies nothing.
    public func planClone(name: String, newName: String, files: [String] = [], force: Bool = false) throws -> DomainClonePlan {
        guard let record = try local.definedDomain(named: name) else {
            if try local.runningDomain(named: name) != nil {
                throw SVirtError(.state, "domain '\(name)' is transient (it has no definition to clone); define it first "
                                 + "with svirt dumpxml \(name) > \(name).xml && svirt define \(name).xml")
            }
            throw SVirtError(.notFound, "failed to get domain '\(name)'")
        }
        if try local.definedDomain(named: newName) != nil || local.runningDomain(named: newName) != nil {
            throw SVirtError(.alreadyExists, "domain '\(newName)' already exists; choose another name for the clone")
        }
        let original = try DomainDefinition(xml: record.xml, source: "the definition of '\(name)'")
        var macs: Set<String> = []
        for r in try local.definedDomains() {
            if let d = try? DomainDefinition(xml: r.xml, source: r.name) { macs.formUnion(DomainClonePlan.macAddresses(in: d)) }
        }
        for r in try local.runningDomains() {
            if let d = try? DomainDefinition(xml: r.liveXML, mode: .live, source: r.name) {
                macs.formUnion(DomainClonePlan.macAddresses(in: d))
            }
        }
        let inspector = LinuxHostInspector()
        let plan = try DomainClonePlan.plan(original, newName: newName, files: files, force: force, takenMACs: macs,
                                            exists: inspector.exists)
        if let run = try local.runningDomain(named: name), let first = plan.copies.first {
            throw SVirtError(.state, "domain '\(name)' is \(Self.stateName(run.state)) and \(first.what) (\(first.source)) is "
                             + "private and writable: a copy taken now would not be consistent; shut it off first "
                             + "(svirt shutdown \(name)), or mark the disk <shareable/> or <readonly/>")
        }
        return plan
    }

    /// How far `clone` has come: file `index` of `count`.
    public struct CloneProgress: Sendable, Hashable {
        public var copy: DomainClonePlan.Copy
        public var index: Int
        public var count: Int
        public var progress: SparseCopy.Progress
    }

    /// What `clone` made.
    public struct Cloned: Sendable {
        public var domain: DomainDefinition
        /// One result per copy, in the plan's order.
        public var copies: [(copy: DomainClonePlan.Copy, result: SparseCopy.Result)]
    }

    /// Copies the plan's private files (sparse: holes stay holes) and defines the clone. Any failure removes the
    /// copies made so far; nothing is defined then.
    ///
    /// Each copy is written to a partial file next to its destination (`.NAME.svirt-partial`) and renamed into
    /// place (never over an existing file) only once every copy is whole; the clone is defined after the renames.
    /// The partial files and the destinations are recorded in the registry first: when svirt is killed before
    /// the clone is defined, the next command removes them (`reconcile`), so a copy never stays without its
    /// clone, and a destination never holds half an image.
    public func clone(_ plan: DomainClonePlan, progress: (CloneProgress) -> Void = { _ in }) throws -> Cloned {
        if let run = try local.runningDomain(named: plan.original.name), let first = plan.copies.first {
            throw SVirtError(.state, "domain '\(plan.original.name)' is \(Self.stateName(run.state)); shut it off before "
                             + "\(first.what) is copied")
        }
        let partial = plan.copies.map { Self.partialPath(of: $0.destination) }
        if !plan.copies.isEmpty {
            try local.addPendingFiles(partial + plan.copies.map(\.destination), owner: plan.clone.name, holder: holder)
        }
        var made: [(copy: DomainClonePlan.Copy, result: SparseCopy.Result)] = []
        var renamed: [String] = []
        do {
            for (i, c) in plan.copies.enumerated() {
                let r = try SparseCopy.copy(from: c.source, to: partial[i]) { p in
                    progress(CloneProgress(copy: c, index: i, count: plan.copies.count, progress: p))
                }
                made.append((c, r))
            }
            for (i, c) in plan.copies.enumerated() {
                guard svirt_rename_noreplace(partial[i], c.destination) == 0 else {
                    let e = errno
                    if e == EEXIST {
                        throw SVirtError(.alreadyExists, "\(c.destination) already exists; svirt never overwrites a file with a copy")
                    }
                    throw SystemCallError(call: "renameat2", path: c.destination, errno: e)
                }
                renamed.append(c.destination)
            }
            try define(plan.clone)
            try local.log(domain: plan.clone.name, kind: "clone", message: "cloned from '\(plan.original.name)'")
        } catch {
            for p in partial { unlink(p) }
            for p in renamed { unlink(p) }
            if !plan.copies.isEmpty { try? local.removePendingFiles(owner: plan.clone.name) }
            throw error
        }
        if !plan.copies.isEmpty { try local.removePendingFiles(owner: plan.clone.name) }
        return Cloned(domain: plan.clone, copies: made)
    }

    /// Where the copy for `destination` is written until it is whole: a hidden file in the same directory (so the
    /// rename stays within one filesystem).
    static func partialPath(of destination: String) -> String {
        let url = URL(fileURLWithPath: destination)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".svirt-partial").path
    }

    /// Files a killed svirt process was creating: removed unless the domain they were for is defined (a clone
    /// cut short leaves neither copies nor partial files), then forgotten.
    func reconcilePendingFiles() {
        guard let pending = try? local.pendingFiles() else { return }
        for p in pending where p.holder != holder && !env.proc.isAlive(p.holder) {
            let defined = ((try? local.definedDomain(named: p.owner)) ?? nil) != nil
            var removed: [String] = []
            if !defined {
                for path in p.paths where unlink(path) == 0 { removed.append(path) }
            }
            do {
                try local.removePendingFiles(owner: p.owner)
                try local.log(domain: p.owner, kind: "reconcile", message: "the svirt process (pid \(p.holder.pid)) creating its "
                              + "files is gone" + (defined ? "; the domain is defined, its files are kept"
                                                   : "; removed \(removed.isEmpty ? "nothing" : removed.joined(separator: ", "))"))
            } catch {
                try? local.log(domain: p.owner, kind: "reconcile", message: "could not forget the files being created: \(error)")
            }
        }
    }

    // MARK: Edit

    /// The SELinux labels in `domain` that the host's policy rejects (its user, role, type or level), with the
    /// policy engine's reasons.
    public func seclabelProblems(_ domain: DomainDefinition) throws -> [DomainDefinition.SeclabelProblem] {
        let selinux = try env.selinux()
        return domain.seclabelProblems(in: try selinux.loadPolicy())
    }

    /// The XML `svirt edit NAME` starts from: the definition (a transient domain has none to edit).
    public func editableXML(of name: String) throws -> String {
        if let r = try local.definedDomain(named: name) { return r.xml }
        if try local.runningDomain(named: name) != nil {
            throw SVirtError(.state, "domain '\(name)' is transient: it has no persistent configuration to edit; define "
                             + "it first (svirt dumpxml \(name) > \(name).xml && svirt define \(name).xml)")
        }
        throw SVirtError(.notFound, "failed to get domain '\(name)'")
    }

    /// What an edit came to.
    public enum EditOutcome: Sendable {
        /// The text is the same: nothing is defined.
        case unchanged
        case defined(DomainDefinition, SQLiteRegistry.DefineOutcome)
    }

    /// Checks edited XML as `svirt define` does (the same hardened reader) and its SELinux labels against the
    /// host's policy, without defining it. Nil when `edited` is `original` unchanged (white space at either end
    /// aside: editors add a final newline).
    public func checkEdit(original: String, edited: String, source: String = "the edited XML") throws -> DomainDefinition? {
        guard edited.trimmingCharacters(in: .whitespacesAndNewlines) != original.trimmingCharacters(in: .whitespacesAndNewlines)
        else { return nil }
        let domain = try DomainDefinition(xml: edited, source: source)
        let problems = try seclabelProblems(domain)
        if !problems.isEmpty {
            let policy = (try? env.selinux().policySource) ?? "the host's policy"
            throw SVirtError(.policy, "the host's SELinux policy (\(policy)) rejects "
                             + problems.map(\.description).joined(separator: "; ")
                             + ". Give a label whose user, role, type and level the policy defines (seinfo, or svirt policy info)")
        }
        return domain
    }

    /// Saves an edit of `name` (`svirt edit`): checked by `checkEdit`, then defined.
    public func saveEdit(of name: String, original: String, edited: String) throws -> EditOutcome {
        guard let domain = try checkEdit(original: original, edited: edited) else { return .unchanged }
        let outcome = try define(domain)
        try local.log(domain: domain.name, kind: "edit", message: domain.name == name ? "edited" : "edited from '\(name)'")
        return .defined(domain, outcome)
    }

    /// Replaces the `<seclabel model='selinux'>` of `name`'s definition (`svirt edit --set-seclabel`), checked
    /// against the host's policy as an edit is.
    public func setSeclabel(of name: String, _ seclabel: DomainSeclabel) throws -> EditOutcome {
        let original = try editableXML(of: name)
        let domain = try DomainDefinition(xml: original, source: "the definition of '\(name)'")
        let edited = try domain.settingSelinuxSeclabel(seclabel)
        if edited.selinuxSeclabel == domain.selinuxSeclabel { return .unchanged }
        return try saveEdit(of: name, original: original, edited: edited.xmlText())
    }
}
