import Foundation
import Glibc
import SELinux
import SELinuxPolicy
import SVirt
import Synchronization

/// Policies read by this process, by the file's identity (path, device, inode, size, modification time): a
/// long-running process (the console) reads the host's policy once, and again only when the file changes.
private let loadedPolicies = Mutex<[String: PolicyDatabase]>([:])

extension HostSELinuxConfiguration {
    /// The host's binary policy (`policyPath`), read and checked; svirt's built-in sVirt policy when the host has
    /// none. Throws a `PolicyFormatError` naming the file for a damaged policy. Kept for the life of the process
    /// while the file stays the same.
    public func loadPolicy() throws -> PolicyDatabase {
        guard let path = policyPath else { return try BuiltInPolicy.load() }
        var st = stat()
        let key = stat(path, &st) == 0
            ? "\(path)|\(st.st_dev)|\(st.st_ino)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" : nil
        if let key, let hit = loadedPolicies.withLock({ $0[key] }) { return hit }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SELinuxError(code: .fileUnreadable, message: "cannot read SELinux policy \(path): check its permissions",
                               input: path)
        }
        let policy = try data.withUnsafeBytes { try PolicyDatabase(bytes: $0, source: path) }
        if let key {
            loadedPolicies.withLock { cache in
                cache = cache.filter { !$0.key.hasPrefix(path + "|") }
                cache[key] = policy
            }
        }
        return policy
    }

    /// An `AccessChecker` over `loadPolicy()`, for the driver's static-label preflight.
    public func accessChecker() throws -> PolicyAccessChecker {
        PolicyAccessChecker(policy: try loadPolicy(), source: policySource)
    }

    /// How messages name the policy `loadPolicy()` reads.
    public var policySource: String { policyPath ?? PolicyAccessChecker.builtInSource }
}
