import Glibc
import SVirt

/// The host-wide lock svirt holds while it changes labels (`labels.lock` in the state directory), so two svirt
/// processes never update the same records at once. It plays the part of libvirt's per-file metadata locks
/// for svirt processes on one host.
public final class LabelingLock: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    /// Takes the lock, waiting up to `timeout` seconds for another svirt process to finish.
    public init(path: String, timeout: Double = 120) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SVirtError(.state, "cannot open the labelling lock \(path): \(String(cString: strerror(errno))); "
                             + "check the state directory or choose another with --state-dir")
        }
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            guard e == EWOULDBLOCK, waited < timeout else {
                close(fd)
                throw SVirtError(.state, e == EWOULDBLOCK
                                 ? "another svirt process has been changing labels for \(timeout.rounded() == timeout ? String(Int(timeout)) : String(timeout)) s "
                                    + "(it holds \(path)); try again when it is done"
                                 : "cannot lock \(path): \(String(cString: strerror(e)))")
            }
            usleep(10_000)
            waited += 0.01
        }
        self.fd = fd
    }

    deinit {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
