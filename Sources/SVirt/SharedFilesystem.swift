/// A `<filesystem>` shared with the guest (virtiofs).
public struct SharedFilesystem: Sendable, Hashable {
    /// `<driver type=...>`, e.g. `virtiofs`.
    public var driver: String?
    public var sourceDirectory: String?
    /// The mount tag the guest sees.
    public var target: String?
    public var readOnly: Bool

    public init(driver: String?, sourceDirectory: String?, target: String?, readOnly: Bool) {
        self.driver = driver
        self.sourceDirectory = sourceDirectory
        self.target = target
        self.readOnly = readOnly
    }
}
