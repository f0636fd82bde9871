import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

/// What the dynamic loader itself says a program loads (`ld.so --list`): canonical paths, and the names it
/// could not find.
private func loaderList(_ interpreter: String, _ path: String) throws -> (files: Set<String>, missing: Set<String>) {
    let run = try QEMUEmulator.runCapturing(interpreter, ["--list", path])
    var files: Set<String> = [], missing: Set<String> = []
    for line in run.output.split(separator: "\n") {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("linux-vdso") || t.hasPrefix("linux-gate") { continue }
        if t.hasSuffix("=> not found") {
            missing.insert(String(t.split(separator: " ")[0]))
        } else if let arrow = t.range(of: "=> ") {
            let rest = t[arrow.upperBound...]
            files.insert(canonical(String(rest.split(separator: " ")[0])))
        } else if t.hasPrefix("/") {
            files.insert(canonical(String(t.split(separator: " ")[0])))
        }
    }
    return (files, missing)
}

private let qemuPath = "/usr/bin/qemu-system-x86_64"

@Suite("shared library resolution") struct LibraryResolverTests {
    /// Checks the resolver against the loader for one file.
    private func agree(_ path: String, _ resolver: LibraryResolver) throws {
        let mine = try resolver.resolve(path)
        let fallback = try ELFFile(path: canonical("/bin/sh")).interpreter
        let interp = try #require(mine.interpreter ?? fallback)
        let oracle = try loaderList(interp, path)
        var files = Set(mine.libraries.map(canonical))
        if let i = mine.interpreter { files.insert(canonical(i)) }
        // Every file the loader maps is granted; any extra is another hwcaps candidate of the same library.
        #expect(oracle.files.isSubset(of: files), "\(path): missing \(oracle.files.subtracting(files))")
        let oracleNames = Set(oracle.files.map { ($0 as NSString).lastPathComponent })
        for extra in files.subtracting(oracle.files) {
            #expect(oracleNames.contains((extra as NSString).lastPathComponent), "\(path): extra \(extra)")
        }
        let missingNames = Set(mine.missing.map { String($0.split(separator: " ")[0]) })
        #expect(missingNames == oracle.missing, "\(path)")
    }

    @Test("the libraries found for QEMU are the ones ld.so --list maps", .enabled(if: hasQEMU, "needs QEMU"))
    func qemuAgreesWithLoader() throws {
        try agree(qemuPath, try LibraryResolver())
    }

    @Test("each QEMU module resolves as the loader resolves it, missing libraries included",
          .enabled(if: hasQEMU, "needs QEMU"))
    func modulesAgreeWithLoader() throws {
        let dir = "/usr/lib/x86_64-linux-gnu/qemu"
        let resolver = try LibraryResolver()
        let modules = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".so") }
        #expect(!modules.isEmpty)
        for m in modules.sorted() { try agree("\(dir)/\(m)", resolver) }
    }

    @Test("a program with RUNPATH and $ORIGIN (this test binary) resolves as the loader resolves it")
    func runpathAndOrigin() throws {
        let me = canonical("/proc/self/exe")
        let elf = try ELFFile(path: me)
        #expect(!elf.runpath.isEmpty || !elf.rpath.isEmpty)
        try agree(me, try LibraryResolver())
    }

    @Test("the loader cache parses into names with candidate paths")
    func cacheParses() throws {
        let r = try LibraryResolver()
        let libc = try #require(r.cache["libc.so.6"])
        #expect(libc.contains { canonical($0) == canonical("/lib/x86_64-linux-gnu/libc.so.6") })
    }

    @Test("a synthetic cache in the new format maps each key to its value")
    func syntheticCache() throws {
        var b = Array("glibc-ld.so.cache1.1".utf8)
        func u32(_ v: UInt32) { for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        let strings = Array("libfoo.so.1\0/opt/lib/libfoo.so.1\0".utf8)
        let stringsAt = UInt32(48 + 2 * 24)
        u32(2); u32(UInt32(strings.count)); u32(0); u32(0); u32(0); u32(0); u32(0)
        // Entry 1: libc6, x86-64.  Entry 2: an a.out entry (type 0) that must be skipped.
        for (flags, key, value) in [(UInt32(0x0303), stringsAt, stringsAt + 12), (0x0000, stringsAt, stringsAt + 12)] {
            u32(flags); u32(key); u32(value); u32(0); u32(0); u32(0)
        }
        b += strings
        let cache = try LibraryResolver.parseCache(b, path: "synthetic")
        #expect(cache == ["libfoo.so.1": ["/opt/lib/libfoo.so.1"]])
    }

    @Test("a damaged cache is an error that names the file and the fix, not a crash")
    func damagedCache() throws {
        var b = Array("glibc-ld.so.cache1.1".utf8)
        b += [0xff, 0xff, 0xff, 0x7f] + [UInt8](repeating: 0, count: 24)
        let e1 = try #require(throws: SVirtError.self) { _ = try LibraryResolver.parseCache(b, path: "/etc/ld.so.cache") }
        #expect(e1.message.contains("/etc/ld.so.cache") && e1.message.contains("ldconfig"))
        let e2 = try #require(throws: SVirtError.self) { _ = try LibraryResolver.parseCache(Array("hello".utf8), path: "x") }
        #expect(e2.message.contains("no glibc-ld.so.cache1.1 header"))
        // An entry whose string offset points past the file.
        var c = Array("glibc-ld.so.cache1.1".utf8)
        func u32(_ v: UInt32) { for i in 0..<4 { c.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        u32(1); u32(0); u32(0); u32(0); u32(0); u32(0); u32(0)
        u32(0x303); u32(1_000_000); u32(1_000_000); u32(0); u32(0); u32(0)
        #expect(throws: SVirtError.self) { _ = try LibraryResolver.parseCache(c, path: "x") }
    }

    @Test("files that are not ELF, or cut short, are errors naming the file")
    func malformedELF() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = try dir.write("text", String(repeating: "not an elf file ", count: 8))
        let e = try #require(throws: SVirtError.self) { _ = try ELFFile(path: text) }
        #expect(e.message.contains(text) && e.message.contains("no ELF magic"))
        // The first 200 bytes of a real ELF file: its program headers point past the end.
        let head = try #require(FileManager.default.contents(atPath: "/bin/sh")?.prefix(200))
        let cut = dir.file("cut")
        #expect(FileManager.default.createFile(atPath: cut, contents: Data(head)))
        #expect(throws: SVirtError.self) { _ = try ELFFile(path: cut) }
        // Random bytes after a valid ident.
        var junk: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        for _ in 0..<4096 { junk.append(UInt8.random(in: 0...255)) }
        let junkPath = dir.file("junk")
        #expect(FileManager.default.createFile(atPath: junkPath, contents: Data(junk)))
        _ = try? ELFFile(path: junkPath)  // an error or a value, never a trap
    }

    @Test("PT_INTERP and DT_NEEDED are read from a real executable")
    func readsHeaders() throws {
        let sh = try ELFFile(path: canonical("/bin/sh"))
        #expect(sh.interpreter?.hasPrefix("/lib") == true)
        #expect(sh.needed.contains("libc.so.6"))
        #expect(sh.is64Bit == (MemoryLayout<Int>.size == 8))
        let libc = try ELFFile(path: canonical("/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(libc.soname == "libc.so.6")
    }
}
