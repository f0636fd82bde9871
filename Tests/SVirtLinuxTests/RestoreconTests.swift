import Foundation
import Glibc
import SELinux
import SVirtLinux
import Synchronization
import Testing

@Suite("restorecon", .enabled(if: getuid() == 0, "needs root to write security.* and trusted.* attributes"))
struct RestoreconTests {
    /// A tree under a new temporary directory, and file_contexts lines written for that directory.
    final class Tree {
        let root: String
        init() throws {
            root = NSTemporaryDirectory() + "svirt-restorecon-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }

        var escapedRoot: String {
            root.map { "._-".contains($0) ? "\\\($0)" : String($0) }.joined()
        }

        func file(_ relative: String) throws {
            let p = "\(root)/\(relative)"
            try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: p, contents: Data("x".utf8))
        }

        func fileContexts(_ lines: String) throws -> FileContexts {
            try FileContexts(parsing: lines.replacingOccurrences(of: "ROOT", with: escapedRoot), path: "test_file_contexts")
        }
    }

    static func label(_ path: String) -> String? {
        (try? ExtendedAttributes.get(ExtendedAttributes.selinux, path: path))?.map(ExtendedAttributes.string)
    }

    static func setLabel(_ path: String, _ context: String) throws {
        try ExtendedAttributes.set(ExtendedAttributes.selinux, value: Array(context.utf8) + [0], path: path)
    }

    /// Runs restorecon and returns its summary and events.
    static func run(_ fc: FileContexts, _ paths: [String], _ options: Restorecon.Options) -> (Restorecon.Summary, [Restorecon.Event]) {
        let events = Mutex<[Restorecon.Event]>([])
        let summary = Restorecon(fileContexts: fc, options: options).run(paths, events: { e in events.withLock { $0.append(e) } })
        return (summary, events.withLock { $0 })
    }

    let lines = """
        ROOT(/.*)?\tsystem_u:object_r:var_t:s0
        ROOT/images(/.*)?\tsystem_u:object_r:virt_image_t:s0
        ROOT/images/iso\t-d\tsystem_u:object_r:virt_content_t:s0
        ROOT/scratch/.*\t<<none>>
        """

    @Test("a hard-linked file gets one label, its first path's, as setfiles gives it: a link elsewhere does not relabel it")
    func hardLinks() throws {
        let tree = try Tree()
        try tree.file("images/system.img")
        let system = "\(tree.root)/images/system.img"
        try Self.setLabel(system, "system_u:object_r:virt_image_t:s0")
        try tree.file("other/placeholder")
        let link = "\(tree.root)/other/link"
        #expect(Glibc.link(system, link) == 0)
        let fc = try tree.fileContexts(lines)
        // The system path first (as one argument walked before the other), then the user's link.
        let (summary, events) = Self.run(fc, [system, link], Restorecon.Options())
        #expect(Self.label(system) == "system_u:object_r:virt_image_t:s0")
        #expect(summary.conflicting == 1 && summary.relabeled == 0, "\(summary)")
        let conflict = events.compactMap { e -> (String, String, String)? in
            if case .conflictingSpecifications(let p, let o, let u) = e {
                return (String(decoding: p, as: UTF8.self), String(decoding: o, as: UTF8.self), u)
            }
            return nil
        }
        #expect(conflict.count == 1)
        #expect(conflict.first?.0 == link && conflict.first?.1 == system && conflict.first?.2 == "system_u:object_r:virt_image_t:s0")
        // Two paths with the same default: labelled once, no conflict.
        try tree.file("images/two.img")
        #expect(Glibc.link("\(tree.root)/images/two.img", "\(tree.root)/images/two-again.img") == 0)
        let (again, _) = Self.run(fc, ["\(tree.root)/images"], Restorecon.Options(recursive: true, threads: 2))
        #expect(again.conflicting == 0 && again.failed == 0)
        #expect(Self.label("\(tree.root)/images/two.img") == "system_u:object_r:virt_image_t:s0")
    }

    @Test("-R sets every file in the tree to its default context, and labels symlinks without following them")
    func recursive() throws {
        let tree = try Tree()
        for f in ["images/a.img", "images/iso/x.iso", "images/deep/er/b.qcow2", "other/c", "scratch/keep"] { try tree.file(f) }
        let outside = try Tree()
        try outside.file("target")
        try Self.setLabel("\(outside.root)/target", "system_u:object_r:etc_t:s0")
        try FileManager.default.createSymbolicLink(atPath: "\(tree.root)/images/link", withDestinationPath: "\(outside.root)/target")
        try Self.setLabel("\(tree.root)/scratch/keep", "system_u:object_r:tmp_t:s0")
        let fc = try tree.fileContexts(lines)

        let (summary, _) = Self.run(fc, [tree.root], Restorecon.Options(recursive: true, threads: 3))
        #expect(Self.label("\(tree.root)/images/a.img") == "system_u:object_r:virt_image_t:s0")
        #expect(Self.label("\(tree.root)/images/deep/er/b.qcow2") == "system_u:object_r:virt_image_t:s0")
        #expect(Self.label("\(tree.root)/images/iso") == "system_u:object_r:virt_content_t:s0")
        #expect(Self.label("\(tree.root)/images/iso/x.iso") == "system_u:object_r:virt_image_t:s0")
        #expect(Self.label("\(tree.root)/other/c") == "system_u:object_r:var_t:s0")
        #expect(Self.label("\(tree.root)") == "system_u:object_r:var_t:s0")
        // The link itself is labelled; its target outside the tree keeps its label.
        #expect(Self.label("\(tree.root)/images/link") == "system_u:object_r:virt_image_t:s0")
        #expect(Self.label("\(outside.root)/target") == "system_u:object_r:etc_t:s0")
        // <<none>> leaves the label alone.
        #expect(Self.label("\(tree.root)/scratch/keep") == "system_u:object_r:tmp_t:s0")
        #expect(summary.noDefaultLabel == 1)
        #expect(summary.checked == 13)
        #expect(summary.failed == 0)

        let (again, _) = Self.run(fc, [tree.root], Restorecon.Options(recursive: true))
        #expect(again.relabeled == 0)
        #expect(again.unchanged == 12)
    }

