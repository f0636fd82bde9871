import Foundation
import GRDB
import Glibc
import SVirt

/// Which journal the registry keeps. WAL keeps its index in a `-shm` file that every connection maps shared; an
/// SELinux policy may refuse that map (Debian's policy lets `virtd_t` map no `virt_var_lib_t` file, so the
/// registry in `/var/lib/svirt` could not even be read). Where the map is refused, the registry keeps a rollback
/// journal instead: slower commits, the same transactions and the same serialisation of writers.
extension SQLiteRegistry {
    public enum Journal: String, Sendable {
        /// Write-ahead log with a mapped `-shm` index (where this process may map a file in the state directory).
        case wal
        /// Rollback journal: no file is ever mapped.
        case rollback
    }

    /// WAL where this process may map a shared, writable file in `directory`, else the rollback journal.
    static func journal(for directory: String) -> Journal {
        canMapShared(in: directory) ? .wal : .rollback
    }

    /// Whether this process may map a file of `directory` shared and writable, as SQLite maps its `-shm` file:
    /// a probe file is created, mapped, and removed.
    static func canMapShared(in directory: String) -> Bool {
        let path = "\(directory)/.svirt-map-probe-\(getpid())"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return true }   // not a map question: opening the registry will name the problem
        defer {
            close(fd)
            unlink(path)
        }
        let size = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard ftruncate(fd, off_t(size)) == 0 else { return true }
        guard let map = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            return false
        }
        munmap(map, size)
        return true
    }

    /// Whether the database file's header says WAL (bytes 18 and 19, the read and write versions, are 2).
    static func isWAL(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var versions: [UInt8] = [0, 0]
        let got = versions.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 2, 18) }
        return got == 2 && versions == [2, 2]
    }

    /// Takes a WAL registry back to a rollback journal without mapping its `-shm`: in exclusive locking mode SQLite
    /// keeps the WAL index in its own memory, checkpoints the log into the database and removes it.
    static func leaveWAL(_ path: String) throws {
        do {
            var config = Configuration()
            config.busyMode = .timeout(120)
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE") }
            let queue = try DatabaseQueue(path: path, configuration: config)
            let mode = try queue.writeWithoutTransaction { db in
                try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
            }
            try queue.close()
            guard mode?.lowercased() == "delete" else {
                throw SVirtError(.registry, "SQLite kept the journal mode '\(mode ?? "?")'")
            }
        } catch let e as SVirtError {
            throw SVirtError(.registry, "cannot take the registry \(path) out of WAL mode (this process may not map its "
                             + "-shm file): \(e.message); run svirt once where it may, or choose another state directory "
                             + "with --state-dir")
        } catch {
            throw SVirtError(.registry, "cannot take the registry \(path) out of WAL mode (this process may not map its "
                             + "-shm file): \(error); run svirt once where it may, or choose another state directory "
                             + "with --state-dir", cause: SendableBox(String(describing: error)))
        }
    }
}
