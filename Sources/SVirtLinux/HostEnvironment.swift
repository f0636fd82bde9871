import Foundation
import SELinux
import SVirt

/// Everything a command needs from the host, resolved once: the state directory and its configuration, the
/// SELinux configuration, the managing process's context and the category pool.
public struct HostEnvironment: Sendable {
    public let state: StateDirectory
    public let configuration: SVirtConfiguration
    public let selinuxRoot: String
    public let proc: ProcFS

    public init(stateDirectory: String?, selinuxRoot: String?, proc: ProcFS = ProcFS()) throws {
        state = StateDirectory.resolve(stateDirectory)
        configuration = try state.configuration()
        self.selinuxRoot = HostSELinuxConfiguration.resolveRoot(selinuxRoot)
        self.proc = proc
    }

    /// The host SELinux configuration (or built-in defaults).
    public func selinux() throws -> HostSELinuxConfiguration {
        try HostSELinuxConfiguration.load(root: selinuxRoot)
    }

    /// The managing process's context and where it came from: the kernel's label for this process, else
    /// `manager_context` from svirt.conf, else libvirtd's usual `virtd_t` context.
    public func managerContext() -> ConfiguredContext {
        if let text = proc.context(), let c = try? SecurityContext(parsing: text) {
            return ConfiguredContext(c, source: .file(path: proc.selfContextPath, line: 1))
        }
        if let c = configuration.managerContext {
            return ConfiguredContext(c, source: .file(path: state.configurationPath, line: 0))
        }
        // The literal is valid; the fallback only guards against a programming error.
        let c = (try? SecurityContext(parsing: BuiltInContexts.manager))
            ?? SecurityContext(user: "system_u", role: "system_r", type: "virtd_t")
        return ConfiguredContext(c, source: .builtIn(reason: "the kernel gives this process no SELinux context"))
    }

    /// The category pool: `override` (from `--categories`), else `categories` from svirt.conf, else the
    /// managing process's range as libvirt reads it: the low sensitivity, and the categories of the high level
    /// (c0.c1023 when the range has none, or there is no range). Set-aside categories are removed. Fewer than 8
    /// categories is an error.
    public func pool(override: SecurityLevel? = nil) throws -> CategoryPool {
        if let o = override ?? configuration.categories {
            return try CategoryPool(level: o, excluding: configuration.reservedCategories)
        }
        return try Self.pool(manager: managerContext().context, excluding: configuration.reservedCategories)
    }

    /// The pool a managing context gives (libvirt's reading of the daemon's range, section 5.1 of the
    /// reference): `s0-s0:c0.c1023` gives s0 with c0..c1023, `s2-s3:c0.c255` gives s2 with c0..c255, and a
    /// range without categories (`s0`, `s0-s0`) or no range gives s0..c0.c1023.
    public static func pool(manager: SecurityContext, excluding: CategorySet = CategorySet()) throws -> CategoryPool {
        let sensitivity = manager.range?.low.sensitivity ?? 0
        var categories = manager.range?.high.categories ?? CategorySet()
        if categories.isEmpty { categories = CategorySet(range: 0...1023) }
        return try CategoryPool(level: SecurityLevel(sensitivity: sensitivity, categories: categories), excluding: excluding)
    }

    /// Opens the registry and releases reservations whose process is gone.
    public func openRegistry() throws -> SQLiteRegistry {
        let r = try SQLiteRegistry(state: state, coolDown: configuration.coolDownSeconds)
        try r.reconcileProcesses(isAlive: { proc.isAlive($0) })
        return r
    }
}
