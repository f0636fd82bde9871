import Foundation
import Glibc
import SELinux
import SVirt
import Testing
@testable import SVirtLinux

/// A private directory under /var/lib/libvirt/images (which file_contexts labels virt_image_t), removed
/// afterwards together with any parent this test created.
final class ImagesDirectory {
    let path: String
    private var created: [String] = []

    init() throws {
        // mkdir succeeds only for the one process that creates the directory; that one removes it (if empty) later.
        for p in ["/var/lib/libvirt", "/var/lib/libvirt/images"] where mkdir(p, 0o755) == 0 { created.append(p) }
        path = try ScratchDirectory.make("svirt-golden", in: "/var/lib/libvirt/images")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
        for p in created.reversed() { rmdir(p) }
    }

    /// A 1 MiB image labelled `label` (nil: no label).
    func image(_ name: String, label: String?) throws -> String {
        let p = "\(path)/\(name)"
        #expect(FileManager.default.createFile(atPath: p, contents: Data(count: 1 << 20)))
        if let label { try ExtendedAttributes.set("security.selinux", value: Array(label.utf8) + [0], path: p) }
        return p
    }

    /// A golden chapter definition with its images moved here.
    func domain(_ name: String) throws -> DomainDefinition {
        let xml = try String(contentsOfFile: "\(Golden.directory)/\(name).xml", encoding: .utf8)
            .replacingOccurrences(of: "/var/lib/libvirt/images/", with: "\(path)/")
        return try DomainDefinition(xml: xml)
    }
}

enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Golden").path
}

func fileLabel(_ path: String) throws -> String? {
    try ExtendedAttributes.get("security.selinux", path: path).map(ExtendedAttributes.string)
}

func svirtAttributes(_ path: String) throws -> [String] {
    try ExtendedAttributes.list(path: path).filter { $0.hasPrefix("trusted.svirt.") }
}

@Suite("the chapter's three cases on real files", .enabled(if: isRoot, "needs root for security.* and trusted.* attributes"),
       .serialized)
struct ChapterGoldenTests {
    let virtImage = "system_u:object_r:virt_image_t:s0"

    func driver(_ state: ScratchDirectory, checker: (any AccessChecker)? = nil) throws -> SecurityDriver {
        // The host's /etc/selinux: Debian's policy has svirt_t and no TCG type.
        let env = try HostEnvironment(stateDirectory: state.path, selinuxRoot: nil)
        return try SecurityDriver.host(env, registry: try env.openRegistry(), checker: checker)
    }

    @Test("Dynamic_VM1 and Dynamic_VM2 get distinct levels on process and image, and virt_image_t back after restore")
    func dynamic() async throws {
        let state = try ScratchDirectory()
        let images = try ImagesDirectory()
        let driver = try driver(state)
        for original in [virtImage, nil] {
            let img1 = try images.image("Dynamic_VM1.img", label: original)
            let img2 = try images.image("Dynamic_VM2.img", label: original)
            let vm1 = try await driver.labelAll(for: try images.domain("Dynamic_VM1"))
            let vm2 = try await driver.labelAll(for: try images.domain("Dynamic_VM2"))
            let l1 = try #require(vm1.label.reservedLevel), l2 = try #require(vm2.label.reservedLevel)
            #expect(l1 != l2 && l1.isIncomparable(with: l2))
            #expect(vm1.label.process?.description == "system_u:system_r:svirt_t:\(l1)")
            #expect(vm2.label.process?.description == "system_u:system_r:svirt_t:\(l2)")
            #expect(try fileLabel(img1) == "system_u:object_r:svirt_image_t:\(l1)")
            #expect(try fileLabel(img2) == "system_u:object_r:svirt_image_t:\(l2)")
            // ls -Z shows what the chapter shows.
            #expect(try run("/bin/ls", ["-Z", img1]).out == "system_u:object_r:svirt_image_t:\(l1) \(img1)\n")
            #expect(try run("/bin/ls", ["-Z", img2]).out == "system_u:object_r:svirt_image_t:\(l2) \(img2)\n")
            #expect(try await driver.registry.reservations().map(\.owner).sorted() == ["Dynamic_VM1", "Dynamic_VM2"])

            let r1 = try await driver.restoreAll(for: try images.domain("Dynamic_VM1"))
            let r2 = try await driver.restoreAll(for: try images.domain("Dynamic_VM2"))
            #expect(r1.report.failures.isEmpty && r2.report.failures.isEmpty)
            #expect(r1.released == [l1] && r2.released == [l2])
            #expect(try fileLabel(img1) == virtImage, "original \(original ?? "none")")
            #expect(try fileLabel(img2) == virtImage, "original \(original ?? "none")")
            #expect(try svirtAttributes(img1).isEmpty && svirtAttributes(img2).isEmpty)
            #expect(try await driver.registry.reservations().isEmpty)
        }
    }

