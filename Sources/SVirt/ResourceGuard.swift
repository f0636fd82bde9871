import SELinux

/// The one rule that decides whether a path may be handed to a guest: labelled, given to the QEMU user, granted
/// by Landlock and opened by QEMU. It is the same for every seclabel type (a VM with `type='none'` or
/// `relabel='no'` still gets its files' owners changed and still opens them) and it runs on every path before
/// anything changes. `--force` overrides it, and says so.
public enum ResourceGuard {
    /// Whether the guard applies to an entry: everything the guest is handed, but not firmware that QEMU
    /// reads from the system (`loader`), host devices and the like (checked as device grants), shared
    /// directories or svirt's own runtime files.
    public static func guards(_ entry: LabelPlan.Entry) -> Bool {
        switch entry.kind {
        case .disk, .backingImage, .nvram, .kernel, .initrd, .dtb, .characterDevice: return true
        case .loader, .hostDevice, .tpm, .input, .filesystem, .runtime: return false
        }
    }

    /// Why `file` (opened at the canonical `path`) must not be handed to the guest, or nil when it may.
    /// `protected` are svirt's own directories (state, runtime).
    public static func refusal(path: String, file: any LabeledFile, entry: LabelPlan.Entry, protected: [String]) -> String? {
        if let why = Relabeler.systemPathReason(path) {
            return why + "; give the VM its own file, or pass --force if you really mean it"
        }
        for dir in protected where !dir.isEmpty {
            let d = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
            if path == d || path.hasPrefix(d + "/") {
                return "it is inside svirt's own directory \(d) (its registry, configuration and runtime files), "
                    + "which no guest may use; keep images elsewhere (--force overrides this)"
            }
        }
        guard let facts = file.facts else { return nil }
        if let fs = facts.pseudoFilesystem, !entry.isDeviceGrant {
            return "it is on the \(fs) pseudo filesystem, a kernel interface and not storage: a guest given it could change "
                + "what the host's kernel does; give the VM an image file (--force overrides this)"
        }
        if file.kind == .regular, facts.linkCount > 1 {
            return "it has \(facts.linkCount) hard links, so other paths (perhaps a host file) name the same file and would "
                + "get its label and owner too; give the VM a file of its own (cp it to a new file) (--force overrides this)"
        }
        return nil
    }
}
