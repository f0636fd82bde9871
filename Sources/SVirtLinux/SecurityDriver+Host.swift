import SELinux
import SVirt

extension SecurityDriver {
    /// The driver of this host: its SELinux contexts, the managing context and pool, real files and xattrs,
    /// sysfs, the boot time from `/proc/stat`, and the labelling lock in the state directory.
    ///
    /// `checker` answers the static-label preflight (by default svirt's policy engine over the host's policy,
    /// or the built-in sVirt policy) and `defaults` gives restore its defaults: by default the policy's
    /// file_contexts (a bad line there is an error naming it), or `ContextsConfiguration.restoreFallback` when the
    /// host has no file_contexts.
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
            defaults: try defaults ?? selinux.loadFileContexts() ?? FallbackDefaultLabels(selinux.contexts.restoreFallback.context),
            checker: checker ?? HostPolicyAccessChecker(selinux),
            bootTime: boot, lock: { try LabelingLock(path: lockPath) })
    }
}