    @Test("-n changes no label and reports every label it would change")
    func dryRun() throws {
        let tree = try Tree()
        try tree.file("images/a.img")
        try Self.setLabel("\(tree.root)/images/a.img", "system_u:object_r:svirt_image_t:s0:c1,c2")
        let fc = try tree.fileContexts(lines)
        let (summary, events) = Self.run(fc, [tree.root], Restorecon.Options(dryRun: true, recursive: true))
        #expect(Self.label("\(tree.root)/images/a.img") == "system_u:object_r:svirt_image_t:s0:c1,c2")
        #expect(Self.label("\(tree.root)") == nil)
        #expect(summary.relabeled == 3)
        let changes = events.compactMap { e -> String? in
            guard case .relabeled(let p, let from, let to, true) = e else { return nil }
            return "\(String(decoding: p, as: UTF8.self)) \(from ?? "-") \(to)"
        }
        #expect(changes.contains("\(tree.root)/images/a.img system_u:object_r:svirt_image_t:s0:c1,c2 system_u:object_r:virt_image_t:s0"))
    }

    @Test("a file svirt labelled for a running VM is skipped and reported, unless forced")
    func heldBySVirt() throws {
        let tree = try Tree()
        try tree.file("images/held.img")
        try tree.file("images/released.img")
        let held = "\(tree.root)/images/held.img", released = "\(tree.root)/images/released.img"
        for p in [held, released] {
            try Self.setLabel(p, "system_u:object_r:svirt_image_t:s0:c10,c20")
            try ExtendedAttributes.set(Restorecon.rememberedLabelAttribute, value: Array("system_u:object_r:virt_image_t:s0".utf8), path: p)
        }
        try ExtendedAttributes.set(Restorecon.referenceCountAttribute, value: Array("2".utf8), path: held)
        try ExtendedAttributes.set(Restorecon.referenceCountAttribute, value: Array("0".utf8), path: released)
        let fc = try tree.fileContexts(lines)

        let (summary, events) = Self.run(fc, [held, released], Restorecon.Options())
        #expect(Self.label(held) == "system_u:object_r:svirt_image_t:s0:c10,c20")
        #expect(Self.label(released) == "system_u:object_r:virt_image_t:s0")
        #expect(summary.skippedHeldBySVirt == 1)
        let skips = events.compactMap { e -> String? in
            guard case .skippedHeldBySVirt(let p, let count, _, let original) = e else { return nil }
            return "\(String(decoding: p, as: UTF8.self)) \(count) \(original ?? "-")"
        }
        #expect(skips == ["\(held) 2 system_u:object_r:virt_image_t:s0"])

        let (forced, _) = Self.run(fc, [held], Restorecon.Options(force: true))
        #expect(forced.relabeled == 1)
        #expect(Self.label(held) == "system_u:object_r:virt_image_t:s0")
    }

    @Test("the parallel walk checks every entry of a wide and deep tree exactly once")
    func parallelWalk() throws {
        let tree = try Tree()
        var expected = 1
        for d in 0..<20 {
            for s in 0..<5 {
                for f in 0..<12 { try tree.file("d\(d)/s\(s)/f\(f)") }
                expected += 13
            }
            expected += 1
        }
        // A name that is not UTF-8.
        let odd = Array("\(tree.root)/d0/".utf8) + [0xFF, 0xFE, UInt8(ascii: "x")]
        var cPath = odd.map { CChar(bitPattern: $0) } + [0]
        let fd = open(&cPath, O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0)
        close(fd)
        expected += 1
        let fc = try tree.fileContexts(lines)
        let (summary, events) = Self.run(fc, [tree.root], Restorecon.Options(dryRun: true, recursive: true, threads: 4))
        #expect(summary.checked == expected)
        var seen = Set<[UInt8]>()
        for case .relabeled(let p, _, _, _) in events { #expect(seen.insert(p).inserted, "\(p) reported twice") }
        #expect(seen.count == expected)
        #expect(seen.contains(odd))
    }

    @Test("a relative argument is resolved against the working directory, without following its last component")
    func resolve() throws {
        let tree = try Tree()
        try tree.file("images/a.img")
        try FileManager.default.createSymbolicLink(atPath: "\(tree.root)/alias", withDestinationPath: "\(tree.root)/images")
        let fc = try tree.fileContexts(lines)
        let (_, events) = Self.run(fc, ["alias", "alias/a.img", "images/../images/a.img"],
                                   Restorecon.Options(dryRun: true, workingDirectory: tree.root))
        let paths = events.compactMap { e -> String? in
            guard case .relabeled(let p, _, let to, _) = e else { return nil }
            return "\(String(decoding: p, as: UTF8.self)) \(to)"
        }
        #expect(paths == ["\(tree.root)/alias system_u:object_r:var_t:s0",
                          "\(tree.root)/images/a.img system_u:object_r:virt_image_t:s0",
                          "\(tree.root)/images/a.img system_u:object_r:virt_image_t:s0"])
    }
}
