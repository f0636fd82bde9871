import SELinux
import SELinuxPolicy

/// How far one domain reaches another through one kind of access.
public enum XenReach: String, Sendable, Hashable, Codable {
    /// Every check passes.
    case allowed
    /// Read-only: map_read passes, map_write does not.
    case readOnly = "read-only"
    case denied
}

/// The isolation matrix over a set of domains: for every ordered pair (row, column), may the row domain map the
/// column's grants, set up an event channel with it, map its memory, or send it Argo messages, with the checks and
/// reasons behind each answer. Stub device models appear as domains of their own (`NAME-dm`), acting on their guest
/// through their `_target` label.
public struct XenIsolationMatrix: Sendable {
    public struct Cell: Sendable {
        public var source: String
        public var target: String
        public var checks: [XenAccessKind: [XenCheck]]
        /// The row is the column's stub device model: it must reach its guest.
        public var deviceModelOfTarget: Bool

        /// The reach of one kind of access.
        public func reach(_ kind: XenAccessKind) -> XenReach {
            let cs = checks[kind] ?? []
            if !cs.isEmpty, cs.allSatisfy(\.allowed) { return .allowed }
            if kind == .grant || kind == .memory, let c = cs.first, case .decided(let d) = c.outcome,
               d.permissions.contains(where: { $0.permission == "map_read" && $0.allowed }) {
                return .readOnly
            }
            return .denied
        }

        /// True when the row domain cannot reach the column through grants, event channels or memory. Argo is left
        /// out: it exists only when Xen is built and booted with it.
        public var isolated: Bool { [XenAccessKind.grant, .event, .memory].allSatisfy { reach($0) == .denied } }
    }

    public var policy: XenPolicy
    public var domains: [XenDomain]
    /// The xl.cfg file of each domain, by name.
    public var files: [String: String]
    /// Row-major, without the diagonal.
    public var cells: [Cell]

    /// The matrix over the domains the builds produce (each guest with its running label, and its stub device model).
    public init(builds: [XenDomainBuild], policy: XenPolicy) throws {
        var domains: [XenDomain] = []
        var files: [String: String] = [:]
        var fileOf: [String: String] = [:]
        for b in builds {
            for name in [b.domain.name] + (b.deviceModel.map { [$0.name] } ?? []) {
                if let other = fileOf[name] {
                    throw XenError(.value, "two domains are called '\(name)' (\(other) and \(b.configuration.file)); xl "
                                   + "refuses a second domain with a name in use")
                }
                fileOf[name] = b.configuration.file
            }
        }
        for b in builds {
            domains.append(b.domain)
            files[b.domain.name] = b.configuration.file
            if let dm = b.deviceModel {
                domains.append(dm)
                files[dm.name] = b.configuration.file
            }
        }
        try self.init(domains: domains, files: files, policy: policy)
    }

    /// The matrix over given domains. Throws when two domains share a name (Xen refuses that too).
    public init(domains: [XenDomain], files: [String: String] = [:], policy: XenPolicy) throws {
        var seen: [String: Int] = [:]
        for (i, d) in domains.enumerated() {
            if let j = seen[d.name] {
                throw XenError(.value, "two domains are called '\(d.name)' (\(files[domains[j].name] ?? "#\(j + 1)") and "
                               + "\(files[d.name] ?? "#\(i + 1)")); xl refuses a second domain with a name in use")
            }
            seen[d.name] = i
        }
        self.policy = policy
        self.domains = domains
        self.files = files
        var cells: [Cell] = []
        for a in domains {
            for b in domains where b.name != a.name {
                var checks: [XenAccessKind: [XenCheck]] = [:]
                for kind in XenAccessKind.allCases { checks[kind] = policy.access(kind, a, b) }
                cells.append(Cell(source: a.name, target: b.name, checks: checks, deviceModelOfTarget: a.deviceModelOf == b.name))
            }
        }
        self.cells = cells
    }

    /// The cell for row `a`, column `b`.
    public func cell(_ a: String, _ b: String) -> Cell? { cells.first { $0.source == a && $0.target == b } }

    /// The pairs that are not isolated, except a device model reaching its own guest (which it must).
    public var openPairs: [Cell] { cells.filter { !$0.isolated && !$0.deviceModelOfTarget } }
}
