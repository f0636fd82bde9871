import SELinux

/// The policy's file_contexts as the driver's source of default labels on restore.
extension FileContexts: DefaultLabelSource {
    public func defaultLabel(for path: String, kind: FileKind) throws -> SecurityContext? {
        context(for: path, fileType: FileType(kind))
    }
}

extension FileType {
    /// The file_contexts file type of a `FileKind`; nil (any type) for `unknown`.
    public init?(_ kind: FileKind) {
        switch kind {
        case .regular: self = .regular
        case .directory: self = .directory
        case .blockDevice: self = .blockDevice
        case .characterDevice: self = .characterDevice
        case .fifo: self = .namedPipe
        case .socket: self = .socket
        case .symlink: self = .symbolicLink
        case .unknown: return nil
        }
    }
}
