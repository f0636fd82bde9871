import Foundation
import Glibc
import SVirt

extension QEMUEmulator {
    /// The directories whose `qemu-system-*` binaries (and `qemu-kvm`) svirt runs without being told.
    public static let systemDirectories = ["/usr/bin", "/usr/local/bin", "/usr/libexec", "/usr/sbin", "/bin", "/sbin"]

    /// Why `path` may not be run as a domain's emulator, or nil when it may. svirt runs the emulator (as the guest
    /// user, never as root), so a user who can define a domain must not be able to name any program:
    /// - by default only `qemu-system-*` (or `qemu-kvm`) in `systemDirectories`; `svirt.conf`'s `emulators =`
    ///   adds exact paths;
    /// - the file and every directory above it must be owned by root and writable by no one else, so nobody but
    ///   root can replace it.
    public static func refusal(_ path: String, allowed: [String] = []) -> String? {
        if case .failure(let why) = vet(path, allowed: allowed) { return why.description }
        return nil
    }

    /// The canonical path of an allowed emulator (resolved once, and the one svirt runs, so a symlink swapped after
    /// the check cannot name another program), or the reason it is refused.
    static func vet(_ path: String, allowed: [String]) -> Result<String, Refusal> {
        guard let resolved = realpath(path, nil) else {
            return .failure(Refusal("the emulator '\(path)' does not exist (\(String(cString: strerror(errno)))); fix <emulator> or install QEMU"))
        }
        let real = String(cString: resolved)
        free(resolved)
        let name = (real as NSString).lastPathComponent
        let dir = (real as NSString).deletingLastPathComponent
        let listed = allowed.contains(path) || allowed.contains(real) || allowed.contains { a in
            guard let r = realpath(a, nil) else { return false }
            defer { free(r) }
            return String(cString: r) == real
        }
        let systemBinary = systemDirectories.contains(dir) && (name.hasPrefix("qemu-system-") || name == "qemu-kvm")
        if !listed && !systemBinary {
            return .failure(Refusal("the emulator '\(path)'\(real == path ? "" : " (\(real))") is not a qemu-system-* binary in "
                + systemDirectories.joined(separator: ", ") + ", and svirt.conf's 'emulators =' does not list it; "
                + "use the system's QEMU, or have root add the path to 'emulators =' in svirt.conf"))
        }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return .failure(Refusal("the emulator '\(real)' is not a regular file"))
        }
        if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
            return .failure(Refusal("the emulator '\(real)' is owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o7777, radix: 8)), "
                + "so someone other than root could replace what svirt runs; it must be root's and writable only by root"))
        }
        var d = dir
        while true {
            var ds = stat()
            guard stat(d, &ds) == 0 else {
                return .failure(Refusal("cannot check the directory \(d) of the emulator: \(String(cString: strerror(errno)))"))
            }
            let writableByOthers = ds.st_mode & 0o022 != 0 && ds.st_mode & S_ISVTX == 0
            if ds.st_uid != 0 || writableByOthers {
                return .failure(Refusal("the emulator's directory \(d) is owned by uid \(ds.st_uid) with mode \(String(ds.st_mode & 0o7777, radix: 8)), "
                    + "so someone other than root could replace '\(real)'; keep emulators in root-only directories"))
            }
            if d == "/" { break }
            d = (d as NSString).deletingLastPathComponent
        }
        return .success(real)
    }

    /// A reason `vet` refuses an emulator.
    struct Refusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The canonical path to run, or throws the refusal of `refusal(_:allowed:)`.
    @discardableResult
    public static func checkAllowed(_ path: String, allowed: [String] = []) throws -> String {
        switch vet(path, allowed: allowed) {
        case .success(let real): return real
        case .failure(let why): throw SVirtError(.launch, why.description)
        }
    }

    /// How svirt asks an emulator what it supports: never as root. When svirt runs as root, the probe runs as
    /// the guest user with no_new_privs and, where Landlock works, a ruleset that lets it read and execute but
    /// write nothing; when no unprivileged user exists, it refuses.
    static func probeSandbox(_ d: inout LaunchDescription, user: GuestUser?) throws {
        guard getuid() == 0 else { return }
        let guest: GuestUser
        if let user, !user.isRoot {
            guest = user
        } else if let found = try? GuestUser.resolve(user: nil, group: nil), !found.isRoot {
            guest = found
        } else {
            throw SVirtError(.launch, "svirt asks QEMU what it supports as an unprivileged user, and found none (\(GuestUser.defaultUsers.joined(separator: ", "))); "
                             + "set user = in svirt.conf")
        }
        d.credentials = guest.credentials
        if HostProbe().landlock().abi != nil {
            // Landlock ABI 1's rights (every write and make is denied), which any kernel with Landlock enforces.
            var r = Landlock.Ruleset(requiredFilesystem: Landlock.FilesystemAccess(rawValue: (1 << 13) - 1),
                                     network: .unrestricted, scopes: [])
            r.allow(.readExecute, beneath: "/", reason: "the emulator probe reads and executes, and writes nothing")
            d.landlock = r
        }
    }
}
