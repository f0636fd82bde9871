import Foundation
import Glibc
import SELinux
import SELinuxPolicy
import SVirt

/// The accesses each VM needs to run as defined, as policy questions (`VMAccessNeed`): its QEMU's process label on
/// each of its resources, `execmem` on itself for a TCG guest (`<domain type='qemu'>`), and the manager's context
/// starting that label. A running VM is asked with its live labels; a defined one with the labels a start would
/// give it (a dynamic label with a placeholder level: the pool's first pair, which no decision of the checks here
/// depends on, since a VM's process and images share their level).
///
/// The target label of a resource is the one svirt sets, else its `security.selinux`, else, on a filesystem
/// without labels (NFS, CIFS, FUSE), the `genfscon` label the policy gives that filesystem (`nfs_t`, ...): that is
/// how `virt_use_nfs` and its kin show up.
public struct DomainAccessNeeds {
    public let env: HostEnvironment
    public let registry: SQLiteRegistry
    public let policy: PolicyDatabase
    /// The host's SELinux configuration (contexts for the labels a start would give), read once.
    let selinux: HostSELinuxConfiguration

    public init(environment env: HostEnvironment, registry: SQLiteRegistry, policy: PolicyDatabase) throws {
        self.env = env
        self.registry = registry
        self.policy = policy
        selinux = try env.selinux()
    }

    /// The needs of every defined VM and of every running transient one, by VM name; the warnings name VMs that
    /// could not be read (their needs are left out).
    public func all() throws -> (needs: [String: [VMAccessNeed]], warnings: [String]) {
        var out: [String: [VMAccessNeed]] = [:]
        var warnings: [String] = []
        var names = try registry.definedDomains().map(\.name)
        for r in try registry.runningDomains() where !names.contains(r.name) { names.append(r.name) }
        for name in names {
            do { out[name] = try needs(of: name) } catch { warnings.append("'\(name)': \(error)") }
        }
        return (out, warnings)
    }

    /// The label a VM runs with (running: its live label) or would get at start.
    public func label(of name: String) throws -> (domain: DomainDefinition, label: SecurityLabel, running: RunningDomain?) {
        let generator = LabelGenerator(contexts: selinux.contexts, manager: env.managerContext().context, pool: try env.pool())
        if let run = try registry.runningDomain(named: name), run.label != nil {
            let d = try DomainDefinition(xml: run.liveXML, mode: .live, source: "the live XML of '\(name)'")
            return (d, try generator.liveLabel(of: d), run)
        }
        let xml: String
        if let r = try registry.definedDomain(named: name) { xml = r.xml } else if let run = try registry.runningDomain(named: name) {
            xml = run.liveXML
        } else {
            throw SVirtError(.notFound, "failed to get domain '\(name)'")
        }
        let d = try DomainDefinition(xml: xml, source: "the definition of '\(name)'")
        let pool = generator.pool
        let level = SecurityLevel(sensitivity: pool.sensitivity, categories: CategorySet(Array(pool.categories.prefix(2))))
        return (d, try generator.generateLabel(for: d, level: level).label, try registry.runningDomain(named: name))
    }

    /// The needs of one VM.
    public func needs(of name: String) throws -> [VMAccessNeed] {
        let (domain, label, _) = try label(of: name)
        guard let process = label.process else { return [] }
        var out: [VMAccessNeed] = []
        if domain.virtType == .qemu {
            out.append(VMAccessNeed(domain: name, purpose: "TCG guest (type='qemu'): QEMU generates code at run time",
                                    source: process, target: process, tclass: "process", permissions: ["execmem"]))
        }
        out.append(VMAccessNeed(domain: name, purpose: "svirt starts its QEMU in \(process.type)",
                                source: env.managerContext().context, target: process, tclass: "process",
                                permissions: ["transition"]))
        let plan = try LabelPlanner(contexts: selinux.contexts, host: LinuxHostInspector()).plan(for: domain, label: label)
        let mounts = Self.mounts()
        for e in plan.entries where e.path.hasPrefix("/") {
            let (tclass, exists) = Self.objectClass(of: e.path)
            guard let target = e.context ?? Self.fileSystemLabel(e.path, mounts: mounts, policy: policy)
                    ?? (exists ? Self.xattrLabel(e.path) : nil) else { continue }
            var perms = tclass == "dir" ? ["getattr", "open", "search", "read"] : ["getattr", "open", "read"]
            if e.access == .readWrite { perms.append(tclass == "dir" ? "add_name" : "write") }
            out.append(VMAccessNeed(domain: name, purpose: "\(e.resource) (\(e.access.rawValue))", source: process,
                                    target: target, tclass: tclass, permissions: perms, object: e.path))
        }
        return out
    }

    /// The SELinux object class of what is at `path` (`file` for a path that does not exist), and whether it exists.
    static func objectClass(of path: String) -> (tclass: String, exists: Bool) {
        var st = stat()
        guard stat(path, &st) == 0 else { return ("file", false) }
        switch st.st_mode & S_IFMT {
        case S_IFBLK: return ("blk_file", true)
        case S_IFCHR: return ("chr_file", true)
        case S_IFDIR: return ("dir", true)
        default: return ("file", true)
        }
    }

    static func xattrLabel(_ path: String) -> SecurityContext? {
        guard let bytes = try? ExtendedAttributes.get(ExtendedAttributes.selinux, path: path) else { return nil }
        let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        return try? SecurityContext(parsing: text)
    }

    /// Mount points and filesystem types from `/proc/self/mounts`, longest mount point first.
    static func mounts() -> [(point: String, type: String)] {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        var out: [(String, String)] = []
        for line in text.nonEmptyTextLines() {
            let f = line.split(separator: " ")
            guard f.count >= 3 else { continue }
            out.append((String(f[1]).replacingOccurrences(of: "\\040", with: " "), String(f[2])))
        }
        return out.sorted { $0.0.count > $1.0.count }
    }

    /// Filesystems that keep no labels of their own, and the policy's `genfscon` name for each.
    static let labelLessFileSystems = ["nfs": "nfs", "nfs4": "nfs", "cifs": "cifs", "smb3": "cifs", "fuse": "fuse",
                                       "fuseblk": "fuseblk", "9p": "9p", "virtiofs": "virtiofs"]

    /// The label the policy gives every file of a label-less filesystem (NFS, CIFS, FUSE) holding `path`.
    public static func fileSystemLabel(_ path: String, mounts: [(point: String, type: String)], policy: PolicyDatabase) -> SecurityContext? {
        guard let m = mounts.first(where: { path == $0.point || path.hasPrefix($0.point == "/" ? "/" : $0.point + "/") }) else { return nil }
        let base = m.type.split(separator: ".").first.map(String.init) ?? m.type
        guard let fs = labelLessFileSystems[base] else { return nil }
        return genfsLabel(fs, policy: policy)
    }

    /// The `genfscon FS /` context of the policy.
    public static func genfsLabel(_ fs: String, policy: PolicyDatabase) -> SecurityContext? {
        for o in policy.objectContexts {
            if case .genfs(let name, let p, _, let c) = o, name == fs, p == "/" { return c }
        }
        return nil
    }
}
