/// Reads the start of image files, so backing chains can be followed. `SVirtLinux` reads real files;
/// tests use bytes in memory.
public protocol ImageHeaderSource: Sendable {
    /// Up to `count` bytes from the start of the image at `path` (following symlinks, as QEMU does). Throws
    /// `SVirtError(.notFound)` when it does not exist.
    func header(of path: String, count: Int) throws -> [UInt8]
}

/// A qcow2 header: what svirt needs from it to follow a backing chain.
public struct QCOW2Header: Sendable, Hashable {
    public static let magic: [UInt8] = [0x51, 0x46, 0x49, 0xFB]  // "QFI\xfb"

    public var version: UInt32
    /// The backing file name as stored (may be relative to the image's directory, or `proto:...`).
    public var backingFile: String?
    /// The backing file's format from the header extension, if recorded.
    public var backingFormat: String?
    /// True when the image keeps its data in an external file (incompatible feature bit 2).
    public var hasExternalDataFile: Bool

    /// Why a header could not be read.
    public enum Problem: Error, Sendable, Hashable {
        /// The first `needed` bytes are required.
        case truncated(needed: Int)
        case malformed(String)
    }

    /// Parses the start of a qcow2 file. Every offset and length is bounds-checked against `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(Problem) -> QCOW2Header {
        func u32(_ at: Int) throws(Problem) -> UInt32 {
            guard at >= 0, at <= bytes.count - 4 else { throw .truncated(needed: at + 4) }
            return bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        func u64(_ at: Int) throws(Problem) -> UInt64 {
            guard at >= 0, at <= bytes.count - 8 else { throw .truncated(needed: at + 8) }
            return bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) }
        }
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw .malformed("it does not start with the qcow2 magic") }
        let version = try u32(4)
        guard version == 2 || version == 3 else { throw .malformed("qcow2 version \(version) is not 2 or 3") }
        let backingOffset = try u64(8)
        let backingSize = try u32(16)
        let clusterBits = try u32(20)
        guard clusterBits >= 9, clusterBits <= 21 else { throw .malformed("cluster_bits \(clusterBits) is outside 9...21") }
        let clusterSize = 1 << Int(clusterBits)
        var headerLength = 72
        var incompatible: UInt64 = 0
        if version == 3 {
            incompatible = try u64(72)
            let hl = try u32(100)
            guard hl >= 104, Int(hl) <= clusterSize else { throw .malformed("header_length \(hl) is outside 104...\(clusterSize)") }
            headerLength = Int(hl)
        }
        var out = QCOW2Header(version: version, backingFile: nil, backingFormat: nil,
                              hasExternalDataFile: incompatible & (1 << 2) != 0)
        // Header extensions follow the header, inside the first cluster.
        var at = headerLength
        var extensions = 0
        while true {
            guard at + 8 <= clusterSize else { throw .malformed("header extensions run past the first cluster") }
            let type = try u32(at)
            let length = Int(try u32(at + 4))
            if type == 0 { break }
            extensions += 1
            guard extensions <= 1024 else { throw .malformed("more than 1024 header extensions") }
            guard length <= clusterSize, at + 8 + length <= clusterSize else {
                throw .malformed("header extension 0x\(String(type, radix: 16)) of \(length) bytes runs past the first cluster")
            }
            if type == 0xE279_2ACA {
                guard at + 8 + length <= bytes.count else { throw .truncated(needed: at + 8 + length) }
                out.backingFormat = String(decoding: bytes[(at + 8)..<(at + 8 + length)].prefix { $0 != 0 }, as: UTF8.self)
            }
            at += 8 + (length + 7) / 8 * 8
        }
        if backingOffset != 0 {
            guard backingSize > 0, backingSize <= 1023 else {
                throw .malformed("the backing file name is \(backingSize) bytes (qcow2 allows 1 to 1023)")
            }
            guard backingOffset <= UInt64(clusterSize), Int(backingOffset) + Int(backingSize) <= clusterSize else {
                throw .malformed("the backing file name at offset \(backingOffset) lies outside the first cluster")
            }
            let start = Int(backingOffset), end = start + Int(backingSize)
            guard end <= bytes.count else { throw .truncated(needed: end) }
            guard let name = String(validating: bytes[start..<end], as: UTF8.self), !name.contains("\0") else {
                throw .malformed("the backing file name is not UTF-8 text")
            }
            out.backingFile = name
        }
        return out
    }
}

