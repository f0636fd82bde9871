import Glibc
import SVirt

/// The user and group a guest runs as when svirt runs as root, as libvirt's DAC driver does: QEMU never keeps
/// root, and the files it uses are given to this user while it runs (their owners are remembered in
/// `trusted.svirt.security.dac` and given back at stop).
///
/// `svirt.conf` chooses with `user =` and `group =`; by default the user is `libvirt-qemu` where it exists (Debian's
/// libvirt package creates it), else `nobody`, and the group is the user's primary group. The `kvm` group is
/// added as a supplementary group where it exists, so QEMU can open `/dev/kvm`.
public struct GuestUser: Sendable, Hashable, Codable, CustomStringConvertible {
    public var user: String
    public var uid: UInt32
    public var group: String
    public var gid: UInt32
    public var groups: [UInt32]

    public init(user: String, uid: UInt32, group: String, gid: UInt32, groups: [UInt32] = []) {
        self.user = user
        self.uid = uid
        self.group = group
        self.gid = gid
        self.groups = groups
    }

    /// `user:group (uid:gid)`.
    public var description: String { "\(user):\(group) (\(uid):\(gid))" }

    /// The owner as libvirt's DAC labels write it: `+uid:+gid`.
    public var owner: String { "+\(uid):+\(gid)" }

    /// True when the guest keeps root: nothing to change.
    public var isRoot: Bool { uid == 0 }

    /// The credentials the spawn switches to.
    public var credentials: LaunchDescription.Credentials {
        LaunchDescription.Credentials(uid: uid, gid: gid, groups: groups)
    }

    /// The users tried, in order, when `svirt.conf` names none.
    public static let defaultUsers = ["libvirt-qemu", "nobody"]

    /// The guest user for a configuration. Throws `.configuration` naming the key when a configured user or
    /// group does not exist.
    public static func resolve(user configuredUser: String?, group configuredGroup: String?,
                               source: String = "svirt.conf") throws -> GuestUser {
        let entry: (name: String, uid: UInt32, gid: UInt32)
        if let u = configuredUser {
            guard let e = passwd(u) else {
                throw SVirtError(.configuration, "\(source): user = \(u): there is no such user; create it or choose another")
            }
            entry = e
        } else {
            guard let e = defaultUsers.lazy.compactMap(passwd).first else {
                throw SVirtError(.configuration, "neither \(defaultUsers.joined(separator: " nor ")) exists, so svirt has no "
                                 + "unprivileged user to run QEMU as; set user = in \(source)")
            }
            entry = e
        }
        var group = groupName(entry.gid) ?? String(entry.gid)
        var gid = entry.gid
        if let g = configuredGroup {
            guard let found = groupEntry(g) else {
                throw SVirtError(.configuration, "\(source): group = \(g): there is no such group; create it or choose another")
            }
            (group, gid) = found
        }
        var groups: [UInt32] = []
        if let kvm = groupEntry("kvm"), kvm.gid != gid { groups.append(kvm.gid) }
        return GuestUser(user: entry.name, uid: entry.uid, group: group, gid: gid, groups: groups)
    }

    /// A user by name or number.
    static func passwd(_ nameOrNumber: String) -> (name: String, uid: UInt32, gid: UInt32)? {
        var pw = Glibc.passwd()
        var result: UnsafeMutablePointer<Glibc.passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if let n = UInt32(nameOrNumber) {
            guard getpwuid_r(n, &pw, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        } else {
            guard getpwnam_r(nameOrNumber, &pw, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        }
        return (String(cString: pw.pw_name), pw.pw_uid, pw.pw_gid)
    }

    /// A group by name or number.
    static func groupEntry(_ nameOrNumber: String) -> (name: String, gid: UInt32)? {
        var gr = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if let n = UInt32(nameOrNumber) {
            guard getgrgid_r(n, &gr, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        } else {
            guard getgrnam_r(nameOrNumber, &gr, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        }
        return (String(cString: gr.gr_name), gr.gr_gid)
    }

    static func groupName(_ gid: UInt32) -> String? { groupEntry(String(gid))?.name }

    // MARK: Reaching files

    /// Why this user cannot reach `path` with `write` (or read) access through the permission bits, or nil when it
    /// can: every directory on the way needs search permission, the file itself read (and write) permission.
    /// Only the mode bits are looked at (no ACLs), which is what QEMU will meet on ordinary filesystems.
    public func unreachableReason(_ path: String, write: Bool, ownerWillBeSet: Bool) -> String? {
        guard !isRoot else { return nil }
        var prefix = ""
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts.dropLast() {
            prefix += "/\(part)"
            var st = stat()
            guard stat(prefix, &st) == 0 else { return nil }  // missing paths are reported elsewhere
            if !allows(st, bit: 1) {
                return "\(prefix) is mode \(String(st.st_mode & 0o7777, radix: 8)) owned by \(st.st_uid):\(st.st_gid), so "
                    + "\(user) cannot search it; run 'chmod o+x \(prefix)' or set user = in svirt.conf"
            }
        }
        if ownerWillBeSet { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if !allows(st, bit: 4) || (write && !allows(st, bit: 2)) {
            return "\(path) is mode \(String(st.st_mode & 0o7777, radix: 8)) owned by \(st.st_uid):\(st.st_gid), so \(user) "
                + "cannot \(write ? "read and write" : "read") it"
        }
        return nil
    }

    /// Whether the permission bits give this user `bit` (4 read, 2 write, 1 execute/search).
    func allows(_ st: stat, bit: mode_t) -> Bool {
        let mode = st.st_mode
        if st.st_uid == uid { return mode & (bit << 6) != 0 }
        if st.st_gid == gid || groups.contains(st.st_gid) { return mode & (bit << 3) != 0 }
        return mode & bit != 0
    }
}
