import CSVirt
import Glibc
import SVirt

/// Landlock: unprivileged, stackable access control for a process and its descendants.
///
/// svirt builds a `Ruleset` (a value) for each guest and hands it to the spawn, which creates the kernel object
/// and applies it in the child between fork and exec. Nothing here restricts the calling process.
///
/// Fail closed: a ruleset lists the restrictions it needs (filesystem rights that must be denied by default,
/// TCP restrictions, scopes). When the running kernel's ABI cannot enforce one of them, `create` throws and
/// names it, instead of quietly enforcing less.
public enum Landlock {
    /// Filesystem access rights (`LANDLOCK_ACCESS_FS_*`).
    public struct FilesystemAccess: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        public static let execute = FilesystemAccess(rawValue: 1 << 0)
        public static let writeFile = FilesystemAccess(rawValue: 1 << 1)
        public static let readFile = FilesystemAccess(rawValue: 1 << 2)
        public static let readDirectory = FilesystemAccess(rawValue: 1 << 3)
        public static let removeDirectory = FilesystemAccess(rawValue: 1 << 4)
        public static let removeFile = FilesystemAccess(rawValue: 1 << 5)
        public static let makeCharacterDevice = FilesystemAccess(rawValue: 1 << 6)
        public static let makeDirectory = FilesystemAccess(rawValue: 1 << 7)
        public static let makeRegular = FilesystemAccess(rawValue: 1 << 8)
        public static let makeSocket = FilesystemAccess(rawValue: 1 << 9)
        public static let makeFifo = FilesystemAccess(rawValue: 1 << 10)
        public static let makeBlockDevice = FilesystemAccess(rawValue: 1 << 11)
        public static let makeSymlink = FilesystemAccess(rawValue: 1 << 12)
        /// ABI 2: link or rename a file into another directory.
        public static let refer = FilesystemAccess(rawValue: 1 << 13)
        /// ABI 3: truncate(2), ftruncate(2) and open(O_TRUNC).
        public static let truncate = FilesystemAccess(rawValue: 1 << 14)
        /// ABI 5: ioctl(2) on character and block devices.
        public static let ioctlDevice = FilesystemAccess(rawValue: 1 << 15)

        /// The rights a rule on a file that is not a directory may carry; the others are refused by the kernel.
        public static let fileRights: FilesystemAccess = [.execute, .writeFile, .readFile, .truncate, .ioctlDevice]

        /// Run programs and load libraries: read and execute files, list directories.
        public static let readExecute: FilesystemAccess = [.execute, .readFile, .readDirectory]
        /// Read files and list directories.
        public static let readOnly: FilesystemAccess = [.readFile, .readDirectory]
        /// Read, write and truncate files; beneath a directory also create and remove files, sockets, fifos,
        /// directories and symlinks (never device nodes), and move them within the hierarchy.
        public static let readWrite: FilesystemAccess = [
            .readFile, .writeFile, .truncate, .readDirectory, .removeDirectory, .removeFile, .makeDirectory,
            .makeRegular, .makeSocket, .makeFifo, .makeSymlink, .refer,
        ]
        /// A device node the guest uses: read, write and ioctl (KVM, a pty).
        public static let device: FilesystemAccess = [.readFile, .writeFile, .ioctlDevice]

        static let names: [(FilesystemAccess, String)] = [
            (.execute, "execute"), (.writeFile, "write_file"), (.readFile, "read_file"),
            (.readDirectory, "read_dir"), (.removeDirectory, "remove_dir"), (.removeFile, "remove_file"),
            (.makeCharacterDevice, "make_char"), (.makeDirectory, "make_dir"), (.makeRegular, "make_reg"),
            (.makeSocket, "make_sock"), (.makeFifo, "make_fifo"), (.makeBlockDevice, "make_block"),
            (.makeSymlink, "make_sym"), (.refer, "refer"), (.truncate, "truncate"), (.ioctlDevice, "ioctl_dev"),
        ]

        /// The kernel's names of the rights, e.g. `read_file|read_dir`.
        public var description: String {
            let n = Self.names.filter { contains($0.0) }.map(\.1)
            return n.isEmpty ? "none" : n.joined(separator: "|")
        }

