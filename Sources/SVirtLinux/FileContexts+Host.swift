import Foundation
import Glibc
import SELinux

extension FileContexts {
    /// Reads a file's bytes, nil when it does not exist. The file_contexts loader calls it for the main file and
    /// each companion.
    public static func readHostFile(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw SELinuxError(code: .fileUnreadable,
                               message: "cannot read \(path): \(String(cString: strerror(e))); check that it is a "
                                   + "readable file", input: path, file: path)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw SELinuxError(code: .fileUnreadable,
                                   message: "cannot read \(path): \(String(cString: strerror(e)))", input: path, file: path)
            }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Loads `path` with its companions (`.homedirs`, `.local`, `.subs_dist`, `.subs`) from the file system.
    public static func load(path: String, ignoreErrors: Bool = false) throws -> FileContexts {
        try load(path: path, ignoreErrors: ignoreErrors, readFile: readHostFile)
    }

    /// Loads the file_contexts of the policy that `/etc/selinux/config` (under `root`) names.
    public static func loadHost(root: String = HostSELinuxConfiguration.defaultRoot,
                                ignoreErrors: Bool = false) throws -> FileContexts {
        let host = try HostSELinuxConfiguration.load(root: root)
        guard let path = host.fileContextsPath else {
            let type = host.policyType ?? "(none)"
            throw SELinuxError(code: .fileUnreadable,
                               message: "the host has no file_contexts: \(root)/config names policy type '\(type)' "
                                   + "and \(root)/\(type)/contexts/files/file_contexts does not exist; install the "
                                   + "policy or give a file with --file", input: root)
        }
        return try load(path: path, ignoreErrors: ignoreErrors)
    }
}

extension HostSELinuxConfiguration {
    /// The policy's file_contexts with its companions, or nil when the tree has none.
    public func loadFileContexts(ignoreErrors: Bool = false) throws -> FileContexts? {
        guard let path = fileContextsPath else { return nil }
        return try FileContexts.load(path: path, ignoreErrors: ignoreErrors)
    }
}
