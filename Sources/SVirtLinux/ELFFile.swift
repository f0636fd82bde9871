import Glibc
import SVirt

/// What svirt reads from an ELF executable or shared object to find what it loads: the program interpreter
/// (`PT_INTERP`), and from the dynamic section `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH` and `DT_SONAME`.
/// Every offset and count read from the file is bounds-checked; a malformed file is an error naming it.
public struct ELFFile: Sendable {
    public let path: String
    /// ELFCLASS64 (true) or ELFCLASS32.
    public let is64Bit: Bool
    public let isLittleEndian: Bool
    /// `e_machine` (62 = x86-64, 183 = AArch64).
    public let machine: UInt16
    /// `e_type` (2 = executable, 3 = shared object or PIE).
    public let type: UInt16
    public let interpreter: String?
    public let needed: [String]
    public let rpath: [String]
    public let runpath: [String]
    public let soname: String?

    /// Bytes of the file, read on demand.
    private struct Reader {
        let fd: Int32
        let size: UInt64
        let little: Bool
        let path: String

        func bytes(at offset: UInt64, count: UInt64) throws -> [UInt8] {
            guard count <= 1 << 26, offset <= size, count <= size - offset else {
                throw ELFFile.malformed(path, "a read of \(count) bytes at offset \(offset) passes the end (\(size) bytes)")
            }
            var buf = [UInt8](repeating: 0, count: Int(count))
            var done = 0
            while done < buf.count {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + done }, $0.count - done, off_t(offset) + off_t(done)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw SystemCallError(call: "pread", path: path, errno: n < 0 ? errno : EIO) }
                done += n
            }
            return buf
        }

        func integer(_ b: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
            guard at >= 0, width <= 8, at + width <= b.count else { return 0 }
            var v: UInt64 = 0
            for i in 0..<width {
                let byte = UInt64(b[at + (little ? width - 1 - i : i)])
                v = (v << 8) | byte
            }
            return v
        }
    }

    static func malformed(_ path: String, _ what: String) -> SVirtError {
        SVirtError(.unsupported, "'\(path)' is not a usable ELF file: \(what)")
    }

    /// Reads the headers of the ELF file at `path`.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemCallError(call: "fstat", path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Self.malformed(path, "not a regular file") }
        let size = UInt64(max(0, st.st_size))
        guard size >= 52 else { throw Self.malformed(path, "too short for an ELF header") }
        let probe = Reader(fd: fd, size: size, little: true, path: path)
        let ident = try probe.bytes(at: 0, count: 16)
        guard ident[0] == 0x7f, ident[1] == 0x45, ident[2] == 0x4c, ident[3] == 0x46 else {
            throw Self.malformed(path, "no ELF magic")
        }
        guard ident[4] == 1 || ident[4] == 2 else { throw Self.malformed(path, "unknown ELF class \(ident[4])") }
        guard ident[5] == 1 || ident[5] == 2 else { throw Self.malformed(path, "unknown byte order \(ident[5])") }
        let wide = ident[4] == 2
        let r = Reader(fd: fd, size: size, little: ident[5] == 1, path: path)
        let header = try r.bytes(at: 0, count: wide ? 64 : 52)
        let word = wide ? 8 : 4
        is64Bit = wide
        isLittleEndian = r.little
        self.path = path
        type = UInt16(r.integer(header, 16, 2))
        machine = UInt16(r.integer(header, 18, 2))
        let phoff = r.integer(header, wide ? 32 : 28, word)
        let phentsize = r.integer(header, wide ? 54 : 42, 2)
        let phnum = r.integer(header, wide ? 56 : 44, 2)
        guard phentsize >= (wide ? 56 : 32) || phnum == 0 else { throw Self.malformed(path, "program header size \(phentsize)") }

        // Program headers: the interpreter, the loadable segments (to map addresses to offsets), the dynamic one.
        struct Segment { var type: UInt32; var offset: UInt64; var vaddr: UInt64; var filesz: UInt64 }
        var segments: [Segment] = []
        if phnum > 0 {
            let table = try r.bytes(at: phoff, count: phentsize * phnum)
            for i in 0..<Int(phnum) {
                let b = i * Int(phentsize)
                if wide {
                    segments.append(Segment(type: UInt32(r.integer(table, b, 4)), offset: r.integer(table, b + 8, 8),
                                            vaddr: r.integer(table, b + 16, 8), filesz: r.integer(table, b + 32, 8)))
                } else {
                    segments.append(Segment(type: UInt32(r.integer(table, b, 4)), offset: r.integer(table, b + 4, 4),
                                            vaddr: r.integer(table, b + 8, 4), filesz: r.integer(table, b + 16, 4)))
                }
            }
        }
        var interp: String?
        if let s = segments.first(where: { $0.type == 3 }) {  // PT_INTERP
            interp = Self.cString(try r.bytes(at: s.offset, count: min(s.filesz, 4096)), at: 0)
        }
        interpreter = interp

        var needed: [String] = [], rpath: [String] = [], runpath: [String] = [], soname: String?
        if let dyn = segments.first(where: { $0.type == 2 }) {  // PT_DYNAMIC
            let entry = UInt64(word * 2)
            let table = try r.bytes(at: dyn.offset, count: min(dyn.filesz, entry * 65536))
            var tags: [(UInt64, UInt64)] = []
            var i = 0
            while i + Int(entry) <= table.count {
                let tag = r.integer(table, i, word), val = r.integer(table, i + word, word)
                if tag == 0 { break }  // DT_NULL
                tags.append((tag, val))
                i += Int(entry)
            }
            // DT_STRTAB is an address: find the loadable segment that holds it.
            if let strtab = tags.first(where: { $0.0 == 5 })?.1, let strsz = tags.first(where: { $0.0 == 10 })?.1 {
                guard let seg = segments.first(where: {
                    $0.type == 1 && strtab >= $0.vaddr && strtab - $0.vaddr < $0.filesz
                }) else { throw Self.malformed(path, "DT_STRTAB 0x\(String(strtab, radix: 16)) is in no loadable segment") }
                let (at, overflow) = seg.offset.addingReportingOverflow(strtab - seg.vaddr)
                guard !overflow else { throw Self.malformed(path, "DT_STRTAB's file offset overflows") }
                let strings = try r.bytes(at: at, count: min(strsz, 1 << 24))
                func str(_ off: UInt64) throws -> String {
                    guard off < UInt64(strings.count), let s = Self.cString(strings, at: Int(off)) else {
                        throw Self.malformed(path, "a dynamic string offset \(off) passes DT_STRSZ \(strsz)")
                    }
                    return s
                }
                for (tag, val) in tags {
                    switch tag {
                    case 1: needed.append(try str(val))  // DT_NEEDED
                    case 14: soname = try str(val)  // DT_SONAME
                    case 15: rpath += try str(val).split(separator: ":").map(String.init)  // DT_RPATH
                    case 29: runpath += try str(val).split(separator: ":").map(String.init)  // DT_RUNPATH
                    default: break
                    }
                }
            }
        }
        self.needed = needed
        self.rpath = rpath
        self.runpath = runpath
        self.soname = soname
    }

    /// The NUL-terminated string at `offset`, or nil when it has no terminator.
    static func cString(_ bytes: [UInt8], at offset: Int) -> String? {
        guard offset >= 0, offset < bytes.count, let end = bytes[offset...].firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    /// The NUL-terminated strings in the section `name` (e.g. `.rodata`) that satisfy `filter`, in file order.
    /// QEMU's compiled-in directories (its module directory) are such strings. `prefix` skips strings whose first
    /// byte differs without decoding them.
    public static func strings(in name: String, of path: String, startingWith prefix: UInt8? = nil,
                               where filter: (String) -> Bool) throws -> [String] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemCallError(call: "fstat", path: path, errno: errno) }
        let size = UInt64(max(0, st.st_size))
        let probe = Reader(fd: fd, size: size, little: true, path: path)
        let ident = try probe.bytes(at: 0, count: 16)
        let wide = ident[4] == 2
        let r = Reader(fd: fd, size: size, little: ident[5] == 1, path: path)
        let header = try r.bytes(at: 0, count: wide ? 64 : 52)
        let word = wide ? 8 : 4
        let shoff = r.integer(header, wide ? 40 : 32, word)
        let shentsize = r.integer(header, wide ? 58 : 46, 2)
        let shnum = r.integer(header, wide ? 60 : 48, 2)
        let shstrndx = r.integer(header, wide ? 62 : 50, 2)
        guard shnum > 0, shstrndx < shnum, shentsize >= (wide ? 64 : 40) else { return [] }
        let table = try r.bytes(at: shoff, count: shentsize * shnum)
        func section(_ i: Int) -> (name: UInt64, offset: UInt64, size: UInt64) {
            let b = i * Int(shentsize)
            return wide ? (r.integer(table, b, 4), r.integer(table, b + 24, 8), r.integer(table, b + 32, 8))
                : (r.integer(table, b, 4), r.integer(table, b + 16, 4), r.integer(table, b + 20, 4))
        }
        let names = section(Int(shstrndx))
        let nameBytes = try r.bytes(at: names.offset, count: min(names.size, 1 << 20))
        for i in 0..<Int(shnum) {
            let s = section(i)
            guard cString(nameBytes, at: Int(clamping: s.name)) == name else { continue }
            let data = try r.bytes(at: s.offset, count: min(s.size, 1 << 26))
            var out: [String] = []
            data.withUnsafeBufferPointer { buf in
                guard let base = buf.baseAddress else { return }
                var start = 0
                while start < buf.count {
                    // memchr keeps this fast on a QEMU binary's megabytes of .rodata.
                    guard let hit = memchr(base + start, 0, buf.count - start) else { break }
                    let end = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if end > start, prefix.map({ buf[start] == $0 }) ?? true {
                        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self)
                        if filter(text) { out.append(text) }
                    }
                    start = end + 1
                }
            }
            return out
        }
        return []
    }
}
