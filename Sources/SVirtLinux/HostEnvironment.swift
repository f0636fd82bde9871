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
            return ConfiguredContext(c, source: .file(path: "\(proc.root)/self/attr/current", line: 1))
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
    /// categories of the managing process's clearance (the high level of its range). Set-aside categories are
    /// removed. Fewer than 8 categories is an error.
    public func pool(override: SecurityLevel? = nil) throws -> CategoryPool {
        if let o = override ?? configuration.categories {
            return try CategoryPool(level: o, excluding: configuration.reservedCategories)
        }
        let manager = managerContext().context
        guard let range = manager.range else {
            throw SVirtError(.invalidPool, "the managing context '\(manager)' has no MLS range, so it gives no categories; "
                             + "set the pool with --categories c0.c1023 or 'categories =' in \(state.configurationPath)")
        }
        return try CategoryPool(level: range.high, excluding: configuration.reservedCategories)
    }

    /// Opens the registry and releases reservations whose process is gone.
    public func openRegistry() throws -> SQLiteRegistry {
        let r = try SQLiteRegistry(state: state, coolDown: configuration.coolDownSeconds)
        try r.reconcileProcesses(isAlive: { proc.isAlive($0) })
        return r
    }
}
