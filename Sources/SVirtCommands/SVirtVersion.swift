import Foundation

/// svirt's version. The number is kept here and nowhere else: `scripts/package-deb` reads it back from
/// `svirt --version`. The git commit is not compiled in (a build would then depend on the commit); the package
/// script writes it to `<prefix>/share/svirt/commit`, beside the `bin` directory the executable runs from, and a
/// build without that file (a development build) says the commit is unknown.
public enum SVirtVersion {
    public static let number = "0.1.0"

    /// The file that names the commit, relative to the directory that holds the executable.
    static let commitFile = "../share/svirt/commit"

    /// The commit the running executable was packaged from, or nil.
    public static func commit(executable: String = "/proc/self/exe") -> String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: executable) else { return nil }
        let dir = (exe as NSString).deletingLastPathComponent
        let path = ((dir as NSString).appendingPathComponent(commitFile) as NSString).standardizingPath
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return nil
        }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !commit.isEmpty, commit.count <= 64, commit.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0 == "-" || $0.isLetter) }) else {
            return nil
        }
        return commit
    }

    /// What `svirt --version` prints: `0.1.0 (commit 1a2b3c4d5e6f)` or `0.1.0 (commit unknown: a development build)`.
    public static var description: String {
        "\(number) (commit \(commit() ?? "unknown: a development build"))"
    }
}
