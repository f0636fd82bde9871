import SELinux

/// The one error type of the `SELinuxPolicy` module: a binary policy that cannot be read.
///
/// It names the byte offset, the section being read, and what was expected against what was found.
public struct PolicyFormatError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var section: String
    public var expected: String
    public var found: String
    /// The file the bytes came from, when known.
    public var source: String?

    public init(offset: Int, section: String, expected: String, found: String, source: String? = nil) {
        self.offset = offset
        self.section = section
        self.expected = expected
        self.found = found
        self.source = source
    }

    public var description: String {
        "cannot read SELinux policy\(source.map { " '\($0)'" } ?? ""): \(section) at byte \(offset): "
            + "expected \(expected), found \(found)"
    }
}
