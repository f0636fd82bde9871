import CSVirt
import Glibc
import SVirt

/// `/dev/kvm` for the user QEMU runs as.
///
/// Distributions give `/dev/kvm` to a `kvm` group (or mode 0666), but a host may have neither: the node is then
/// `crw------- root root` and QEMU, which never keeps root, cannot open it. svirt then gives the guest user access
/// for the VM's life the way it gives it the VM's files: the node's original mode and POSIX access ACL are
/// remembered on the node (`trusted.svirt.security.kvm`, with holders and a refcount, crash-safe as
/// `RememberedLabels` describes), one ACL entry `user:<uid>:rw-` is added, and the last VM to stop puts the
/// original mode and ACL back. Owner, group and SELinux label are never touched.
public struct KVMDeviceAccess: Sendable {
    public var device: String
    public var bootTime: Int
    public var store: XattrFileLabelStore
    let records = RememberedLabels(model: "kvm")

    /// The POSIX access ACL attribute.
    static let aclAttribute = "system.posix_acl_access"

    public init(device: String = "/dev/kvm", bootTime: Int, store: XattrFileLabelStore = XattrFileLabelStore()) {
        self.device = device
        self.bootTime = bootTime
        self.store = store
    }

    /// Whether `user` can open the device read-write and gets KVM's API version 12, checked by a child process
    /// that runs with the user's credentials (so mode bits, ACLs and LSMs all count).
    public static func usable(by user: GuestUser?, device: String = "/dev/kvm") -> (usable: Bool, reason: String) {
        guard let user, !user.isRoot, getuid() == 0 else { return HostProbe().kvm(device: device) }
        let groups = user.groups.map { gid_t($0) }
        let r = groups.withUnsafeBufferPointer { g in
            svirt_open_as(device, uid_t(user.uid), gid_t(user.gid), g.baseAddress, g.count, 1)
        }
        if r == 12 { return (true, "\(device) API version 12, opened as \(user.user)") }
        if r >= 0 { return (false, "\(device) answers API version \(r) to \(user.user), expected 12") }
        return (false, "\(user.user) cannot open \(device): \(String(cString: strerror(-r)))")
    }

    /// What `grant` did.
    public enum Granted: Sendable, Hashable {
        /// The user could open the device already; nothing changed.
        case alreadyUsable
        /// An ACL entry for the user was added (or another VM's grant now counts this one too).
        case granted(note: String)
    }

    /// Gives `user` read-write access to the device for `holder` (a VM name), remembering the original mode and
    /// ACL first. Throws, naming the device and the fix, when it cannot.
    public func grant(to user: GuestUser, holder: String) throws -> Granted {
        if Self.usable(by: user, device: device).usable {
            // A record of another VM's grant may be what makes it usable: count this holder too, so the
            // grant outlives the first VM while this one runs.
            let f = try open()
            if case .valid = try records.read(f, bootTime: bootTime) {
                _ = try records.remember(original: nil, holder: holder, on: f, bootTime: bootTime)
                return .granted(note: "\(device): \(user.user) shares the access svirt gave it for another VM")
            }
            return .alreadyUsable
        }
        let f = try open()
        var st = stat()
        guard fstat(f.fd, &st) == 0 else {
            throw SVirtError(.launch, "cannot stat \(device): \(String(cString: strerror(errno)))")
        }
        let originalACL = try f.attribute(Self.aclAttribute)
        let original = Self.encodeOriginal(mode: st.st_mode & 0o7777, acl: originalACL)
        switch try records.remember(original: original, holder: holder, on: f, bootTime: bootTime) {
        case .first, .joined: break
        case .unsupported:
            throw SVirtError(.unsupported, "\(device) keeps no trusted.* attributes, so svirt cannot remember its mode "
                             + "to give \(user.user) access; add \(user.user) to a group that may open \(device), "
                             + "or use domain type='qemu' (TCG)")
        }
        let acl = Self.adding(user: user.uid, to: originalACL, mode: st.st_mode)
        do {
            try f.setAttribute(Self.aclAttribute, acl)
        } catch {
            _ = try? release(holder: holder)
            throw SVirtError(.launch, "cannot give \(user.user) access to \(device) (ACL user:\(user.uid):rw-): \(error); "
                             + "add \(user.user) to a group that may open \(device), or use domain type='qemu' (TCG)")
        }
        let check = Self.usable(by: user, device: device)
        guard check.usable else {
            _ = try? release(holder: holder)
            throw SVirtError(.launch, "\(device): after adding ACL user:\(user.uid):rw- \(check.reason); "
                             + "use domain type='qemu' (TCG), or allow \(user.user) to open \(device)")
        }
        return .granted(note: "\(device): \(user.user) may open it while the VM runs (ACL user:\(user.uid):rw-, taken back at stop)")
    }

