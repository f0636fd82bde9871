import Foundation
import GRDB
import Glibc
import SVirt

/// The registry file itself: it is created whole or not at all, an existing file is used only when it is an svirt
/// registry, and it and its `-wal`/`-shm` files are readable by svirt's user alone.
extension SQLiteRegistry {
    /// The first 16 bytes of every SQLite 3 database.
    static let sqliteHeader: [UInt8] = Array("SQLite format 3".utf8) + [0]

    /// How to put a damaged registry aside, for the messages.
    static func remedy(_ path: String) -> String {
        "restore it from a backup, or move it aside to start afresh with no definitions or reservations "
            + "(mv \(path) \(path).broken)"
    }

    /// Checks what is at `path` before SQLite opens it. Returns false when there is nothing (a new registry is to be
    /// made); true when there is a file that looks like an SQLite database, with its mode (and its `-wal`/`-shm`
    /// files' modes) made 0600. Throws, naming the file and the fix, for an empty file, a file that is not an
    /// SQLite database, something other than a regular file, or a file svirt's user does not own that others may
    /// read or write.
    static func inspectExisting(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return false }
            if e == ELOOP {
                throw SVirtError(.registry, "the registry \(path) is a symbolic link; svirt opens only a regular file "
                                 + "there: replace the link with the file it points to, or choose another state directory with --state-dir")
            }
            throw SVirtError(.registry, "cannot open the registry \(path): \(String(cString: strerror(e))); "
                             + "check its permissions, or choose another state directory with --state-dir")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SVirtError(.registry, "cannot stat the registry \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SVirtError(.registry, "the registry \(path) is not a regular file; move it aside "
                             + "(mv \(path) \(path).broken) or choose another state directory with --state-dir")
        }
        guard st.st_size > 0 else {
            throw SVirtError(.registry, "the registry \(path) is empty (0 bytes), so every definition and reservation it "
                             + "held is gone, and svirt will not start a new registry over it; " + remedy(path))
        }
        var header = [UInt8](repeating: 0, count: sqliteHeader.count)
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard got == sqliteHeader.count, header == sqliteHeader else {
            throw SVirtError(.registry, "the registry \(path) is not an SQLite database (\(st.st_size) bytes that do not "
                             + "begin with 'SQLite format 3'), so svirt cannot read its definitions and will not start "
                             + "a new registry over it; " + remedy(path))
        }
        try makePrivate(fd: fd, st, path)
        for suffix in ["-wal", "-shm"] {
            let side = open(path + suffix, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            if side < 0 { continue }
            defer { close(side) }
            var sst = stat()
            if fstat(side, &sst) == 0, sst.st_mode & S_IFMT == S_IFREG { try makePrivate(fd: side, sst, path + suffix) }
        }
        return true
    }

    /// Makes an open registry file mode 0600 when svirt's user owns it; refuses one it does not own that others may
    /// read or write.
    static func makePrivate(fd: Int32, _ st: stat, _ path: String) throws {
        guard st.st_mode & 0o077 != 0 else { return }
        try StateDirectory.makePrivate(fd: fd, st, path: path, mode: 0o600, what: "the registry file",
                                       orElse: "or choose another state directory with --state-dir")
    }

    /// Creates a new registry at `path`: the schema is written into a private temporary file, which is then renamed
    /// into place, so `path` is either absent or a whole svirt registry (a crash leaves only the temporary file,
    /// removed by the next attempt). The caller holds the registry lock and has seen that `path` does not exist.
    static func createNew(_ path: String) throws {
        let temporary = "\(path).new"
        for p in [temporary, temporary + "-journal", temporary + "-wal", temporary + "-shm"] { unlink(p) }
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw StateDirectory.failure(at: temporary, "cannot create the registry \(temporary): \(String(cString: strerror(errno)))",
                                         remedy: "check the state directory or choose another with --state-dir")
        }
        // The mode is 0600 whatever the umask; SQLite gives its journal files the database's mode.
        let chmodOK = fchmod(fd, 0o600) == 0
        close(fd)
        guard chmodOK else {
            unlink(temporary)
            throw SVirtError(.registry, "cannot make \(temporary) mode 0600: \(String(cString: strerror(errno)))")
        }
        do {
            // A rollback journal, not WAL, so that the closed file holds everything; the registry's own
            // configuration turns WAL on when it is opened at `path`.
            let queue = try DatabaseQueue(path: temporary)
            try migrator.migrate(queue)
            try queue.close()
        } catch {
            unlink(temporary)
            throw StateDirectory.failure(at: path, "cannot create the registry \(path): \(error)",
                                         remedy: "check the state directory or choose another with --state-dir",
                                         cause: String(describing: error))
        }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw SVirtError(.registry, "cannot move the new registry into place at \(path): \(String(cString: strerror(e))); "
                             + "check the state directory or choose another with --state-dir")
        }
    }

    /// Throws unless the database at `path` is an svirt registry: one the migrator has written (its first
    /// migration is recorded). It is opened read-only for the check, so an SQLite database of something else is
    /// left exactly as it was, and never given svirt's schema.
    static func checkIsRegistry(_ path: String) throws {
        let applied: Set<String>
        let tables: [String]
        do {
            var config = Configuration()
            config.readonly = true
            config.busyMode = .timeout(120)
            let queue = try DatabaseQueue(path: path, configuration: config)
            (applied, tables) = try queue.read { db in
                (try migrator.appliedIdentifiers(db),
                 try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))
            }
            try queue.close()
        } catch {
            throw StateDirectory.failure(at: path, "cannot read the registry \(path): \(error)", remedy: remedy(path),
                                         cause: String(describing: error))
        }
        guard applied.contains("v1-foundation") else {
            let shown = tables.isEmpty ? "it has no tables" : "its tables are \(tables.prefix(8).joined(separator: ", "))"
            throw SVirtError(.registry, "\(path) is an SQLite database but not an svirt registry (\(shown), and no svirt "
                             + "schema), so svirt will not write its schema into it; " + remedy(path))
        }
    }
}
