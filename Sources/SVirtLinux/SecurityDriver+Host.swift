import SELinux
import SVirt

extension SecurityDriver {
    /// The driver of this host: its SELinux contexts, the managing context and pool, real files and xattrs,
    /// sysfs, the boot time from `/proc/stat`, and the labelling lock in the state directory.
    ///
    /// `checker` answers the static-label preflight and `defaults` gives restore its file_contexts defaults.
    /// Until the policy engine and file_contexts are wired in, the preflight reports what it could not check and
    /// restore falls back to `ContextsConfiguration.restoreFallback`.
    public static func host(_ env: HostEnvironment, registry: any LevelRegistry,
                            checker: (any AccessChecker)? = nil, defaults: (any DefaultLabelSource)? = nil,
                            pool: CategoryPool? = nil) throws -> SecurityDriver {
        let selinux = try env.selinux()
        guard let boot = env.proc.bootTime() else {
            throw SVirtError(.unsupported, "cannot read the boot time (btime) from \(env.proc.root)/stat; svirt writes it on "
                             + "its records of original labels, so it needs procfs mounted")
        }
        try env.state.create()
        let lockPath = "\(env.state.path)/labels.lock"
        return SecurityDriver(
            contexts: selinux.contexts, manager: env.managerContext().context, pool: try pool ?? env.pool(),
            registry: registry, host: LinuxHostInspector(), store: XattrFileLabelStore(),
            defaults: defaults ?? FallbackDefaultLabels(selinux.contexts.restoreFallback.context),
            checker: checker ?? UnavailableAccessChecker(reason: "svirt's policy engine is not wired in yet"),
            bootTime: boot, lock: { try LabelingLock(path: lockPath) })
    }
}
