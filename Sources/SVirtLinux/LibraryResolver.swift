import Foundation
import Glibc
import SVirt

/// Finds the shared libraries a program loads, the way glibc's dynamic loader searches for them, without running
/// anything: `DT_NEEDED` entries are resolved recursively through `DT_RPATH` (of the object and the objects that
/// loaded it, when it has no `DT_RUNPATH`), `DT_RUNPATH`, `/etc/ld.so.cache` and the default directories.
/// `LD_LIBRARY_PATH` is not consulted: svirt never passes it to a guest.
///
/// A cache entry exists per hardware-capability subdirectory (`glibc-hwcaps/x86-64-v3`, ...); the loader picks
/// one at run time by CPU, so every candidate for the same name is reported, so that a ruleset allows
/// whichever the loader picks.
public struct LibraryResolver: Sendable {
    /// The result for one program.
    public struct Resolution: Sendable, Hashable {
        /// The program interpreter (`/lib64/ld-linux-x86-64.so.2`), as named in the file.
        public var interpreter: String?
        /// Every library file that may be loaded, in breadth-first load order, as found (not canonicalized).
        public var libraries: [String]
        /// Needed names that were found nowhere, with the object that needs them.
        public var missing: [String]
    }

    /// The parsed `/etc/ld.so.cache`: library name → candidate paths, best first.
    public let cache: [String: [String]]
    /// Directories searched last.
    public let defaultDirectories: [String]

    /// Reads `cachePath` (a missing cache is an empty one).
    public init(cachePath: String = "/etc/ld.so.cache",
                defaultDirectories: [String] = LibraryResolver.systemDirectories()) throws {
        if let data = FileManager.default.contents(atPath: cachePath) {
            cache = try Self.parseCache([UInt8](data), path: cachePath)
        } else {
            cache = [:]
        }
        self.defaultDirectories = defaultDirectories
    }

    /// glibc's trusted directories for this machine: the multiarch ones (Debian), then lib64 and lib.
    public static func systemDirectories() -> [String] {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let triplet: String
        switch machine {
        case "x86_64": triplet = "x86_64-linux-gnu"
        case "aarch64": triplet = "aarch64-linux-gnu"
        case "ppc64le": triplet = "powerpc64le-linux-gnu"
        case "s390x": triplet = "s390x-linux-gnu"
        case "riscv64": triplet = "riscv64-linux-gnu"
        default: triplet = "\(machine)-linux-gnu"
        }
        return ["/lib/\(triplet)", "/usr/lib/\(triplet)", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    }

    /// Parses the glibc `ld.so.cache`: the new format (`glibc-ld.so.cache1.1`), alone or after the old
    /// `ld.so-1.7.0` table.
    static func parseCache(_ b: [UInt8], path: String) throws -> [String: [String]] {
        func u32(_ at: Int) -> UInt32? {
            guard at >= 0, at + 4 <= b.count else { return nil }
            return UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
        }
        func bad(_ what: String) -> SVirtError {
            SVirtError(.configuration, "cannot read the loader cache \(path): \(what); run ldconfig to rebuild it")
        }
        let newMagic = Array("glibc-ld.so.cache1.1".utf8), oldMagic = Array("ld.so-1.7.0".utf8)
        var start = 0
        if b.count >= oldMagic.count, Array(b[0..<oldMagic.count]) == oldMagic {
            guard let n = u32(12), Int(n) < b.count / 12 else { throw bad("the old table's count passes the end") }
            start = (16 + Int(n) * 12 + 7) & ~7
        }
        guard start + 48 <= b.count, Array(b[start..<(start + newMagic.count)]) == newMagic else {
            throw bad("no glibc-ld.so.cache1.1 header")
        }
        guard let count = u32(start + 20), Int(count) <= (b.count - start - 48) / 24 else {
            throw bad("the entry count passes the end of the file")
        }
        var out: [String: [String]] = [:]
        for i in 0..<Int(count) {
            let e = start + 48 + i * 24
            guard let flags = u32(e), let key = u32(e + 4), let value = u32(e + 8) else { throw bad("entry \(i) is cut") }
            // Type 1 is a libc5 or plain ELF library, 3 an ELF libc6 library; the machine is checked on use.
            guard flags & 0xff == 3 || flags & 0xff == 1 else { continue }
            guard let name = ELFFile.cString(b, at: start + Int(key)),
                  let file = ELFFile.cString(b, at: start + Int(value)) else { throw bad("entry \(i) points past the strings") }
            out[name, default: []].append(file)
        }
        return out
    }

    /// Resolves everything `path` loads.
    public func resolve(_ path: String) throws -> Resolution {
        let root = try ELFFile(path: path)
        var result = Resolution(interpreter: root.interpreter, libraries: [], missing: [])
        // Names already loaded (by needed name and soname), as the loader matches them.
        var loaded: Set<String> = []
        var seenFiles: Set<String> = []
        // Breadth first, as the loader orders its search list; each object carries its chain of loaders' RPATHs.
        var queue: [(ELFFile, [[String]])] = [(root, [])]
        var index = 0
        while index < queue.count {
            let (object, loaderRpaths) = queue[index]
            index += 1
            let origin = (canonical(object.path) as NSString).deletingLastPathComponent
            let ownRpaths = object.runpath.isEmpty ? [object.rpath] + loaderRpaths : []
            for name in object.needed where !loaded.contains(name) {
                loaded.insert(name)
                let candidates = find(name, requester: object, rpaths: ownRpaths, origin: origin)
                guard let first = candidates.first else {
                    result.missing.append("\(name) (needed by \(object.path))")
                    continue
                }
                for c in candidates where seenFiles.insert(canonical(c.path)).inserted { result.libraries.append(c.path) }
                if let so = first.soname { loaded.insert(so) }
                queue.append((first, object.runpath.isEmpty ? [object.rpath] + loaderRpaths : []))
            }
        }
        return result
    }

    /// Every file that satisfies `name` for `requester`, in the loader's order of preference.
    private func find(_ name: String, requester: ELFFile, rpaths: [[String]], origin: String) -> [ELFFile] {
        func usable(_ p: String) -> ELFFile? {
            guard let f = try? ELFFile(path: p), f.is64Bit == requester.is64Bit, f.machine == requester.machine,
                  f.isLittleEndian == requester.isLittleEndian else { return nil }
            return f
        }
        if name.contains("/") { return usable(name).map { [$0] } ?? [] }
        func expand(_ dir: String) -> String? {
            let d = dir.replacingOccurrences(of: "${ORIGIN}", with: origin).replacingOccurrences(of: "$ORIGIN", with: origin)
            return d.contains("$") || d.isEmpty ? nil : d
        }
        for dir in rpaths.joined().compactMap(expand) { if let f = usable("\(dir)/\(name)") { return [f] } }
        for dir in requester.runpath.compactMap(expand) { if let f = usable("\(dir)/\(name)") { return [f] } }
        let cached = (cache[name] ?? []).compactMap(usable)
        if !cached.isEmpty { return cached }
        for dir in defaultDirectories { if let f = usable("\(dir)/\(name)") { return [f] } }
        return []
    }
}

/// The path with every symlink resolved, or the path itself when that fails.
func canonical(_ path: String) -> String {
    guard let r = realpath(path, nil) else { return path }
    defer { free(r) }
    return String(cString: r)
}
