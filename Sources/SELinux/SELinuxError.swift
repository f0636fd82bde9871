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
            case invalidFileContexts, invalidRegularExpression, invalidFileType
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
        /// A file_contexts line (or a line of a companion file) is malformed: a missing or extra field,
        /// a non-ASCII byte, an alias line without a target.
        public static let invalidFileContexts = Code(.invalidFileContexts)
        /// A file_contexts regular expression does not compile: an unbalanced bracket or parenthesis, a
        /// quantifier with nothing to repeat, or a construct outside the file_contexts dialect.
        public static let invalidRegularExpression = Code(.invalidRegularExpression)
        /// A file_contexts file type is not one of `--` `-d` `-l` `-p` `-s` `-c` `-b`.
        public static let invalidFileType = Code(.invalidFileType)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What failed and how to fix it.
    public var message: String
    /// The text being parsed (a context, a level, or a file path for file errors).
    public var input: String
    /// Zero-based offset into `input` where the problem starts, if it has one.
    public var position: Int?
    /// The file the input came from, for errors in files (file_contexts and its companions).
    public var file: String?
    /// The 1-based line in `file`.
    public var line: Int?
    /// The 1-based byte column in `line`.
    public var column: Int?

    public init(code: Code, message: String, input: String, position: Int? = nil,
                file: String? = nil, line: Int? = nil, column: Int? = nil) {
        self.code = code
        self.message = message
        self.input = input
        self.position = position
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { message }
}
