import Glibc
import SELinux
import SVirt

/// Where SELinux is off, svirt confines each guest with Landlock and checks every grant of its ruleset against
/// the policy first: the guest's process label must be allowed the access to the label of what is granted. A
/// grant the policy denies refuses the start, with the reason, so Landlock never lets a guest do what SELinux
/// would forbid.
///
/// The label of a path is, in order: the label svirt gives it for this guest (its own resources), its
/// `security.selinux` attribute, or its file_contexts default (`DefaultLabelSource`); a path with none is
/// `unlabeled_t`, as the kernel would see it.
public struct LandlockGrantCheck: Sendable {
    public var checker: any AccessChecker
    /// The file_contexts defaults; nil when none are at hand (then a path without `security.selinux` is not
    /// checked, and says so).
    public var defaults: (any DefaultLabelSource)?
    public var store: any FileLabelStore

    public init(checker: any AccessChecker, defaults: (any DefaultLabelSource)?, store: any FileLabelStore = XattrFileLabelStore()) {
        self.checker = checker
        self.defaults = defaults
        self.store = store
    }

    /// One decision.
    public struct Check: Sendable, Hashable {
        public var path: String
        /// Why the ruleset grants it (the rule's reason).
        public var reason: String
        public var target: SecurityContext
        /// Where the target label came from: `svirt`, `security.selinux`, `file_contexts`, `none`.
        public var labelSource: String
        public var objectClass: String
        public var permissions: [String]
        public var decision: AccessDecision
    }

    public struct Report: Sendable {
        public var checks: [Check] = []
        /// Grants the checker could not decide (no policy at hand), with the reason.
        public var unchecked: [String] = []

        public var denied: [Check] {
            checks.filter { if case .denied = $0.decision { return true } else { return false } }
        }
    }

    /// The object class and permissions a Landlock right set stands for on a file of `kind`. Directories get
    /// the directory permissions, and the file permissions are checked separately on the directory's label
    /// (what the files beneath it carry by default).
    public static func permissions(_ access: Landlock.FilesystemAccess, kind: FileKind,
                                   entrypoint: Bool = false) -> [(objectClass: String, permissions: [String])] {
        var file = ["getattr", "open"]
        if access.contains(.readFile) { file.append("read") }
        if access.contains(.writeFile) { file.append("write") }
        if access.contains(.execute) { file.append("execute") }
        if access.contains(.ioctlDevice) { file.append("ioctl") }
        if entrypoint { file.append("entrypoint") }
        switch kind {
        case .directory:
            var dir = ["getattr", "open", "search"]
            if access.contains(.readDirectory) { dir.append("read") }
            let creates: Landlock.FilesystemAccess = [.makeRegular, .removeFile, .makeDirectory, .removeDirectory]
            if !access.intersection(creates).isEmpty { dir += ["write", "add_name", "remove_name"] }
            var out = [("dir", dir)]
            // What lies beneath: device nodes for a device grant (/dev/pts), files otherwise.
            if file.count > 2 { out.append((access.contains(.ioctlDevice) ? "chr_file" : "file", file)) }
            return out
        case .characterDevice: return [("chr_file", file)]
        case .blockDevice: return [("blk_file", file)]
        case .socket: return [("sock_file", ["getattr", "write"])]
        case .fifo: return [("fifo_file", file)]
        case .regular, .symlink, .unknown: return [("file", file)]
        }
    }

    /// The label of `path` (canonical) for the check, and where it came from; nil when it cannot be known.
    func label(of path: String, kind: FileKind, given: [String: SecurityContext]) throws -> (SecurityContext, String)? {
        if let c = given[path] { return (c, "svirt") }
        if let file = try? store.open(path), let text = (try? file.selinuxContext()) ?? nil,
           let c = try? SecurityContext(parsing: text) {
            return (c, "security.selinux")
        }
        guard let defaults else { return nil }
        if let d = try defaults.defaultLabel(for: path, kind: kind) { return (d, "file_contexts") }
        return (Preflight.unlabeled, "none")
    }

    /// Checks every rule for `process`. `given` maps the canonical paths of the guest's own resources to the
    /// labels svirt gives them; `entrypoint` is the program the guest starts as (it needs `entrypoint` too).
    /// Throws `SVirtError(.policy)` listing every denial.
    public func check(domain: String, process: SecurityContext, rules: [Landlock.PathRule],
                      given: [String: SecurityContext], entrypoint: String?) throws -> Report {
        var report = Report()
        var seen = Set<String>()
        let entry = entrypoint.flatMap { try? store.resolve($0) }
        for rule in rules {
            let path = (try? store.resolve(rule.path)) ?? rule.path
            var st = stat()
            guard stat(path, &st) == 0 else { continue }  // the ruleset names missing paths itself
            let kind = XattrFileLabelStore.kind(st.st_mode)
            guard let (target, source) = try label(of: path, kind: kind, given: given) else {
                report.unchecked.append("\(path): not checked (it has no security.selinux and no file_contexts defaults are at hand)")
                continue
            }
            for (cls, perms) in Self.permissions(rule.access, kind: kind, entrypoint: path == entry) {
                guard seen.insert("\(path)|\(cls)|\(perms.joined(separator: ","))").inserted else { continue }
                let decision: AccessDecision
                do {
                    decision = try checker.check(source: process, target: target, objectClass: cls, permissions: perms)
                } catch {
                    throw SVirtError(.policy, "cannot check the Landlock grant on \(path) (\(target)) for '\(domain)': \(error)")
                }
                report.checks.append(Check(path: path, reason: rule.reason, target: target, labelSource: source,
                                           objectClass: cls, permissions: perms, decision: decision))
                if case .unknown(let why) = decision { report.unchecked.append("\(path): not checked (\(why))") }
            }
        }
        let denied = report.denied
        if !denied.isEmpty {
            let lines = denied.map { c -> String in
                var s = "\(c.path) (\(c.target), from \(c.labelSource)): \(c.objectClass) { \(c.permissions.joined(separator: " ")) }"
                if case .denied(let d) = c.decision {
                    switch d.kind {
                    case .boolean: s += " — the boolean\(d.booleans.count == 1 ? "" : "s") \(d.booleans.joined(separator: ", ")) would allow it"
                    case .constraint: s += " — the MCS/MLS constraint forbids it"
                    default: s += d.detail.isEmpty ? " — \(d.kind.rawValue)" : " — \(d.detail)"
                    }
                }
                return "  - " + s
            }
            throw SVirtError(.policy, "'\(domain)' cannot start under Landlock: the policy does not let its label \(process) "
                             + "use \(denied.count == 1 ? "a path" : "\(denied.count) paths") its ruleset would grant, so "
                             + "svirt will not grant \(denied.count == 1 ? "it" : "them"):\n" + lines.joined(separator: "\n"))
        }
        return report
    }
}
