/// A `<disk>` of a domain.
public struct Disk: Sendable, Hashable {
    /// Where the data lives (`<disk type=...>`).
    public enum SourceType: String, Sendable, Hashable, CaseIterable {
        case file, block, dir, network
    }

    /// What the guest sees (`<disk device=...>`).
    public enum Device: String, Sendable, Hashable, CaseIterable {
        case disk, cdrom, floppy, lun
    }

    /// The image format (`<driver type=...>`). Only these two are read: raw has no header, and a qcow2 header
    /// names its backing file.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case raw, qcow2
    }

    /// A network source (`<source protocol=... name=...><host .../></source>`). It is never labelled.
    public struct NetworkSource: Sendable, Hashable {
        public var protocolName: String
        public var name: String?
        public var hosts: [String]

        public init(protocolName: String, name: String?, hosts: [String]) {
            self.protocolName = protocolName
            self.name = name
            self.hosts = hosts
        }

        /// A URL-like name for listings: `nbd://host:10809/export`.
        public var displayName: String {
            "\(protocolName)://\(hosts.first ?? "")/\(name ?? "")"
        }
    }

    /// One element of a backing chain.
    public struct BackingImage: Sendable, Hashable {
        public var type: SourceType
        public var format: Format
        /// The local path, nil for a network element.
        public var path: String?
        public var network: NetworkSource?

        public init(type: SourceType, format: Format, path: String?, network: NetworkSource? = nil) {
            self.type = type
            self.format = format
            self.path = path
            self.network = network
        }
    }

    /// What the XML says about the backing chain.
    public enum BackingStore: Sendable, Hashable {
        /// No `<backingStore>`: the chain is read from the image headers.
        case unspecified
        /// `<backingStore/>`: the image has no backing file.
        case none
        /// The chain, nearest first, as the XML gives it.
        case chain([BackingImage])
    }

    public var type: SourceType
    public var device: Device
    public var format: Format
    /// The local path (file, block device or directory); nil for an empty drive or a network disk.
    public var path: String?
    public var network: NetworkSource?
    public var backingStore: BackingStore
    /// `<target dev=...>`, e.g. `vda`.
    public var target: String?
    public var bus: String?
    public var readOnly: Bool
    public var shareable: Bool
    /// `<seclabel>` elements inside `<source>`.
    public var seclabels: [DeviceSeclabel]

    public init(type: SourceType = .file, device: Device = .disk, format: Format = .raw, path: String? = nil,
                network: NetworkSource? = nil, backingStore: BackingStore = .unspecified, target: String? = nil,
                bus: String? = nil, readOnly: Bool = false, shareable: Bool = false, seclabels: [DeviceSeclabel] = []) {
        self.type = type
        self.device = device
        self.format = format
        self.path = path
        self.network = network
        self.backingStore = backingStore
        self.target = target
        self.bus = bus
        self.readOnly = readOnly
        self.shareable = shareable
        self.seclabels = seclabels
    }

    /// How messages name the disk: `disk 'vda'`, or by position.
    public func displayName(index: Int) -> String {
        target.map { "disk '\($0)'" } ?? "disk #\(index + 1)"
    }
}
