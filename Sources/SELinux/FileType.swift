/// The kind of a file, as a file_contexts line restricts it (`--` `-d` `-l` `-p` `-s` `-c` `-b`) and as `lstat`
/// reports it (the `S_IFMT` bits of `st_mode`).
public enum FileType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case regular = 1
    case directory
    case symbolicLink
    case namedPipe
    case socket
    case characterDevice
    case blockDevice

    /// Reads a file_contexts file type field: `--` `-d` `-l` `-p` `-s` `-c` `-b`.
    public init?(field: some Collection<UInt8>) {
        guard field.count == 2, field.first == UInt8(ascii: "-"),
              let t = Self(letter: field[field.index(after: field.startIndex)]) else { return nil }
        self = t
    }

    /// Reads a file_contexts file type field from a buffer.
    init?(field: UnsafeBufferPointer<UInt8>) {
        guard field.count == 2, field[0] == UInt8(ascii: "-"), let t = Self(letter: field[1]) else { return nil }
        self = t
    }

    /// The type a field's second character names (`-` regular, `d`, `l`, `p`, `s`, `c`, `b`).
    private init?(letter: UInt8) {
        switch letter {
        case UInt8(ascii: "-"): self = .regular
        case UInt8(ascii: "d"): self = .directory
        case UInt8(ascii: "l"): self = .symbolicLink
        case UInt8(ascii: "p"): self = .namedPipe
        case UInt8(ascii: "s"): self = .socket
        case UInt8(ascii: "c"): self = .characterDevice
        case UInt8(ascii: "b"): self = .blockDevice
        default: return nil
        }
    }

    /// Reads a file type field given as text.
    public init?(field: String) { self.init(field: Array(field.utf8)) }

    /// The type in an `st_mode` value, or nil when its `S_IFMT` bits name no file type (0 included).
    public init?(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symbolicLink
        case 0o010000: self = .namedPipe
        case 0o140000: self = .socket
        case 0o020000: self = .characterDevice
        case 0o060000: self = .blockDevice
        default: return nil
        }
    }

    /// The file_contexts field: `--` for a regular file, `-d` for a directory, and so on.
    public var field: String {
        switch self {
        case .regular: return "--"
        case .directory: return "-d"
        case .symbolicLink: return "-l"
        case .namedPipe: return "-p"
        case .socket: return "-s"
        case .characterDevice: return "-c"
        case .blockDevice: return "-b"
        }
    }

    /// The `S_IFMT` bits of this type.
    public var modeBits: UInt32 {
        switch self {
        case .regular: return 0o100000
        case .directory: return 0o040000
        case .symbolicLink: return 0o120000
        case .namedPipe: return 0o010000
        case .socket: return 0o140000
        case .characterDevice: return 0o020000
        case .blockDevice: return 0o060000
        }
    }

    public var description: String { field }

    /// The fields a file_contexts line may use, for messages.
    public static let fieldList = "-- -d -l -p -s -c -b"
}
