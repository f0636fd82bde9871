import ArgumentParser
import SELinux

extension SecurityContext: ExpressibleByArgument {
    public init?(argument: String) {
        guard let c = try? SecurityContext(parsing: argument) else { return nil }
        self = c
    }
}

extension SecurityLevel: ExpressibleByArgument {
    public init?(argument: String) {
        guard let l = try? SecurityLevel(parsing: argument) else { return nil }
        self = l
    }
}

extension SecurityRange: ExpressibleByArgument {
    public init?(argument: String) {
        guard let r = try? SecurityRange(parsing: argument) else { return nil }
        self = r
    }
}

/// Parses an argument with the value type's own error, so a bad value is a usage error that says why.
func parseArgument<T>(_ text: String, _ parse: (String) throws -> T) throws -> T {
    do {
        return try parse(text)
    } catch let e as SELinuxError {
        throw ValidationError(e.message)
    }
}
