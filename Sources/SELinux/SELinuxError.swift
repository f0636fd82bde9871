/// The one error type of the `SELinux` module: a malformed context, level, range or configuration file.
///
/// The `message` says what is wrong and, where there is one, the fix. `input` is the text that was being read
/// and `position` the zero-based offset in it where the problem starts.
public struct SELinuxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. New codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case invalidContext, invalidLevel, invalidRange, invalidCategory, invalidSensitivity
            case invalidConfiguration, fileUnreadable
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A security context does not have the form `user:role:type[:range]`.
        public static let invalidContext = Code(.invalidContext)
        /// A level is not `sensitivity[:categories]`.
        public static let invalidLevel = Code(.invalidLevel)
        /// A range is not `low[-high]`, or its high level does not dominate its low level.
        public static let invalidRange = Code(.invalidRange)
        /// A category is malformed or outside the categories the policy defines.
        public static let invalidCategory = Code(.invalidCategory)
        /// A sensitivity is malformed or outside the sensitivities the policy defines.
        public static let invalidSensitivity = Code(.invalidSensitivity)
        /// A host configuration file (`/etc/selinux/config`, a contexts file) has a bad line.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A file could not be read.
        public static let fileUnreadable = Code(.fileUnreadable)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What failed and how to fix it.
    public var message: String
    /// The text being parsed (a context, a level, or a file path for file errors).
    public var input: String
    /// Zero-based offset into `input` where the problem starts, if it has one.
    public var position: Int?

    public init(code: Code, message: String, input: String, position: Int? = nil) {
        self.code = code
        self.message = message
        self.input = input
        self.position = position
    }

    public var description: String { message }
}
