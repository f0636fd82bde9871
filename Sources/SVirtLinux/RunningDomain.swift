import SVirt

/// A domain that runs, or is being started or stopped, as the registry's `running` table keeps it: everything a
/// later `svirt` process needs to find its QEMU, talk to its monitor, and give back its labels and owners.
public struct RunningDomain: Sendable, Hashable {
    /// Where a running row is in its life.
    public enum State: String, Sendable, Hashable, Codable {
        /// An `svirt start` (the holder) has claimed the name and is labelling or launching.
        case starting
        case running
        /// An `svirt destroy`/`shutdown` or a reconciliation (the holder) is stopping it and giving labels back.
        case stopping
    }

    /// What a later svirt process needs besides the columns.
    public struct Details: Sendable, Hashable, Codable {
        public var qmpSocket: String?
        public var logFile: String?
        public var emulator: String?
        /// Started with `start --xml`: the domain disappears when it stops.
        public var transient: Bool
        /// How the guest was confined: `selinux`, `selinux-permissive`, `landlock`, or `unconfined`.
        public var confinement: String?
        /// Why the guest runs unconfined, when it does.
        public var unconfinedReason: String?
        /// The user and group QEMU runs as (root only), and whether svirt changed the owners of its resources.
        public var user: GuestUser?
        public var ownersChanged: Bool
        /// The private runtime paths that were labelled with the VM (its runtime directory).
        public var privatePaths: [String]
        /// The svirt stand-in guest runs instead of QEMU.
        public var standIn: Bool
        /// Things the user was told at start (policy fallbacks, warnings), shown by `dominfo`.
        public var notes: [String]
        /// The path rules of its Landlock ruleset (Landlock confinement only), to explain what Landlock refused.
        public var landlockRules: [LandlockRuleRecord]?
        /// The files the start held (identity and file handle), so that stop gives back the same inodes.
        public var heldFiles: [HeldFileRecord]?

        public init(qmpSocket: String? = nil, logFile: String? = nil, emulator: String? = nil, transient: Bool = false,
                    confinement: String? = nil, unconfinedReason: String? = nil, user: GuestUser? = nil,
                    ownersChanged: Bool = false, privatePaths: [String] = [], standIn: Bool = false, notes: [String] = []) {
            self.qmpSocket = qmpSocket
            self.logFile = logFile
            self.emulator = emulator
            self.transient = transient
            self.confinement = confinement
            self.unconfinedReason = unconfinedReason
            self.user = user
            self.ownersChanged = ownersChanged
            self.privatePaths = privatePaths
            self.standIn = standIn
            self.notes = notes
        }
    }

    public var name: String
    public var uuid: String
    /// The libvirt-style domain id: a small number, new at every start.
    public var id: Int
    public var state: State
    /// The guest process (QEMU), once spawned.
    public var process: ProcessIdentity?
    /// The svirt process acting on the row while it is starting or stopping.
    public var holder: ProcessIdentity?
    /// The process label (nil: none).
    public var label: String?
    public var imageLabel: String?
    /// The level the registry holds for the VM.
    public var level: String?
    public var mechanism: String?
    /// The XML the VM runs with (its live `<seclabel>`); until the start finishes, the definition.
    public var liveXML: String
    public var runtimeDirectory: String?
    /// Seconds since the epoch.
    public var startedAt: Double
    public var details: Details

    public init(name: String, uuid: String, id: Int, state: State, process: ProcessIdentity? = nil,
                holder: ProcessIdentity? = nil, label: String? = nil, imageLabel: String? = nil, level: String? = nil,
                mechanism: String? = nil, liveXML: String, runtimeDirectory: String? = nil, startedAt: Double,
                details: Details = Details()) {
        self.name = name
        self.uuid = uuid
        self.id = id
        self.state = state
        self.process = process
        self.holder = holder
        self.label = label
        self.imageLabel = imageLabel
        self.level = level
        self.mechanism = mechanism
        self.liveXML = liveXML
        self.runtimeDirectory = runtimeDirectory
        self.startedAt = startedAt
        self.details = details
    }

    /// The guest as `GuestSupervisor` needs it, once its process is known.
    public var guest: GuestProcess? {
        guard let p = process else { return nil }
        let dir = runtimeDirectory.map(RuntimeDirectory.init(path:))
        guard let qmp = details.qmpSocket ?? dir?.qmpSocket, let log = details.logFile ?? dir?.logFile else { return nil }
        return GuestProcess(identity: p, qmpSocket: qmp, logFile: log)
    }
}
