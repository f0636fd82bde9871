import Foundation
import Glibc
import Testing
@testable import SVirtLinux

@Suite("extended attributes", .enabled(if: isRoot, "security.* and trusted.* need root"))
struct ExtendedAttributesTests {
    @Test("security.selinux and trusted.* are written, read, listed and removed on a real file")
    func roundTrip() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let f = try dir.file("disk.img", "")
        let ctx = "system_u:object_r:svirt_image_t:s0:c1,c2"
        try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array(ctx.utf8), path: f)
        #expect(try ExtendedAttributes.get(ExtendedAttributes.selinux, path: f).map(ExtendedAttributes.string) == ctx)
        try ExtendedAttributes.set("trusted.svirt.test", value: Array(String(repeating: "x", count: 1000).utf8), path: f)
        #expect(try ExtendedAttributes.get("trusted.svirt.test", path: f)?.count == 1000)
        #expect(try ExtendedAttributes.list(path: f).contains("trusted.svirt.test"))
        try ExtendedAttributes.remove("trusted.svirt.test", path: f)
        #expect(try ExtendedAttributes.get("trusted.svirt.test", path: f) == nil)
        try ExtendedAttributes.remove("trusted.svirt.test", path: f)
    }

    @Test("noFollow labels a symlink itself and follow labels its target")
    func symlinks() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let target = try dir.file("target.img", "")
        let link = "\(dir.path)/link.img"
        #expect(symlink(target, link) == 0)
        try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array("u:object_r:a_t:s0".utf8), path: target)
        try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array("u:object_r:link_t:s0".utf8), path: link, symlinks: .noFollow)
        #expect(try ExtendedAttributes.get(ExtendedAttributes.selinux, path: target).map(ExtendedAttributes.string) == "u:object_r:a_t:s0")
        #expect(try ExtendedAttributes.get(ExtendedAttributes.selinux, path: link, symlinks: .follow).map(ExtendedAttributes.string) == "u:object_r:a_t:s0")
        #expect(try ExtendedAttributes.get(ExtendedAttributes.selinux, path: link, symlinks: .noFollow).map(ExtendedAttributes.string) == "u:object_r:link_t:s0")
    }

    @Test("a missing file is an error naming the call and the path")
    func missing() {
        do {
            _ = try ExtendedAttributes.get(ExtendedAttributes.selinux, path: "/nonexistent/svirt")
            Issue.record("no error")
        } catch let e as SystemCallError {
            #expect(e.errno == ENOENT)
            #expect(e.description.contains("/nonexistent/svirt"))
        } catch {
            Issue.record("\(error)")
        }
    }
}
