import Foundation
import Glibc
import Testing
@testable import SVirt
@testable import SVirtLinux

/// A node for the KVM device (10:232) in a scratch directory, mode 0600 root:root, like `/dev/kvm` on a fresh host
/// of this kind: the real device, without touching the host's own node.
private func kvmNode(_ dir: TemporaryDirectory) throws -> String {
    let path = "\(dir.path)/kvm"
    guard mknod(path, S_IFCHR | 0o600, makedev(10, 232)) == 0 else {
        throw SystemCallError(call: "mknod", path: path, errno: errno)
    }
    chmod(path, 0o600)
    chmod(dir.path, 0o755)
    return path
}

private func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((major & 0xfff) << 8 | (minor & 0xff) | ((minor & ~0xff) << 12))
}

private func mode(_ path: String) -> mode_t {
    var st = stat()
    stat(path, &st)
    return st.st_mode & 0o7777
}

private func kvmSvirtAttributes(_ path: String) -> [String] {
    ((try? ExtendedAttributes.list(path: path)) ?? []).filter { $0.hasPrefix("trusted.svirt.") }
}

@Suite("/dev/kvm for the guest user",
       .enabled(if: getuid() == 0 && HostProbe().kvm().usable, "needs root and a usable /dev/kvm"))
struct KVMDeviceAccessTests {
    let guest = GuestUser(user: "nobody", uid: 65534, group: "nogroup", gid: 65534)
    let boot = ProcFS().bootTime() ?? 0

    @Test("a 0600 root node is not usable by the guest user, though root can open it")
    func checkedAsTheGuest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let node = try kvmNode(dir)
        #expect(HostProbe().kvm(device: node).usable)
        let asGuest = KVMDeviceAccess.usable(by: guest, device: node)
        #expect(!asGuest.usable)
        #expect(asGuest.reason.contains("nobody cannot open \(node): Permission denied"))
    }

    @Test("the grant adds user:uid:rw- for the VM's life, and the last VM to stop puts mode and ACL back")
    func grantAndRelease() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let node = try kvmNode(dir)
        let access = KVMDeviceAccess(device: node, bootTime: boot)
        guard case .granted = try access.grant(to: guest, holder: "vm1") else {
            Issue.record("no grant for a 0600 node")
            return
        }
        #expect(KVMDeviceAccess.usable(by: guest, device: node).usable)
        let acl = try #require(try ExtendedAttributes.get(KVMDeviceAccess.aclAttribute, path: node))
        let entries = try #require(KVMDeviceAccess.parse(acl))
        #expect(entries.contains(.init(tag: KVMDeviceAccess.Entry.user, perm: 6, id: 65534)))
        #expect(entries.contains(.init(tag: KVMDeviceAccess.Entry.groupObj, perm: 0, id: KVMDeviceAccess.Entry.undefinedID)))
        #expect(entries.contains(.init(tag: KVMDeviceAccess.Entry.other, perm: 0, id: KVMDeviceAccess.Entry.undefinedID)))
        // A second VM joins the grant; the first one's stop leaves it in place.
        _ = try access.grant(to: guest, holder: "vm2")
        try access.release(holder: "vm1")
        #expect(KVMDeviceAccess.usable(by: guest, device: node).usable)
        try access.release(holder: "vm2")
        #expect(!KVMDeviceAccess.usable(by: guest, device: node).usable)
        #expect(mode(node) == 0o600)
        #expect(try ExtendedAttributes.get(KVMDeviceAccess.aclAttribute, path: node) == nil)
        #expect(kvmSvirtAttributes(node).isEmpty)
    }

    @Test("an ACL the node already had comes back byte for byte")
    func existingACLKept() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let node = try kvmNode(dir)
        let original = KVMDeviceAccess.encode([
            .init(tag: KVMDeviceAccess.Entry.userObj, perm: 6, id: KVMDeviceAccess.Entry.undefinedID),
            .init(tag: KVMDeviceAccess.Entry.user, perm: 4, id: 4242),
            .init(tag: KVMDeviceAccess.Entry.groupObj, perm: 0, id: KVMDeviceAccess.Entry.undefinedID),
            .init(tag: KVMDeviceAccess.Entry.mask, perm: 4, id: KVMDeviceAccess.Entry.undefinedID),
            .init(tag: KVMDeviceAccess.Entry.other, perm: 0, id: KVMDeviceAccess.Entry.undefinedID),
        ])
        try ExtendedAttributes.set(KVMDeviceAccess.aclAttribute, value: original, path: node)
        let before = mode(node)
        let access = KVMDeviceAccess(device: node, bootTime: boot)
        _ = try access.grant(to: guest, holder: "vm")
        #expect(KVMDeviceAccess.usable(by: guest, device: node).usable)
        try access.release(holder: "vm")
        #expect(try ExtendedAttributes.get(KVMDeviceAccess.aclAttribute, path: node) == original)
        #expect(mode(node) == before)
    }

    @Test("the remembered original survives a round trip through its text")
    func originalText() {
        let t = KVMDeviceAccess.encodeOriginal(mode: 0o600, acl: [2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff])
        #expect(t == "mode=600 acl=0200000001000600ffffffff")
        let back = KVMDeviceAccess.decodeOriginal(t)
        #expect(back?.mode == 0o600)
        #expect(back?.acl == [2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff])
        #expect(KVMDeviceAccess.decodeOriginal("mode=600 acl=-")?.acl == .some(nil))
        #expect(KVMDeviceAccess.decodeOriginal("garbage") == nil)
        #expect(KVMDeviceAccess.decodeOriginal("mode=600 acl=0") == nil)
    }

    @Test("a type='kvm' domain runs as the guest user with KVM enabled, and its grant on /dev/kvm goes with it",
          .enabled(if: hasQEMU && landlockVersion >= 6, "needs QEMU and Landlock ABI 6"))
    func kvmGuestAsNobody() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try landlockLifecycleAsNobody(dir)
        let img = try makeImage(dir, "k.img", megabytes: 1)
        let name = "kvm-\(getpid())"
        let s = try await life.start(try DomainDefinition(xml: domainXML(name, disk: img)))
        let pid = try #require(s.domain.process?.pid)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.contains("65534") }, "\(status)")
        let qmp = try QMPClient.connect(path: try #require(s.domain.details.qmpSocket))
        let kvm = try qmp.execute("query-kvm")
        qmp.close()
        #expect(kvm["enabled"] == .bool(true) && kvm["present"] == .bool(true), "\(kvm)")
        #expect(KVMDeviceAccess.usable(by: guest).usable)
        let holders = (try? ExtendedAttributes.get("trusted.svirt.security.holders_kvm", path: "/dev/kvm")).flatMap { $0 }
            .map(ExtendedAttributes.string) ?? ""
        if !holders.isEmpty { #expect(holders.contains(name)) }
        _ = try await life.stop(name: name, mode: .destroy)
        let after = (try? ExtendedAttributes.get("trusted.svirt.security.holders_kvm", path: "/dev/kvm")).flatMap { $0 }
            .map(ExtendedAttributes.string) ?? ""
        #expect(!after.split(separator: "\n").contains(Substring(name)))
    }
}
