import Foundation
import Glibc
import SVirt

/// Copies a disk image without filling its holes: only the source's data extents are read (`lseek` with
/// `SEEK_DATA`/`SEEK_HOLE`), and blocks of zeros inside them are skipped too, so the copy is at most as large on
/// disk as the original (`cp --sparse=always`). The copy gets the source's size, mode, owner and SELinux label
/// (`security.selinux`), never svirt's own records (`trusted.svirt.*`).
public enum SparseCopy {
    /// How far a copy has come.
    public struct Progress: Sendable, Hashable {
        /// Bytes of the image walked so far (holes included).
        public var done: UInt64
        public var total: UInt64
        /// Bytes written.
        public var written: UInt64
    }

    /// What a copy did.
    public struct Result: Sendable, Hashable {
        public var size: UInt64
        public var written: UInt64
        /// The label the copy was given (nil: the source has none).
        public var label: String?
    }

    static let chunk = 1 << 20
    static let block = 4096
    /// `SEEK_DATA` and `SEEK_HOLE` (linux/fs.h); Glibc's Swift module does not export them.
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    /// Copies `source` (a file or a block device) into the new file `destination`, which must not exist.
    /// On failure the partial copy is removed. `progress` is called after each chunk.
    public static func copy(from source: String, to destination: String,
                            progress: (Progress) -> Void = { _ in }) throws -> Result {
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw SystemCallError(call: "open", path: source, errno: errno) }
        defer { close(src) }
        var st = stat()
        guard fstat(src, &st) == 0 else { throw SystemCallError(call: "fstat", path: source, errno: errno) }
        let isBlock = (st.st_mode & S_IFMT) == S_IFBLK
        guard (st.st_mode & S_IFMT) == S_IFREG || isBlock else {
            throw SVirtError(.unsupported, "\(source) is neither a file nor a block device; svirt copies disk images only")
        }
        var size = UInt64(max(0, st.st_size))
        if isBlock {
            let end = lseek(src, 0, SEEK_END)
            guard end >= 0 else { throw SystemCallError(call: "lseek", path: source, errno: errno) }
            size = UInt64(end)
        }
        let dst = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else {
            let e = errno
            if e == EEXIST {
                throw SVirtError(.alreadyExists, "\(destination) already exists; svirt never overwrites a file with a copy")
            }
            throw SystemCallError(call: "open", path: destination, errno: e)
        }
        var finished = false
        defer {
            close(dst)
            if !finished { unlink(destination) }
        }
        guard ftruncate(dst, off_t(size)) == 0 else { throw SystemCallError(call: "ftruncate", path: destination, errno: errno) }
        var buffer = [UInt8](repeating: 0, count: chunk)
        let zeros = [UInt8](repeating: 0, count: block)
        var written: UInt64 = 0
        var pos: UInt64 = 0
        progress(Progress(done: 0, total: size, written: 0))
        while pos < size {
            // The next data extent; a block device (or a filesystem without SEEK_DATA) is all data.
            var dataStart = pos, dataEnd = size
            if !isBlock {
                let d = lseek(src, off_t(pos), seekData)
                if d < 0 {
                    if errno == ENXIO { break }  // only a hole is left
                    if errno != EINVAL { throw SystemCallError(call: "lseek(SEEK_DATA)", path: source, errno: errno) }
                } else {
                    dataStart = UInt64(d)
                    let h = lseek(src, d, seekHole)
                    dataEnd = h < 0 ? size : min(size, UInt64(h))
                }
            }
            var at = dataStart
            while at < dataEnd {
                let want = Int(min(UInt64(chunk), dataEnd - at))
                let n = buffer.withUnsafeMutableBytes { pread(src, $0.baseAddress, want, off_t(at)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemCallError(call: "pread", path: source, errno: errno)
                }
                if n == 0 { break }
                // Write only the blocks that are not all zeros.
                var b = 0
                while b < n {
                    let len = min(block, n - b)
                    let zero = buffer.withUnsafeBytes { raw in
                        zeros.withUnsafeBytes { z in
                            guard let a = raw.baseAddress, let zb = z.baseAddress else { return false }
                            return memcmp(a + b, zb, len) == 0
                        }
                    }
                    if !zero {
                        var off = 0
                        while off < len {
                            let w = buffer.withUnsafeBytes { raw in
                                pwrite(dst, raw.baseAddress.map { $0 + b + off }, len - off, off_t(at) + off_t(b + off))
                            }
                            if w < 0 {
                                if errno == EINTR { continue }
                                throw SystemCallError(call: "pwrite", path: destination, errno: errno)
                            }
                            off += w
                        }
                        written += UInt64(len)
                    }
                    b += len
                }
                at += UInt64(n)
                progress(Progress(done: at, total: size, written: written))
            }
            pos = max(dataEnd, pos + 1)
        }
        guard fsync(dst) == 0 else { throw SystemCallError(call: "fsync", path: destination, errno: errno) }
        // Mode, owner and label of the original (a block device's are not a file's: the copy keeps 0600 and root).
        var label: String?
        if !isBlock {
            _ = fchmod(dst, st.st_mode & 0o777)
            if getuid() == 0 { _ = fchown(dst, st.st_uid, st.st_gid) }
        }
        if let bytes = try? ExtendedAttributes.get("security.selinux", fd: src, path: source) {
            let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            if !text.isEmpty {
                do {
                    try ExtendedAttributes.set("security.selinux", value: bytes, fd: dst, path: destination)
                    label = text
                } catch {
                    // Without the right to write labels the copy keeps the label its directory gave it.
                }
            }
        }
        progress(Progress(done: size, total: size, written: written))
        finished = true
        return Result(size: size, written: written, label: label)
    }
}
