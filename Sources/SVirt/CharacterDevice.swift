/// A `<serial>`, `<console>`, `<channel>` or `<parallel>` device.
public struct CharacterDevice: Sendable, Hashable {
    /// Which element it is.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case serial, console, channel, parallel
    }

    /// The host side (`type=...`). Only file, pipe, unix and dev have a path svirt labels.
    public enum SourceType: Sendable, Hashable {
        case file, pipe, unix, pty, dev
        /// tcp, udp, null, vc, stdio, spicevmc, ...: nothing to label.
        case other(String)

        public init(_ text: String) {
            switch text {
            case "file": self = .file
            case "pipe": self = .pipe
            case "unix": self = .unix
            case "pty": self = .pty
            case "dev": self = .dev
            default: self = .other(text)
            }
        }

        public var name: String {
            switch self {
            case .file: return "file"
            case .pipe: return "pipe"
            case .unix: return "unix"
            case .pty: return "pty"
            case .dev: return "dev"
            case .other(let s): return s
            }
        }
    }

    public var kind: Kind
    public var sourceType: SourceType
    /// `<source path=...>`.
    public var path: String?
    /// unix sockets: `bind` (QEMU listens) or `connect`.
    public var mode: String?
    /// `<target type=...>` (a console's `serial` or `virtio`).
    public var targetType: String?
    /// The position among devices of the same kind.
    public var index: Int
    /// `<seclabel>` elements inside `<source>`.
    public var seclabels: [DeviceSeclabel]

    public init(kind: Kind, sourceType: SourceType, path: String? = nil, mode: String? = nil, targetType: String? = nil,
                index: Int = 0, seclabels: [DeviceSeclabel] = []) {
        self.kind = kind
        self.sourceType = sourceType
        self.path = path
        self.mode = mode
        self.targetType = targetType
        self.index = index
        self.seclabels = seclabels
    }

    /// True for a unix socket QEMU connects to (rather than listens on).
    public var connects: Bool { mode == "connect" }

    public var displayName: String { "\(kind.rawValue) #\(index)" }
}
