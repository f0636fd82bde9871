import SVirt

extension DomainLifecycle {
    /// A domain as `svirt list --json` and the console's API show it.
    public struct Summary: Sendable, Codable, Hashable {
        public var id: Int?
        public var name: String
        public var uuid: String
        public var state: String
        public var persistent: Bool
        public var pid: Int32?
        /// The process label (the kernel's where SELinux runs, else the one svirt started it with).
        public var label: String?
        /// `kernel` or `svirt`.
        public var labelSource: String?
        public var imageLabel: String?
        public var level: String?
        /// `selinux`, `landlock`, `unconfined`, ...
        public var confinement: String?
    }
}

extension DomainLifecycle.Status {
    public var summary: DomainLifecycle.Summary {
        DomainLifecycle.Summary(id: id, name: name, uuid: uuid, state: state, persistent: persistent,
                                pid: running?.process?.pid, label: processLabel ?? running?.label,
                                labelSource: processLabelSource, imageLabel: running?.imageLabel, level: running?.level,
                                confinement: running?.details.confinement)
    }
}
