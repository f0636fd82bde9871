import Testing
@testable import SVirt

/// Image headers held in memory.
struct MemoryImages: ImageHeaderSource {
    var files: [String: [UInt8]]

    func header(of path: String, count: Int) throws -> [UInt8] {
        guard let f = files[path] else { throw SVirtError(.notFound, "\(path) does not exist") }
        return Array(f.prefix(count))
    }

    /// A qcow2 v3 header with an optional backing file and format extension, padded to `size` bytes.
    static func qcow2(backing: String? = nil, format: String? = nil, features: UInt64 = 0, size: Int = 4096) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        func put32(_ v: UInt32, _ at: Int) { for k in 0..<4 { b[at + k] = UInt8((v >> (24 - 8 * k)) & 0xFF) } }
        func put64(_ v: UInt64, _ at: Int) { for k in 0..<8 { b[at + k] = UInt8((v >> (56 - 8 * k)) & 0xFF) } }
        b[0] = 0x51; b[1] = 0x46; b[2] = 0x49; b[3] = 0xFB
        put32(3, 4)
        put32(16, 20)  // 64 KiB clusters
        put64(features, 72)
        put32(4, 96)
        put32(112, 100)
        var at = 112
        if let format {
            let f = Array(format.utf8)
            put32(0xE279_2ACA, at)
            put32(UInt32(f.count), at + 4)
            for (k, c) in f.enumerated() { b[at + 8 + k] = c }
            at += 8 + (f.count + 7) / 8 * 8
        }
        put32(0, at)
        put32(0, at + 4)
        at += 8
        if let backing {
            let n = Array(backing.utf8)
            put64(UInt64(at), 8)
            put32(UInt32(n.count), 16)
            for (k, c) in n.enumerated() { b[at + k] = c }
        }
        return b
    }
}

@Suite("qcow2 backing chains") struct BackingChainTests {
    @Test("the chain is followed through the headers, relative names against the image's directory")
    func follow() throws {
        let images = MemoryImages(files: [
            "/img/top.qcow2": MemoryImages.qcow2(backing: "mid.qcow2", format: "qcow2"),
            "/img/mid.qcow2": MemoryImages.qcow2(backing: "/base/root.raw", format: "raw"),
            "/base/root.raw": MemoryImages.qcow2(backing: "/etc/shadow", format: "raw"),
        ])
        let chain = try BackingChain.resolve(top: "/img/top.qcow2", format: .qcow2, reader: images, disk: "disk 'vda'")
        #expect(chain == [
            Disk.BackingImage(type: .file, format: .qcow2, path: "/img/mid.qcow2"),
            Disk.BackingImage(type: .file, format: .raw, path: "/base/root.raw"),
        ])
    }

    @Test("a raw image is never read, so a guest cannot forge a chain inside it")
    func rawNotRead() throws {
        let images = MemoryImages(files: ["/img/guest.raw": MemoryImages.qcow2(backing: "/etc/shadow", format: "raw")])
        #expect(try BackingChain.resolve(top: "/img/guest.raw", format: .raw, reader: images, disk: "d").isEmpty)
    }

    @Test("a backing file without a recorded format is refused with the command that records it")
    func noFormat() {
        let images = MemoryImages(files: ["/img/top.qcow2": MemoryImages.qcow2(backing: "base.qcow2")])
        #expect {
            try BackingChain.resolve(top: "/img/top.qcow2", format: .qcow2, reader: images, disk: "disk 'vda'")
        } throws: { e in
            (e as? SVirtError)?.message.contains("does not record its format, and svirt does not guess formats; record it with 'qemu-img rebase -u -f qcow2 -F <raw|qcow2> -b base.qcow2 /img/top.qcow2'") == true
        }
    }

    @Test("loops, bad headers and external data files are refused")
    func refusals() {
        let loop = MemoryImages(files: [
            "/a.qcow2": MemoryImages.qcow2(backing: "/b.qcow2", format: "qcow2"),
            "/b.qcow2": MemoryImages.qcow2(backing: "/a.qcow2", format: "qcow2"),
        ])
        #expect(throws: SVirtError.self) { try BackingChain.resolve(top: "/a.qcow2", format: .qcow2, reader: loop, disk: "d") }
        let notQcow = MemoryImages(files: ["/x.qcow2": [UInt8](repeating: 0, count: 512)])
        #expect {
            try BackingChain.resolve(top: "/x.qcow2", format: .qcow2, reader: notQcow, disk: "disk 'vda'")
        } throws: { e in (e as? SVirtError)?.message.contains("is declared qcow2, but its header is not valid") == true }
        let external = MemoryImages(files: ["/e.qcow2": MemoryImages.qcow2(features: 1 << 2)])
        #expect {
            try BackingChain.resolve(top: "/e.qcow2", format: .qcow2, reader: external, disk: "d")
        } throws: { e in (e as? SVirtError)?.message.contains("external data file") == true }
    }

    @Test("a network backing name ends the local chain")
    func network() throws {
        let images = MemoryImages(files: ["/t.qcow2": MemoryImages.qcow2(backing: "nbd://host/export", format: "raw")])
        let chain = try BackingChain.resolve(top: "/t.qcow2", format: .qcow2, reader: images, disk: "d")
        #expect(chain.count == 1 && chain[0].path == nil && chain[0].type == .network)
        #expect(BackingChain.backingPath("file:/a/b", relativeTo: "/x/y") == "/a/b")
        #expect(BackingChain.backingPath("json:{}", relativeTo: "/x/y") == nil)
        #expect(BackingChain.backingPath("../b", relativeTo: "/x/y") == "/x/../b")
    }

    @Test("every truncation and mutation of a header gives a value or an error, never a crash")
    func fuzz() {
        let good = MemoryImages.qcow2(backing: "base.qcow2", format: "qcow2", size: 512)
        for n in 0...good.count { _ = try? QCOW2Header.parse(Array(good.prefix(n))) }
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<20_000 {
            var b = good
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? QCOW2Header.parse(b)
        }
    }
}
