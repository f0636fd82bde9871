import SELinux

/// The default label of a path, as the policy's file_contexts gives it: what restore uses when no original was
/// remembered. The file_contexts engine implements this; `FallbackDefaultLabels` stands in until it does.
public protocol DefaultLabelSource: Sendable {
    /// The default context for `path` of kind `kind`, or nil when file_contexts gives none (`<<none>>` or no
    /// match); nil leaves the file as it is.
    func defaultLabel(for path: String, kind: FileKind) throws -> SecurityContext?
}

/// A `DefaultLabelSource` that gives one context for every path: `ContextsConfiguration.restoreFallback`
/// (`virt_image_t:s0`), which no VM's label may use, so a path restored to it is closed to every VM.
public struct FallbackDefaultLabels: DefaultLabelSource {
    public var context: SecurityContext

    public init(_ context: SecurityContext) { self.context = context }

    public func defaultLabel(for path: String, kind: FileKind) throws -> SecurityContext? { context }
}
