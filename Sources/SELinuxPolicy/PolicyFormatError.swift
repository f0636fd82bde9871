import SELinux

/// The one error type of the `SELinuxPolicy` module: a binary policy that cannot be read, or a name or
/// context that does not fit the loaded policy.
///
/// A format error names the byte offset, the section being read, and what was expected against what was found.
public struct PolicyFormatError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem this is. New codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case truncated, badMagic, unsupportedVersion, outOfRange, malformed, tooLarge, unknownName
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The bytes end before the section does.
        public static let truncated = Code(.truncated)
        /// The file does not start with the SELinux policy magic and target string.
        public static let badMagic = Code(.badMagic)
        /// The version or the target is one svirt does not read.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// A decoded number (an index, a count, a bit) lies outside what the policy defines.
        public static let outOfRange = Code(.outOfRange)
        /// A record is inconsistent (duplicate, bad expression, wrong flags).
        public static let malformed = Code(.malformed)
        /// A count or length is larger than the remaining bytes could hold.
        public static let tooLarge = Code(.tooLarge)
        /// A name (class, permission, type...) does not exist in the policy.
        public static let unknownName = Code(.unknownName)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var offset: Int
    public var section: String
    public var expected: String
    public var found: String
    /// The file the bytes came from, when known.
    public var source: String?

    public init(code: Code = .malformed, offset: Int, section: String, expected: String, found: String,
                source: String? = nil) {
        self.code = code
        self.offset = offset
        self.section = section
        self.expected = expected
        self.found = found
        self.source = source
    }

    /// A copy that names the file the bytes came from.
    public func from(source: String) -> PolicyFormatError {
        var e = self
        e.source = source
        return e
    }

    public var description: String {
        if code == .unknownName {
            return "\(section): expected \(expected), found \(found)"
        }
        return "cannot read SELinux policy\(source.map { " '\($0)'" } ?? ""): \(section) at byte \(offset): "
            + "expected \(expected), found \(found); the file is damaged or not a binary policy "
            + "(compile one with checkpolicy or secilc)"
    }
}
