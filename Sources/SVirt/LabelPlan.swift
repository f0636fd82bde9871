import SELinux

/// Every resource a VM uses, with the label it gets, whether its original label is remembered, and how it is
/// given back: the table of section 8 of the reference, for one VM.
public struct LabelPlan: Sendable, Hashable {
    /// What kind of resource an entry is.
    public enum Kind: String, Sendable, Hashable, Codable {
        case disk, backingImage = "backing-image", nvram, kernel, initrd, dtb, loader
        case characterDevice = "chardev", hostDevice = "hostdev", tpm, input, filesystem, runtime
    }

    /// How the label is given back when the VM stops.
    public enum RestoreRule: String, Sendable, Hashable, Codable {
        /// The remembered original when the last user stops; the file_contexts default when nothing was
        /// remembered.
        case recall
        /// The file_contexts default; nothing is remembered (VFIO group nodes and TPM devices, which several
        /// users share).
        case defaultLabel = "default"
        /// Left as it is: shared, read-only and backing images, which other VMs may still use.
        case leave
    }

    /// What the VM does with the resource.
    public enum Access: String, Sendable, Hashable, Codable {
        case read, readWrite = "read-write"
    }

    public struct Entry: Sendable, Hashable {
        public var kind: Kind
        /// Which resource, for people: `disk 'vda'`, `serial #0`, `hostdev usb 2:7`.
        public var resource: String
        /// The path (or, for a network disk, its URL).
        public var path: String
        /// The label to set; nil when svirt leaves the path alone.
        public var context: SecurityContext?
        /// Whether the original label is remembered before the new one is set.
        public var remember: Bool
        public var restore: RestoreRule
        public var access: Access
        /// True for device nodes the XML hands to the guest on purpose (hostdev, TPM, input devices); other
        /// device nodes are refused unless forced.
        public var isDeviceGrant: Bool
        /// Why the path is left alone, or anything else worth saying.
        public var note: String?

        public init(kind: Kind, resource: String, path: String, context: SecurityContext?, remember: Bool,
                    restore: RestoreRule, access: Access, isDeviceGrant: Bool = false, note: String? = nil) {
            self.kind = kind
            self.resource = resource
            self.path = path
            self.context = context
            self.remember = remember
            self.restore = restore
            self.access = access
            self.isDeviceGrant = isDeviceGrant
            self.note = note
        }

        /// True when svirt sets a label on this path.
        public var relabels: Bool { context != nil }

        /// The line `path;context` (empty context: left alone).
        public var line: String { "\(path);\(context?.description ?? "")" }
    }

    /// The domain's name (the holder recorded on remembered labels).
    public var domain: String
    public var label: SecurityLabel
    public var entries: [Entry]
    /// Things the user should know (a directory disk that is not relabelled, a missing image on restore).
    public var warnings: [String]

    public init(domain: String, label: SecurityLabel, entries: [Entry], warnings: [String] = []) {
        self.domain = domain
        self.label = label
        self.entries = entries
        self.warnings = warnings
    }

    /// One `path;context` line per entry, in plan order.
    public var lines: [String] { entries.map(\.line) }

    /// The entries svirt relabels.
    public var relabelled: [Entry] { entries.filter(\.relabels) }
}