    /// Takes `holder`'s access back; the last holder puts the original mode and ACL back. Returns what was done.
    @discardableResult
    public func release(holder: String) throws -> String? {
        let f: XattrFile
        do { f = try open() } catch let e as SVirtError where e.code == .notFound { return nil }
        switch try records.recall(holder: holder, on: f, bootTime: bootTime) {
        case .restore(let original):
            if let original, let o = Self.decodeOriginal(original) {
                if let acl = o.acl {
                    try f.setAttribute(Self.aclAttribute, acl)
                } else {
                    do { try f.removeAttribute(Self.aclAttribute) } catch let e as SVirtError where e.code == .notFound {}
                }
                // Setting or removing an ACL moves the group bits; put the mode back as it was.
                guard chmod(f.handle, o.mode) == 0 else {
                    throw SVirtError(.labeling, "cannot give \(device) its mode \(String(o.mode, radix: 8)) back: "
                                     + String(cString: strerror(errno)))
                }
            }
            try records.forget(f)
            return "\(device): mode and ACL given back"
        case .stillInUse, .notHolder, .noRecord, .partialRemoved, .unsupported, .staleRemoved:
            return nil
        }
    }

    func open() throws -> XattrFile {
        guard let f = try store.open(try store.resolve(device)) as? XattrFile else {
            throw SVirtError(.labeling, "\(device): the file store returned an unexpected file")
        }
        return f
    }

    // MARK: The record and the ACL

    /// `mode=0600 acl=-` or `mode=0600 acl=<hex>`.
    static func encodeOriginal(mode: mode_t, acl: [UInt8]?) -> String {
        return "mode=\(String(mode, radix: 8)) acl=\(acl.map(Hex.encode) ?? "-")"
    }

    static func decodeOriginal(_ text: String) -> (mode: mode_t, acl: [UInt8]?)? {
        var mode: mode_t?
        var acl: [UInt8]?? = nil
        for field in text.split(separator: " ") {
            if field.hasPrefix("mode=") { mode = mode_t(field.dropFirst(5), radix: 8) }
            if field.hasPrefix("acl=") {
                let hex = field.dropFirst(4)
                if hex == "-" { acl = .some(nil); continue }
                guard let bytes = Hex.decode(hex) else { return nil }
                acl = .some(bytes)
            }
        }
        guard let mode, let acl else { return nil }
        return (mode & 0o7777, acl)
    }

    /// One POSIX ACL entry (`struct posix_acl_xattr_entry`).
    struct Entry: Equatable {
        var tag: UInt16
        var perm: UInt16
        var id: UInt32
        static let userObj: UInt16 = 0x01, user: UInt16 = 0x02, groupObj: UInt16 = 0x04, group: UInt16 = 0x08
        static let mask: UInt16 = 0x10, other: UInt16 = 0x20
        static let undefinedID: UInt32 = 0xFFFF_FFFF
    }

    static func parse(_ bytes: [UInt8]) -> [Entry]? {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0 else { return nil }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
        guard u32(0) == 2 else { return nil }
        return stride(from: 4, to: bytes.count, by: 8).map { Entry(tag: u16($0), perm: u16($0 + 2), id: u32($0 + 4)) }
    }

    static func encode(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = [2, 0, 0, 0]
        for e in entries.sorted(by: { ($0.tag, $0.id) < ($1.tag, $1.id) }) {
            out += [UInt8(e.tag & 0xFF), UInt8(e.tag >> 8), UInt8(e.perm & 0xFF), UInt8(e.perm >> 8)]
            out += [UInt8(e.id & 0xFF), UInt8((e.id >> 8) & 0xFF), UInt8((e.id >> 16) & 0xFF), UInt8(e.id >> 24)]
        }
        return out
    }

    /// The ACL with `user:uid:rw-` added to `existing` (or to the ACL the mode bits stand for), and the mask
    /// widened to let it through.
    static func adding(user uid: UInt32, to existing: [UInt8]?, mode: mode_t) -> [UInt8] {
        let m = UInt16(mode & 0o777)
        var entries = existing.flatMap(parse) ?? [
            Entry(tag: Entry.userObj, perm: (m >> 6) & 7, id: Entry.undefinedID),
            Entry(tag: Entry.groupObj, perm: (m >> 3) & 7, id: Entry.undefinedID),
            Entry(tag: Entry.other, perm: m & 7, id: Entry.undefinedID),
        ]
        entries.removeAll { $0.tag == Entry.user && $0.id == uid }
        entries.append(Entry(tag: Entry.user, perm: 6, id: uid))
        let groupObj = entries.first { $0.tag == Entry.groupObj }?.perm ?? 0
        if let i = entries.firstIndex(where: { $0.tag == Entry.mask }) {
            entries[i].perm |= 6
        } else {
            entries.append(Entry(tag: Entry.mask, perm: groupObj | 6, id: Entry.undefinedID))
        }
        return encode(entries)
    }
}
