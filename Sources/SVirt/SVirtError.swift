import SELinux

/// The one error type of the `SVirt` module.
///
/// `message` says what failed and what fixes it; `cause` holds an underlying error where there is one.
public struct SVirtError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case exhausted, levelConflict, invalidPool, invalidLevel, notReserved, registry, configuration
            case invalidDomain, labeling, preflight, confinement, launch, notFound, alreadyExists, state
            case unsupported, policy, registryUnavailable, filesystemFull, readOnlyFilesystem
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// No free category pair is left in the pool.
        public static let exhausted = Code(.exhausted)
        /// A level equals, dominates or is dominated by a level that is already reserved.
        public static let levelConflict = Code(.levelConflict)
        /// The category pool is unusable (too small, malformed).
        public static let invalidPool = Code(.invalidPool)
        /// A level cannot be reserved (no categories, outside the pool's sensitivity, ...).
        public static let invalidLevel = Code(.invalidLevel)
        /// A level to release is not reserved.
        public static let notReserved = Code(.notReserved)
        /// The registry store failed.
        public static let registry = Code(.registry)
        /// A shared registry (etcd) cannot be reached or has no quorum. Nothing was reserved: svirt refuses rather
        /// than fall back to a local registry.
        public static let registryUnavailable = Code(.registryUnavailable)
        /// A configuration value is wrong.
        public static let configuration = Code(.configuration)
        /// A domain definition is wrong.
        public static let invalidDomain = Code(.invalidDomain)
        /// Setting or restoring a file label failed.
        public static let labeling = Code(.labeling)
        /// A VM would not be able to use its own resources.
        public static let preflight = Code(.preflight)
        /// Confinement could not be set up; nothing was started.
        public static let confinement = Code(.confinement)
        /// Starting the emulator failed.
        public static let launch = Code(.launch)
        /// A named thing does not exist.
        public static let notFound = Code(.notFound)
        /// A named thing exists already.
        public static let alreadyExists = Code(.alreadyExists)
        /// The operation does not fit the current state (a running VM, a stopped VM).
        public static let state = Code(.state)
        /// The host lacks a feature.
        public static let unsupported = Code(.unsupported)
        /// The policy denies what is needed.
        public static let policy = Code(.policy)
        /// A filesystem svirt writes to (its state directory, an image's extended attributes) has no room left.
        /// Nothing is damaged; freeing space and running the command again is the fix.
        public static let filesystemFull = Code(.filesystemFull)
        /// A filesystem svirt writes to is mounted read-only.
        public static let readOnlyFilesystem = Code(.readOnlyFilesystem)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
