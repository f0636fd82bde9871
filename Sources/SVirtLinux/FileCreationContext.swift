import Glibc

/// The SELinux context this thread's new files get (`/proc/thread-self/attr/fscreate`, libselinux's
/// setfscreatecon). A file created with it needs no relabel afterwards: the policy checks `create` of that type,
/// not `relabelfrom` of the directory's default type, which a confined svirt (`virtd_t`) is often refused.
enum FileCreationContext {
    /// Sets (or, with nil, clears) the context. False where the kernel refuses it (SELinux off, an unknown
    /// context).
    static func set(_ context: String?, procRoot: String = "/proc") -> Bool {
        ThreadSecurityAttribute.set("fscreate", context, procRoot: procRoot)
    }

    /// Runs `body` (which must not suspend: the context belongs to the calling thread) with new files created as
    /// `context`; the thread's context is cleared afterwards. `applied` tells `body` whether the kernel took it.
    static func with<T>(_ context: String, procRoot: String = "/proc", _ body: (_ applied: Bool) throws -> T) rethrows -> T {
        let applied = set(context, procRoot: procRoot)
        defer { if applied { _ = set(nil, procRoot: procRoot) } }
        return try body(applied)
    }
}

/// The calling thread's SELinux attributes in `/proc/thread-self/attr/` (fscreate, sockcreate).
enum ThreadSecurityAttribute {
    /// Writes (or, with nil, clears) one attribute. False where the kernel refuses it.
    static func set(_ name: String, _ context: String?, procRoot: String = "/proc") -> Bool {
        let fd = open("\(procRoot)/thread-self/attr/\(name)", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let context else { return write(fd, "", 0) == 0 }
        let bytes = Array(context.utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