    @Test("Shareable_VM and its clone share one image labelled svirt_image_t:s0, with two distinct process levels")
    func shareable() async throws {
        let state = try ScratchDirectory()
        let images = try ImagesDirectory()
        let driver = try driver(state)
        let img = try images.image("Shareable_VM.img", label: virtImage)
        let a = try await driver.labelAll(for: try images.domain("Shareable_VM"))
        let b = try await driver.labelAll(for: try images.domain("Shareable_VM-clone"))
        #expect(try fileLabel(img) == "system_u:object_r:svirt_image_t:s0")
        let la = try #require(a.label.process?.range), lb = try #require(b.label.process?.range)
        #expect(la != lb)
        #expect(a.label.process?.type == "svirt_t" && b.label.process?.type == "svirt_t")
        _ = try await driver.restoreAll(for: try images.domain("Shareable_VM"))
        #expect(try fileLabel(img) == "system_u:object_r:svirt_image_t:s0")
        _ = try await driver.restoreAll(for: try images.domain("Shareable_VM-clone"))
        #expect(try fileLabel(img) == "system_u:object_r:svirt_image_t:s0")
        #expect(try svirtAttributes(img).isEmpty)
    }

    @Test("Static_VM1 with relabel='no' leaves its image alone, and the preflight explains virt_image_t until chcon fixes it",
          arguments: AccessCheckers.all)
    func staticVM(checker: NamedChecker) async throws {
        let state = try ScratchDirectory()
        let images = try ImagesDirectory()
        let driver = try driver(state, checker: checker.checker)
        let img = try images.image("Static_VM1.img", label: virtImage)
        let domain = try images.domain("Static_VM1")
        await #expect {
            _ = try await driver.labelAll(for: domain)
        } throws: { e in
            let m = (e as? SVirtError)?.message ?? ""
            return (e as? SVirtError)?.code == .preflight
                && m.contains("its process label system_u:system_r:svirt_t:s0:c1022,c1023 may not use one of its resources")
                && m.contains("(system_u:object_r:virt_image_t:s0): svirt_t may not read and write it")
                && m.contains("no rule that lets svirt_t use virt_image_t files")
                && m.contains("run 'chcon -t svirt_image_t \(img)' or set relabel='yes'")
        }
        #expect(try fileLabel(img) == virtImage)
        #expect(try svirtAttributes(img).isEmpty)
        #expect(try await driver.registry.reservations().isEmpty, "a failed start releases its level")

        #expect(try run("/usr/bin/chcon", ["-t", "svirt_image_t", img]).status == 0)
        let ok = try await driver.labelAll(for: domain)
        #expect(ok.label.process?.description == "system_u:system_r:svirt_t:s0:c1022,c1023")
        #expect(ok.preflight.checks.count == 1 && ok.preflight.checks.first?.decision == .allowed)
        #expect(try fileLabel(img) == "system_u:object_r:svirt_image_t:s0", "relabel='no': untouched")
        #expect(try await driver.registry.reservations().map(\.level.description) == ["s0:c1022,c1023"])
        _ = try await driver.restoreAll(for: domain)
        #expect(try fileLabel(img) == "system_u:object_r:svirt_image_t:s0")
        #expect(try await driver.registry.reservations().isEmpty)
    }
}
