import Foundation
import SELinux
import SELinuxPolicy
import SVirt

extension HostSELinuxConfiguration {
    /// The host's binary policy (`policyPath`), read and checked; svirt's built-in sVirt policy when the host has
    /// none. Throws a `PolicyFormatError` naming the file for a damaged policy.
    public func loadPolicy() throws -> PolicyDatabase {
        guard let path = policyPath else { return try BuiltInPolicy.load() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SELinuxError(code: .fileUnreadable, message: "cannot read SELinux policy \(path): check its permissions",
                               input: path)
        }
        return try data.withUnsafeBytes { try PolicyDatabase(bytes: $0, source: path) }
    }

    /// An `AccessChecker` over `loadPolicy()`, for the driver's static-label preflight.
    public func accessChecker() throws -> PolicyAccessChecker { PolicyAccessChecker(policy: try loadPolicy()) }
}
