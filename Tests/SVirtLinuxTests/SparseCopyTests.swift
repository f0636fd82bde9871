import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux

@Suite("sparse copy of disk images")
struct SparseCopyTests {
    /// A 64 MiB image with data at three places (one of them a block of zeros written out) and holes elsewhere.
    static func image(in dir: TempDir) throws -> String {
        let p = "\(dir.path)/disk.img"
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        ftruncate(fd, 64 << 20)
        for (offset, byte) in [(0, UInt8(0xAB)), (10 << 20, 0x00), (33 << 20 + 123, 0x5A)] {
            let bytes = [UInt8](repeating: byte, count: 300_000)
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        }
        return p
    }

    static func blocks(_ path: String) -> Int {
        var st = stat()
        stat(path, &st)
        return Int(st.st_blocks)
    }

    @Test("the copy has the same bytes and size, keeps the holes (no more blocks than the original), and reports progress to the end")
    func holesKept() throws {
        let dir = try TempDir("svirt-sparse")
        defer { dir.cleanup() }
        let src = try Self.image(in: dir)
        let dst = "\(dir.path)/copy.img"
        var seen: [SparseCopy.Progress] = []
        let r = try SparseCopy.copy(from: src, to: dst) { seen.append($0) }
        #expect(r.size == 64 << 20)
        #expect(FileManager.default.contents(atPath: src) == FileManager.default.contents(atPath: dst))
        let (a, b) = (Self.blocks(src), Self.blocks(dst))
        #expect(b <= a, "the copy takes \(b) blocks, the original \(a)")
        #expect(b * 512 < 2 << 20, "a 64 MiB image with ~0.6 MiB of data takes \(b * 512) bytes")
        #expect(r.written < 1 << 20 && r.written >= 600_000, "\(r.written) bytes written")
        #expect(seen.last == SparseCopy.Progress(done: 64 << 20, total: 64 << 20, written: r.written))
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.done <= $1.done })
    }

    @Test("the copy gets the original's label and mode but none of svirt's trusted.svirt records",
          .enabled(if: getuid() == 0, "needs root"))
    func labelKept() throws {
        let dir = try TempDir("svirt-sparse")
        defer { dir.cleanup() }
        let src = try Self.image(in: dir)
        let label = "system_u:object_r:virt_image_t:s0"
        try ExtendedAttributes.set("security.selinux", value: Array(label.utf8) + [0], path: src)
        try ExtendedAttributes.set("trusted.svirt.security.selinux", value: Array("x".utf8), path: src)
        let dst = "\(dir.path)/copy.img"
        let r = try SparseCopy.copy(from: src, to: dst)
        #expect(r.label == label)
        #expect(try ExtendedAttributes.get("security.selinux", path: dst).map(ExtendedAttributes.string) == label)
        #expect(try ExtendedAttributes.list(path: dst).filter { $0.hasPrefix("trusted.") }.isEmpty)
        var st = stat()
        stat(dst, &st)
        #expect(st.st_mode & 0o777 == 0o640)
    }

    @Test("an existing destination is refused and left as it was; a missing source names the file")
    func refusals() throws {
        let dir = try TempDir("svirt-sparse")
        defer { dir.cleanup() }
        let src = try Self.image(in: dir)
        let dst = try dir.file("taken.img", "keep me")
        #expect { try SparseCopy.copy(from: src, to: dst) } throws: {
            ($0 as? SVirtError)?.message.contains("\(dst) already exists") == true
        }
        #expect(try String(contentsOfFile: dst, encoding: .utf8) == "keep me")
        #expect { try SparseCopy.copy(from: "\(dir.path)/none.img", to: "\(dir.path)/n.img") } throws: { "\($0)".contains("none.img") }
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/n.img"))
    }
}
