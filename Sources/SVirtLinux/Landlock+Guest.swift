extension Landlock.Ruleset {
    /// The ruleset of one guest: the system paths it needs to run (`system`), read-write on exactly its own
    /// writable files, read-only on its read-only files, and nothing else; TCP denied, signals and abstract
    /// unix sockets scoped to the guest.
    public static func guest(system: [Landlock.PathRule], readWrite: [String], readOnly: [String],
                             devices: [String] = []) -> Landlock.Ruleset {
        var r = Landlock.Ruleset()
        r.allow(system)
        for p in readOnly { r.allow(.readOnly, beneath: p, reason: "read-only guest resource") }
        for p in readWrite { r.allow(.readWrite, beneath: p, reason: "guest resource") }
        for p in devices { r.allow(.device, beneath: p, reason: "guest device") }
        return r
    }

    /// The ruleset for QEMU running `c`: QEMU's system paths, then the configuration's own files; a pty serial
    /// adds `/dev/ptmx` and `/dev/pts`.
    public static func guest(_ c: QEMUConfiguration, system: QEMUSystemPaths) -> Landlock.Ruleset {
        var devices: [String] = []
        if case .pty? = c.serial { devices = ["/dev/ptmx", "/dev/pts"] }
        return guest(system: system.rules, readWrite: c.writableFiles, readOnly: c.readOnlyFiles, devices: devices)
    }
}
