import Foundation
import Glibc
import SVirt

/// The console's bearer token: 32 random bytes as 64 hex digits, kept in a file of mode 0600.
public enum ConsoleToken {
    /// The default place: `console.token` in the state directory.
    public static func defaultPath(stateDirectory: String) -> String { "\(stateDirectory)/console.token" }

    /// 32 bytes from the system's secure generator (getrandom), as hex.
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    /// Reads the token at `path`, or makes one there (mode 0600, never overwriting a file another process made
    /// first). A token file that others can read, that is not a regular file, or whose token is too short is
    /// refused with the fix.
    public static func loadOrCreate(path: String) throws -> (token: String, created: Bool) {
        for _ in 0..<2 {
            if let token = try read(path) { return (token, false) }
            let token = generate()
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw SVirtError(.configuration, "cannot create the console token file \(path): \(String(cString: strerror(errno))); "
                                 + "create its directory, or give another path with --token-file")
            }
            defer { close(fd) }
            _ = fchmod(fd, 0o600)
            let bytes = Array((token + "\n").utf8)
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else {
                unlink(path)
                throw SVirtError(.configuration, "cannot write the console token file \(path): \(String(cString: strerror(errno)))")
            }
            return (token, true)
        }
        throw SVirtError(.configuration, "the console token file \(path) keeps changing; remove it and start again")
    }

    /// The token in `path`, nil when the file does not exist.
    static func read(_ path: String) throws -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw SVirtError(.configuration, "cannot read the console token file \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SVirtError(.configuration, "the console token file \(path) is not a regular file; remove it (a new token is made) or give --token-file")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw SVirtError(.configuration, "the console token file \(path) has mode \(String(st.st_mode & 0o777, radix: 8)): others could read the token; "
                             + "run 'chmod 600 \(path)', or remove it so that a new token is made")
        }
        guard st.st_uid == geteuid() else {
            throw SVirtError(.configuration, "the console token file \(path) belongs to uid \(st.st_uid), not to this user (uid \(geteuid())); remove it or give --token-file")
        }
        guard st.st_size <= 4096, let data = FileManager.default.contents(atPath: path) else {
            throw SVirtError(.configuration, "the console token file \(path) is unreadable or larger than 4096 bytes")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 32, token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw SVirtError(.configuration, "the console token in \(path) is shorter than 32 characters or holds spaces; "
                             + "remove the file so that a new token is made")
        }
        return token
    }

    /// Compares in time that depends only on the lengths, so a caller cannot guess a token byte by byte.
    public static func matches(_ given: some StringProtocol, _ expected: String) -> Bool {
        let a = Array(given.utf8), b = Array(expected.utf8)
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<b.count { diff |= (i < a.count ? a[i] : 0) ^ b[i] }
        return diff == 0
    }
}
