import SELinux

/// The one error type of the `SVirtXen` module: an xl.cfg file that cannot be read, a label or device that does not fit
/// the Xen policy, or a policy that is not a Xen policy.
///
/// `message` says what is wrong and how to fix it. For xl.cfg files, `file` and `line` name the place, and the
/// description starts with them the way xl reports its own parse errors (`guest.cfg:4: ...`).
public struct XenError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case syntax, value, policy, label, device, allocation
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The xl.cfg text does not parse.
        public static let syntax = Code(.syntax)
        /// A setting parses but its value is not what xl expects (a list for a string, a bad PCI address).
        public static let value = Code(.value)
        /// The policy is not a Xen policy, or lacks what a check needs.
        public static let policy = Code(.policy)
        /// A security label is not a context, or not valid in the policy.
        public static let label = Code(.label)
        /// A device (PCI address, IRQ, I/O range, device tree path) cannot be read.
        public static let device = Code(.device)
        /// Labels could not be handed out (no pool, pool exhausted).
        public static let allocation = Code(.allocation)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// The xl.cfg file, when the error is in one.
    public var file: String?
    /// The 1-based line in `file`.
    public var line: Int?
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil,
                cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.cause = cause
    }

    public var description: String {
        switch (file, line) {
        case (let f?, let l?): return "\(f):\(l): \(message)"
        case (let f?, nil): return "\(f): \(message)"
        case (nil, let l?): return "line \(l): \(message)"
        default: return message
        }
    }
}
