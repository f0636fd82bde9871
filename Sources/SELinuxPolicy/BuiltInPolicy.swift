/// svirt's built-in sVirt policy, compiled from `policy/builtin/svirt.conf` and embedded in the library, for
/// hosts without a SELinux policy of their own. See `scripts/generate-builtin-policy.sh`.
public enum BuiltInPolicy {
    /// The compiled policy (version 33, MCS).
    public static var bytes: [UInt8] { decodeBase64(base64) }

    /// The built-in policy, read and checked.
    public static func load() throws -> PolicyDatabase { try parsed.get() }

    /// Read once per process: a long-running console decides with it for every request.
    private static let parsed: Result<PolicyDatabase, any Error> = Result(catching: {
        try PolicyDatabase(bytes: bytes, source: "svirt built-in policy")
    })

    /// Where the policy source lives in the repository.
    public static let sourcePath = "policy/builtin/svirt.conf"

    /// Decodes base64 text, skipping whitespace (the embedded text is wrapped).
    static func decodeBase64(_ text: String) -> [UInt8] {
        var table = [UInt8](repeating: 255, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v = table[Int(c)]
            if v == 255 { continue }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}