/// Follows a disk's backing chain through the qcow2 headers, as libvirt does when the XML gives no
/// `<backingStore>`.
///
/// Only formats svirt is told are trusted: the top image's format comes from the XML, each backing file's
/// from the header extension of the image above it. A raw image is never read, so a guest cannot forge a chain
/// by writing a qcow2 header into its raw disk; a qcow2 image whose backing format is not recorded is refused
/// with the command that records it.
public enum BackingChain {
    /// The longest chain svirt follows.
    public static let maxDepth = 64
    /// How much of an image is read at first; more is read when the backing name lies further in.
    public static let headerBytes = 65536

    /// The backing images of `path` (nearest first), read from the headers.
    public static func resolve(top path: String, format: Disk.Format, reader: any ImageHeaderSource,
                               disk: String) throws -> [Disk.BackingImage] {
        var chain: [Disk.BackingImage] = []
        var seen: Set<String> = [path]
        var current = path
        var currentFormat = format
        while currentFormat == .qcow2 {
            let header = try readHeader(current, reader: reader, disk: disk)
            if header.hasExternalDataFile {
                throw SVirtError(.invalidDomain, "\(disk): the qcow2 image \(current) keeps its data in an external data "
                                 + "file, which svirt does not label; convert it with 'qemu-img convert -O qcow2'")
            }
            guard let name = header.backingFile else { break }
            guard let fmtName = header.backingFormat else {
                throw SVirtError(.invalidDomain, "\(disk): the qcow2 image \(current) has the backing file '\(name)' but does "
                                 + "not record its format, and svirt does not guess formats; record it with "
                                 + "'qemu-img rebase -u -f qcow2 -F <raw|qcow2> -b \(name) \(current)', or describe the "
                                 + "chain with <backingStore> in the XML")
            }
            guard let fmt = Disk.Format(rawValue: fmtName) else {
                throw SVirtError(.invalidDomain, "\(disk): the backing file '\(name)' of \(current) has the format "
                                 + "'\(fmtName)'; svirt follows raw and qcow2 images only")
            }
            guard let next = backingPath(name, relativeTo: current) else {
                // A protocol name (nbd:, json:, ...): a network image, never labelled; the chain ends here for svirt.
                chain.append(Disk.BackingImage(type: .network, format: fmt, path: nil,
                                               network: Disk.NetworkSource(protocolName: String(name.prefix { $0 != ":" }),
                                                                           name: name, hosts: [])))
                break
            }
            guard seen.insert(next).inserted else {
                throw SVirtError(.invalidDomain, "\(disk): the backing chain of \(path) loops back to \(next)")
            }
            guard chain.count < maxDepth else {
                throw SVirtError(.invalidDomain, "\(disk): the backing chain of \(path) is more than \(maxDepth) images deep")
            }
            chain.append(Disk.BackingImage(type: .file, format: fmt, path: next))
            current = next
            currentFormat = fmt
        }
        return chain
    }

    static func readHeader(_ path: String, reader: any ImageHeaderSource, disk: String) throws -> QCOW2Header {
        var bytes = try reader.header(of: path, count: headerBytes)
        for _ in 0..<2 {
            do {
                return try QCOW2Header.parse(bytes)
            } catch .truncated(let needed) {
                guard needed > bytes.count, needed <= 1 << 21 else { break }
                let more = try reader.header(of: path, count: needed)
                guard more.count > bytes.count else { break }
                bytes = more
            } catch .malformed(let why) {
                throw SVirtError(.invalidDomain, "\(disk): \(path) is declared qcow2, but its header is not valid: \(why); "
                                 + "check <driver type=...> in the XML (or 'qemu-img info \(path)')")
            }
        }
        throw SVirtError(.invalidDomain, "\(disk): \(path) is declared qcow2, but the file is too short for a qcow2 header; "
                         + "check <driver type=...> in the XML")
    }

    /// The path a backing name refers to: absolute as is, relative to the image's directory, `file:` stripped;
    /// nil for a protocol name such as `nbd:...` or `json:{...}`.
    public static func backingPath(_ name: String, relativeTo image: String) -> String? {
        var n = name
        if n.hasPrefix("file:") { n = String(n.dropFirst(5)) }
        if let colon = n.firstIndex(of: ":"), !n[..<colon].contains("/") { return nil }
        if n.hasPrefix("/") { return n }
        let dir = image.lastIndex(of: "/").map { String(image[..<$0]) } ?? "."
        return (dir.isEmpty ? "" : dir) + "/" + n
    }
}
