/// A `<tpm>` device.
public struct TPMDevice: Sendable, Hashable {
    public enum Backend: Sendable, Hashable {
        /// The host's TPM character device, e.g. `/dev/tpm0`.
        case passthrough(path: String)
        /// A swtpm emulator; its socket and state are runtime paths the lifecycle code chooses.
        case emulator(version: String?)
    }

    public var model: String?
    public var backend: Backend

    public init(model: String?, backend: Backend) {
        self.model = model
        self.backend = backend
    }
}
