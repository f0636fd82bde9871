import Foundation
import Glibc
import SVirt
import Synchronization

/// The files a program needs from the system to start: the program, its interpreter, every shared library it
/// may load (`LibraryResolver`), and the loader's configuration (`/etc/ld.so*`).
public struct ProgramPaths: Sendable, Hashable {
    public var executable: String
    public var interpreter: String?
    public var libraries: [String]
    /// Needed libraries found nowhere (the program may still run if they are never loaded).
    public var missingLibraries: [String]
    /// `/etc/ld.so.cache`, `/etc/ld.so.preload`, ... as they exist.
    public var loaderFiles: [String]

    public static func compute(for executable: String, resolver: LibraryResolver? = nil) throws -> ProgramPaths {
        let r = try resolver ?? LibraryResolver()
        let res = try r.resolve(executable)
        return ProgramPaths(executable: executable, interpreter: res.interpreter, libraries: res.libraries,
                            missingLibraries: res.missing, loaderFiles: loaderFiles())
    }

    /// The entries of /etc whose names start with `ld.so`.
    public static func loaderFiles(etc: String = "/etc") -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: etc)) ?? []
        return names.filter { $0.hasPrefix("ld.so") }.sorted().map { "\(etc)/\($0)" }
    }

    /// Landlock rules for these files.
    public var rules: [Landlock.PathRule] {
        var out = [Landlock.PathRule(path: executable, access: .readExecute, reason: "the program")]
        if let i = interpreter { out.append(.init(path: i, access: .readExecute, reason: "the program interpreter")) }
        out += libraries.map { .init(path: $0, access: .readExecute, reason: "shared library") }
        out += loaderFiles.map { .init(path: $0, access: .readOnly, reason: "dynamic loader configuration") }
        return out
    }
}

/// The system paths a QEMU guest needs, computed from the emulator on this host (nothing is hard-coded but the
/// device nodes): what `ProgramPaths` gives for the binary; its module directory (read from the binary's
/// `.rodata`, where QEMU keeps its compiled-in `CONFIG_QEMU_MODDIR`) and the libraries its accelerator modules
/// load; its firmware and data directories (`-L help`) and the files their symlinks point to outside them;
/// `/dev/kvm` for KVM, `/dev/urandom`, `/dev/null`; and the time zone file `/etc/localtime` points to.
/// See docs/QEMU-SYSTEM-PATHS.md.
public struct QEMUSystemPaths: Sendable, Hashable {
    public var program: ProgramPaths
    public var moduleDirectory: String?
    /// Libraries of the modules QEMU may load for svirt's guests (the accelerator modules).
    public var moduleLibraries: [String]
    public var dataDirectories: [String]
    /// Files that symlinks in the data directories point to outside them (e.g. `OVMF.fd`).
    public var dataLinkTargets: [String]
    public var deviceNodes: [(path: String, access: Landlock.FilesystemAccess, reason: String)] {
        get { devices.map { ($0.path, $0.access, $0.reason) } }
    }
    var devices: [Landlock.PathRule]
    /// Other files QEMU reads: the time zone file.
    public var otherFiles: [String]

    public static func == (a: QEMUSystemPaths, b: QEMUSystemPaths) -> Bool { a.rules == b.rules }
    public func hash(into h: inout Hasher) { h.combine(rules) }

    private static let memo = Mutex<[String: QEMUSystemPaths]>([:])

    /// Computes the paths for `emulator`; `kvm` adds `/dev/kvm`. Cached per emulator for the process unless
    /// `cached` is false.
    public static func compute(for emulator: QEMUEmulator, kvm: Bool, cached: Bool = true) throws -> QEMUSystemPaths {
        let key = "\(emulator.path)|\(kvm)"
        if cached, let hit = memo.withLock({ $0[key] }) { return hit }
        let resolver = try LibraryResolver()
        let program = try ProgramPaths.compute(for: emulator.path, resolver: resolver)

        // The module directory: an absolute string in .rodata ending in /qemu that names a directory of
        // shared objects.
        let candidates = try ELFFile.strings(in: ".rodata", of: emulator.path, startingWith: UInt8(ascii: "/")) {
            $0.hasPrefix("/") && $0.hasSuffix("/qemu") && $0.count < 256
        }
        let moduleDirectory = candidates.first { dir in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.contains { $0.hasSuffix(".so") }
        }
        var moduleLibraries: [String] = []
        var seen = Set(program.libraries.map(canonical))
        if let dir = moduleDirectory {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for name in names where name.hasPrefix("accel-") && name.hasSuffix(".so") {
                guard let res = try? resolver.resolve("\(dir)/\(name)") else { continue }
                for lib in res.libraries where seen.insert(canonical(lib)).inserted { moduleLibraries.append(lib) }
            }
        }

        let dataDirectories = emulator.dataDirectories
        var linkTargets: [String] = []
        for dir in dataDirectories { linkTargets += symlinkTargets(in: dir, outside: dataDirectories) }

        var devices: [Landlock.PathRule] = []
        if kvm { devices.append(.init(path: "/dev/kvm", access: .device, reason: "KVM")) }
        devices.append(.init(path: "/dev/urandom", access: .readOnly, reason: "random numbers"))
        devices.append(.init(path: "/dev/null", access: [.readFile, .writeFile], reason: "the null device"))

        var others: [String] = []
        if let zone = realpathOrNil("/etc/localtime") { others.append(zone) }

        let paths = QEMUSystemPaths(program: program, moduleDirectory: moduleDirectory, moduleLibraries: moduleLibraries,
                                    dataDirectories: dataDirectories, dataLinkTargets: linkTargets, devices: devices,
                                    otherFiles: others)
        memo.withLock { $0[key] = paths }
        return paths
    }

    /// Every rule, for a Landlock ruleset.
    public var rules: [Landlock.PathRule] {
        var out = program.rules
        if let m = moduleDirectory { out.append(.init(path: m, access: .readExecute, reason: "QEMU module directory")) }
        out += moduleLibraries.map { .init(path: $0, access: .readExecute, reason: "library of a QEMU module") }
        out += dataDirectories.map { .init(path: $0, access: .readOnly, reason: "QEMU firmware and data (-L help)") }
        out += dataLinkTargets.map { .init(path: $0, access: .readOnly, reason: "target of a link in a data directory") }
        out += devices
        out += otherFiles.map { .init(path: $0, access: .readOnly, reason: "time zone (/etc/localtime)") }
        return out
    }

    /// The targets of symlinks beneath `dir` (two levels deep) that are outside every directory of `granted`.
    static func symlinkTargets(in dir: String, outside granted: [String]) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        var stack: [(String, Int)] = [(dir, 0)]
        while let (d, depth) = stack.popLast() {
            for name in ((try? fm.contentsOfDirectory(atPath: d)) ?? []).sorted() {
                let p = "\(d)/\(name)"
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR, depth < 2 {
                    stack.append((p, depth + 1))
                } else if (st.st_mode & S_IFMT) == S_IFLNK, let target = realpathOrNil(p) {
                    let inside = granted.contains { target.hasPrefix(canonical($0) + "/") }
                    if !inside && !out.contains(target) { out.append(target) }
                }
            }
        }
        return out
    }
}

/// The canonical path, or nil when it does not resolve (a dangling link).
func realpathOrNil(_ path: String) -> String? {
    guard let r = realpath(path, nil) else { return nil }
    defer { free(r) }
    return String(cString: r)
}