        /// A short name for the presets, else the kernel's names.
        public var summary: String {
            switch self {
            case .readExecute: return "read-execute"
            case .readOnly: return "read-only"
            case .readWrite: return "read-write"
            case .device: return "device"
            case [.execute, .readFile]: return "read-execute (file)"
            case [.readFile]: return "read-only (file)"
            case [.readFile, .writeFile, .truncate]: return "read-write (file)"
            case [.readFile, .writeFile]: return "read-write (no truncate)"
            default: return description
            }
        }
    }

    /// Network access rights (`LANDLOCK_ACCESS_NET_*`, ABI 4).
    public struct NetworkAccess: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public static let bindTCP = NetworkAccess(rawValue: 1 << 0)
        public static let connectTCP = NetworkAccess(rawValue: 1 << 1)
        public static let all: NetworkAccess = [.bindTCP, .connectTCP]

        public var description: String {
            let n = [(NetworkAccess.bindTCP, "bind_tcp"), (.connectTCP, "connect_tcp")].filter { contains($0.0) }.map(\.1)
            return n.isEmpty ? "none" : n.joined(separator: "|")
        }
    }

    /// IPC scoping (`LANDLOCK_SCOPE_*`, ABI 6): the confined process cannot reach processes outside its domain.
    public struct Scope: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        /// Connecting to abstract unix sockets created outside the domain.
        public static let abstractUnixSocket = Scope(rawValue: 1 << 0)
        /// Sending signals to processes outside the domain.
        public static let signal = Scope(rawValue: 1 << 1)
        public static let all: Scope = [.abstractUnixSocket, .signal]

        public var description: String {
            let n = [(Scope.abstractUnixSocket, "abstract_unix_socket"), (.signal, "signal")]
                .filter { contains($0.0) }.map(\.1)
            return n.isEmpty ? "none" : n.joined(separator: "|")
        }
    }

    /// What one Landlock ABI version can restrict, after go-landlock's `abi_versions.go`.
    public struct ABI: Sendable, Hashable, CustomStringConvertible {
        public let version: Int
        public let filesystem: FilesystemAccess
        public let network: NetworkAccess
        public let scopes: Scope

        /// ABI 1 (Linux 5.13) to 7 (6.15). ABI 7 adds audit-logging flags, no new rights.
        public static let table: [ABI] = {
            let v1 = FilesystemAccess(rawValue: (1 << 13) - 1)
            let v2 = v1.union(.refer), v3 = v2.union(.truncate), v5 = v3.union(.ioctlDevice)
            return [
                ABI(version: 1, filesystem: v1, network: [], scopes: []),
                ABI(version: 2, filesystem: v2, network: [], scopes: []),
                ABI(version: 3, filesystem: v3, network: [], scopes: []),
                ABI(version: 4, filesystem: v3, network: .all, scopes: []),
                ABI(version: 5, filesystem: v5, network: .all, scopes: []),
                ABI(version: 6, filesystem: v5, network: .all, scopes: .all),
                ABI(version: 7, filesystem: v5, network: .all, scopes: .all),
            ]
        }()

        /// The entry for a kernel's version; versions above the table's newest get the newest entry, whose
        /// rights a newer kernel still enforces. Nil for 0 and below (no Landlock).
        public static func version(_ v: Int) -> ABI? {
            guard v >= 1, let last = table.last else { return nil }
            return v > last.version ? last : table[v - 1]
        }

        /// The running kernel's ABI. The corresponding C call is
        /// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
        public static func current() throws -> ABI {
            let v = svirt_landlock_abi_version()
            if v > 0, let abi = version(Int(v)) { return abi }
            let e = errno
            let why = e == ENOSYS ? "the kernel was built without Landlock"
                : e == EOPNOTSUPP ? "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)"
                : String(cString: strerror(e))
            throw SVirtError(.unsupported, "Landlock is not available: \(why)",
                             cause: SystemCallError(call: "landlock_create_ruleset", path: "", errno: e))
        }

        /// The first ABI that has `access`, or nil when none does.
        public static func introducing(_ access: FilesystemAccess) -> Int? {
            table.first { $0.filesystem.isSuperset(of: access) }?.version
        }

        /// Bytes of `struct landlock_ruleset_attr` this ABI reads.
        var rulesetAttributeSize: Int { scopes.isEmpty ? (network.isEmpty ? 8 : 16) : 24 }

        public var description: String { "Landlock ABI \(version)" }
    }

    /// Access to everything beneath `path` (or to the file itself).
    public struct PathRule: Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var access: FilesystemAccess
        /// Why the guest needs it, for listings and errors.
        public var reason: String

        public init(path: String, access: FilesystemAccess, reason: String = "") {
            self.path = path
            self.access = access
            self.reason = reason
        }

        public var description: String {
            "\(access.summary) \(path)" + (reason.isEmpty ? "" : "  (\(reason))")
        }
    }

    /// TCP access to one port.
    public struct PortRule: Sendable, Hashable {
        public var port: UInt16
        public var access: NetworkAccess
        public init(port: UInt16, access: NetworkAccess) {
            self.port = port
            self.access = access
        }
    }

    /// Whether TCP is restricted.
    public enum NetworkPolicy: Sendable, Hashable {
        /// Landlock does not restrict TCP (no ABI 4 needed).
        case unrestricted
        /// bind and connect are denied except on the ports of `portRules`.
        case restricted
    }

    /// A ruleset description. `create(abi:)` turns it into the kernel object.
    public struct Ruleset: Sendable, Hashable, CustomStringConvertible {
        /// Filesystem rights that must be denied outside the rules. The kernel object handles every right the
        /// running ABI knows, which denies at least these; `create` fails when the ABI lacks one of them.
        /// Empty: the ruleset leaves the filesystem alone (only TCP and scopes).
        public var requiredFilesystem: FilesystemAccess
        public var network: NetworkPolicy
        /// Scopes that must be enforced.
        public var scopes: Scope
        public private(set) var pathRules: [PathRule] = []
        public private(set) var portRules: [PortRule] = []
        /// Descriptors (O_PATH) of files the caller holds open, by rule path: a rule on such a path is added on
        /// the held file, and the path is not resolved again. The caller keeps them open until `create`.
        public var heldDescriptors: [String: Int32] = [:]

        /// The rights svirt needs denied for a guest: everything of ABI 3 (which adds truncate, so another
        /// guest's image cannot be truncated) — device ioctls too where the ABI has them.
        public static let guestFilesystem = FilesystemAccess(rawValue: (1 << 15) - 1)

        /// A ruleset that denies `requiredFilesystem`, TCP (`network`) and the `scopes`, until rules allow.
        public init(requiredFilesystem: FilesystemAccess = Ruleset.guestFilesystem,
                    network: NetworkPolicy = .restricted, scopes: Scope = .all) {
            self.requiredFilesystem = requiredFilesystem
            self.network = network
            self.scopes = scopes
        }

        /// Allows `access` beneath `path`. A rule for the same path merges with it.
        public mutating func allow(_ access: FilesystemAccess, beneath path: String, reason: String = "") {
            if let i = pathRules.firstIndex(where: { $0.path == path }) {
                pathRules[i].access.formUnion(access)
                if pathRules[i].reason.isEmpty { pathRules[i].reason = reason }
            } else {
                pathRules.append(PathRule(path: path, access: access, reason: reason))
            }
        }

        /// Adds each rule (merging rules for the same path).
        public mutating func allow(_ rules: [PathRule]) {
            for r in rules { allow(r.access, beneath: r.path, reason: r.reason) }
        }

        /// Allows TCP `access` on `port` (only meaningful with `network: .restricted`).
        public mutating func allow(_ access: NetworkAccess, port: UInt16) {
            portRules.append(PortRule(port: port, access: access))
        }

        /// The restrictions `abi` cannot enforce, one phrase each; empty when it enforces them all.
        public func unenforceable(by abi: ABI) -> [String] {
            var out: [String] = []
            let missing = requiredFilesystem.subtracting(abi.filesystem)
            for (right, name) in FilesystemAccess.names where missing.contains(right) {
                out.append("filesystem right \(name) (needs ABI \(ABI.introducing(right).map(String.init) ?? "?"))")
            }
            if network == .restricted && abi.network.isEmpty { out.append("TCP bind/connect restriction (needs ABI 4)") }
            for (s, name) in [(Scope.signal, "signal"), (.abstractUnixSocket, "abstract unix socket")]
                where scopes.contains(s) && !abi.scopes.contains(s) {
                out.append("\(name) scoping (needs ABI 6)")
            }
            return out
        }

        /// Creates the kernel ruleset: handles every filesystem right `abi` knows, TCP when restricted, and the
        /// scopes; adds each rule. Throws, naming what is missing, when `abi` cannot enforce a required
        /// restriction, and naming the path when a rule's path cannot be opened.
        /// The corresponding C calls are `landlock_create_ruleset` and `landlock_add_rule`.
        public func create(abi given: ABI? = nil) throws -> Descriptor {
            let abi = try given ?? ABI.current()
            let missing = unenforceable(by: abi)
            if !missing.isEmpty {
                throw SVirtError(.confinement, "the kernel's \(abi) cannot enforce: \(missing.joined(separator: "; ")). "
                                 + "Nothing was started; run a kernel with a newer Landlock ABI, or use SELinux")
            }
            let handled: FilesystemAccess = requiredFilesystem.isEmpty ? [] : abi.filesystem
            var attr = svirt_landlock_ruleset_attr(
                handled_access_fs: handled.rawValue,
                handled_access_net: network == .restricted ? abi.network.rawValue : 0,
                scoped: scopes.rawValue)
            let fd = svirt_landlock_create_ruleset(&attr, abi.rulesetAttributeSize, 0)
            guard fd >= 0 else {
                let e = errno
                throw SVirtError(.confinement, "cannot create a Landlock ruleset: \(String(cString: strerror(e)))",
                                 cause: SystemCallError(call: "landlock_create_ruleset", path: "", errno: e))
            }
            let descriptor = Descriptor(fd: fd)
            for rule in pathRules { try add(rule, to: fd, handled: handled) }
            if network == .restricted {
                for rule in portRules where !rule.access.isEmpty {
                    if svirt_landlock_add_port_rule(fd, rule.access.rawValue, UInt64(rule.port)) != 0 {
                        let e = errno
                        throw SVirtError(.confinement, "cannot allow TCP port \(rule.port) in the Landlock ruleset: "
                                         + String(cString: strerror(e)),
                                         cause: SystemCallError(call: "landlock_add_rule", path: "", errno: e))
                    }
                }
            }
            return descriptor
        }

        private func add(_ rule: PathRule, to rulesetFD: Int32, handled: FilesystemAccess) throws {
            let fd = heldDescriptors[rule.path].map { dup($0) } ?? svirt_open_path(rule.path)
            guard fd >= 0 else {
                let e = errno
                throw SVirtError(.confinement, "cannot grant \(rule.access.summary) on '\(rule.path)'"
                                 + (rule.reason.isEmpty ? "" : " (\(rule.reason))")
                                 + ": \(String(cString: strerror(e))); check that the path exists",
                                 cause: SystemCallError(call: "open", path: rule.path, errno: e))
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                throw SVirtError(.confinement, "cannot stat '\(rule.path)': \(String(cString: strerror(errno)))",
                                 cause: SystemCallError(call: "fstat", path: rule.path, errno: errno))
            }
            let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
            // Rights the ruleset does not handle are not restricted at all, so granting them is moot; rights that
            // only make sense beneath a directory are refused by the kernel on other files.
            var access = rule.access.intersection(handled)
            if !isDirectory { access.formIntersection(.fileRights) }
            guard !access.isEmpty else { return }
            if svirt_landlock_add_path_rule(rulesetFD, access.rawValue, fd) != 0 {
                let e = errno
                throw SVirtError(.confinement, "cannot add the Landlock rule \(access) on '\(rule.path)': "
                                 + String(cString: strerror(e)),
                                 cause: SystemCallError(call: "landlock_add_rule", path: rule.path, errno: e))
            }
        }

        /// One line per rule, then the restrictions.
        public var description: String {
            var lines = pathRules.map(\.description)
            lines.append("denied elsewhere: \(requiredFilesystem)")
            lines.append("tcp: " + (network == .unrestricted ? "unrestricted"
                : portRules.isEmpty ? "denied" : portRules.map { "\($0.access) \($0.port)" }.joined(separator: ", ")))
            lines.append("scopes: \(scopes)")
            return lines.joined(separator: "\n")
        }
    }

    /// A kernel ruleset, closed when released. Only the spawn applies it, in the child.
    public final class Descriptor: Sendable {
        public let fd: Int32
        init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }
}
