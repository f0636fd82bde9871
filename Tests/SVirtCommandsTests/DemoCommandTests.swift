import Foundation
import Glibc
import Testing

@Suite("svirt demo", .serialized)
struct DemoCommandTests {
    /// The scratch directory the demo named on its third line.
    func scratchDirectory(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("Scratch directory: ") }
            .map { String($0.dropFirst("Scratch directory: ".count).split(separator: " ")[0]) }
    }

    @Test("as root, the demo runs the chapter with real guests, prints its tables and listings, and cleans up",
          .enabled(if: getuid() == 0, "needs root"), arguments: [false, true])
    func chapter(standIn: Bool) throws {
        try requireSVirt()
        let r = try svirt(["demo"] + (standIn ? ["--stand-in"] : []))
        #expect(r.status == 0, "\(r.stderr)\n\(r.stdout)")
        let out = r.stdout
        for heading in ["Dynamically assigned security context", "Static security context", "# ls -lZ", "# ps -eZ"] {
            #expect(out.contains(heading), "missing \(heading)")
        }
        // Static_VM1 is refused by the preflight, then starts after the relabel.
        #expect(out.contains("error: 'Static_VM1' cannot start: its process label system_u:system_r:svirt_t:s0:c1022,c1023 may not use"))
        #expect(out.contains("# chcon -t svirt_image_t Static_VM1.img"))
        #expect(out.contains("# svirt start Static_VM1\nDomain 'Static_VM1' started"))
        // Static_VM2 starts only while virt_transition_userdomain is on, and runs unconfined.
        #expect(out.contains("start a process in unconfined_t only while the boolean virt_transition_userdomain is on"))
        #expect(out.contains("Domain 'Static_VM2' started"))
        #expect(out.contains("Security label: system_u:system_r:unconfined_t:s0:c11,c22 (unconfined)"))
        // Dynamic_VM1's own QEMU is refused Dynamic_VM2's image and opens its own.
        #expect(out.contains("Dynamic_VM2.img': Permission denied"))
        #expect(out.contains("{\"return\":{}}"))
        // The check over the running dynamic and shared VMs, from the policy: each private image only its own VM's,
        // the shared image reachable by all, and no FAIL.
        #expect(out.contains("# svirt check Dynamic_VM1 Dynamic_VM2 Shareable_VM Shareable_VM-clone"))
        #expect(out.contains("INFO shared-resource:") && out.contains("result: PASS") && !out.contains("\nFAIL"))
        // Everything is given back: the last listing is the chapter's "both VMs stopped" state, owned by root.
        let last = try #require(out.components(separatedBy: "# ls -lZ").last)
        for (image, label) in [("Dynamic_VM1.img", "system_u:object_r:virt_image_t:s0"), ("Dynamic_VM2.img", "system_u:object_r:virt_image_t:s0"),
                               ("Shareable_VM.img", "system_u:object_r:svirt_image_t:s0"),
                               ("Static_VM1.img", "system_u:object_r:svirt_image_t:s0:c1022,c1023"),
                               ("Static_VM2.img", "system_u:object_r:virt_image_t:s0")] {
            let line = try #require(last.split(separator: "\n").first { $0.hasSuffix(" " + image) }, "no line for \(image)")
            let fields = line.split(separator: " ")
            #expect(fields[1] == "root" && fields[2] == "root" && fields[3] == label, "\(line)")
        }
        let scratch = try #require(scratchDirectory(out))
        #expect(!FileManager.default.fileExists(atPath: scratch), "the scratch directory \(scratch) was left behind")
    }

    /// A copy of svirt that user 65534 can run (its toolchain libraries must be reachable too), or nil.
    static let userCopy: String? = {
        guard getuid() == 0, let dir = try? scratch("svirt-demo-user") else { return nil }
        chmod(dir, 0o755)
        guard (try? FileManager.default.copyItem(atPath: svirtBinary, toPath: "\(dir)/svirt")) != nil,
              let r = try? run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "\(dir)/svirt", "--version"]),
              r.status == 0 else { return nil }
        return dir
    }()

    @Test("as another user, the demo explains what it would do and fails",
          .enabled(if: userCopy != nil, "needs root, and a svirt the unprivileged user can run"))
    func nonRoot() throws {
        let dir = try #require(Self.userCopy)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "HOME=\(dir)",
                                             "XDG_STATE_HOME=\(dir)/state", "\(dir)/svirt", "demo"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("It needs root"))
        #expect(r.stdout.contains("Dynamic_VM1") && r.stdout.contains("svirt_image_t"))
        #expect(r.stderr.contains("error: svirt demo needs root"))
    }
}
