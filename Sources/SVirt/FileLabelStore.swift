/// What a path is, as `lstat` says.
public enum FileKind: String, Sendable, Hashable, Codable {
    case regular, directory, blockDevice = "block-device", characterDevice = "character-device", fifo, socket
    case symlink, unknown

    /// Device nodes: relabelling one changes who on the host may use the device.
    public var isDevice: Bool { self == .blockDevice || self == .characterDevice }
}

/// Where file labels and svirt's records of original labels are read and written.
///
/// A path is first resolved to its canonical form, then opened without following any symlink, and every
/// attribute call goes through that open file, so a symlink swapped in midway cannot redirect a label.
/// `SVirtLinux.XattrFileLabelStore` works on real files; `InMemoryFileLabelStore` is for unit tests.
///
/// Errors are `SVirtError`: `.notFound` when the file does not exist, `.unsupported` when its filesystem keeps
/// no such attributes (EOPNOTSUPP, ENOTSUP, EROFS), `.labeling` for anything else. Messages name the call and
/// the path.
public protocol FileLabelStore: Sendable {
    /// The absolute path with every symlink, `.` and `..` resolved.
    func resolve(_ path: String) throws -> String

    /// Opens the file at a canonical path, refusing any symlink on the way.
    func open(_ canonicalPath: String) throws -> any LabeledFile
}

/// What identifies an opened file and what it is, as `fstat` and `fstatfs` said when it was opened: the guard's
/// facts, and the identity a restore checks so that it acts on the same file, never on whatever the path names
/// later.
public struct FileFacts: Sendable, Hashable, Codable {
    public var device: UInt64
    public var inode: UInt64
    /// Hard links (`st_nlink`).
    public var linkCount: UInt64
    /// The kernel filesystem it lives on when that is a pseudo filesystem (proc, sysfs, cgroup, securityfs,
    /// selinuxfs, debugfs, tracefs, bpf, configfs, ...), found by its `statfs` magic; nil for a real one.
    public var pseudoFilesystem: String?

    public init(device: UInt64, inode: UInt64, linkCount: UInt64, pseudoFilesystem: String? = nil) {
        self.device = device
        self.inode = inode
        self.linkCount = linkCount
        self.pseudoFilesystem = pseudoFilesystem
    }

    /// `device:inode`, as `stat -c %d:%i` prints it.
    public var identity: String { "\(device):\(inode)" }
}

/// A file opened by a `FileLabelStore`. It is closed when released.
public protocol LabeledFile: AnyObject, Sendable {
    /// The canonical path it was opened at.
    var path: String { get }
    var kind: FileKind { get }
    /// The filesystem type when known (`nfs`, `ext4`, `ramfs`), for messages.
    var filesystem: String? { get }
    /// Identity, link count and pseudo filesystem, when the store knows them.
    var facts: FileFacts? { get }

    /// The value of an extended attribute, nil when the file does not have it.
    func attribute(_ name: String) throws -> [UInt8]?
    func setAttribute(_ name: String, _ value: [UInt8]) throws
    /// Removes an attribute; one that is not there is not an error.
    func removeAttribute(_ name: String) throws
}

extension LabeledFile {
    public var facts: FileFacts? { nil }

    /// The SELinux context the file carries (`security.selinux`), nil when it has none.
    public func selinuxContext() throws -> String? {
        try attribute(SELinuxLabelAttribute.name).map(SELinuxLabelAttribute.decode)
    }

    /// Sets `security.selinux`.
    public func setSELinuxContext(_ context: String) throws {
        try setAttribute(SELinuxLabelAttribute.name, SELinuxLabelAttribute.encode(context))
    }
}

/// How a context is stored in `security.selinux`: the text and a NUL, as libselinux writes it.
public enum SELinuxLabelAttribute {
    public static let name = "security.selinux"

    public static func encode(_ context: String) -> [UInt8] { Array(context.utf8) + [0] }

    public static func decode(_ value: [UInt8]) -> String {
        String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }
}
