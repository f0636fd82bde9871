import Foundation
import Glibc
import SVirt
import Testing
@testable import SVirtLinux
import SVirtTestSupport

/// The API the CLI and the web console share: import, clone and edit over a lifecycle and its registry.
@Suite("lifecycle workflows: import, clone, edit")
struct WorkflowLifecycleTests {
    static func sparseImage(_ path: String, data: [Int]) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        ftruncate(fd, 8 << 20)
        let bytes = [UInt8](repeating: 0x77, count: 4096)
        for o in data { _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(o)) } }
    }

    @Test("a failed copy leaves no copies and defines nothing; a good clone copies and defines")
    func cloneAllOrNothing() throws {
        let dir = try TemporaryDirectory("svirt-wf")
        defer { dir.remove() }
        let lifecycle = try makeLifecycle(dir)
        let a = dir.file("a.img"), b = dir.file("b.img")
        try Self.sparseImage(a, data: [0])
        try Self.sparseImage(b, data: [1 << 20])
        let imported = ImportedDomain(name: "w", disks: [.init(path: a), .init(path: b)])
        let domain = try lifecycle.importDomain(imported)
        #expect(domain.disks.map(\.format) == [.raw, .raw])
        #expect(try lifecycle.definition(named: "w").domain == domain)
        #expect { try lifecycle.importDomain(imported) } throws: { ($0 as? SVirtError)?.code == .alreadyExists }

        // The second copy's directory does not exist: the first copy is removed again and nothing is defined.
        let first = dir.file("w2-a.img")
        let bad = try lifecycle.planClone(name: "w", newName: "w2", files: [first, dir.file("none/w2-b.img")])
        #expect(throws: (any Error).self) { try lifecycle.clone(bad) }
        #expect(!FileManager.default.fileExists(atPath: first))
        #expect(try lifecycle.local.definedDomain(named: "w2") == nil)

        var calls = 0
        let plan = try lifecycle.planClone(name: "w", newName: "w2")
        let cloned = try lifecycle.clone(plan) { p in
            calls += 1
            #expect(p.count == 2 && p.progress.done <= p.progress.total)
        }
        #expect(calls >= 4 && cloned.copies.map(\.result.written) == [4096, 4096])
        #expect(try lifecycle.definition(named: "w2").domain.disks.map(\.path) == [dir.file("a-clone.img"), dir.file("b-clone.img")])
        #expect { try lifecycle.planClone(name: "w", newName: "w2") } throws: { ($0 as? SVirtError)?.code == .alreadyExists }
        #expect { try lifecycle.planClone(name: "nope", newName: "x") } throws: { ($0 as? SVirtError)?.code == .notFound }
    }

    @Test("files a dead svirt process was creating are removed by the next reconciliation unless their domain was defined; a live one's are left")
    func pendingFilesReconciled() async throws {
        let dir = try TemporaryDirectory("svirt-wf")
        defer { dir.remove() }
        let lifecycle = try makeLifecycle(dir)
        // A pid above pid_max is never alive.
        let dead = ProcessIdentity(pid: 4_194_305, startTime: 1)
        let cutShort = [dir.file(".c.img.svirt-partial"), dir.file("c.img")]
        let finished = [dir.file("d.img")]
        let live = [dir.file(".e.img.svirt-partial")]
        for f in cutShort + finished + live { #expect(FileManager.default.createFile(atPath: f, contents: Data("x".utf8))) }
        try lifecycle.local.addPendingFiles(cutShort, owner: "never-defined", holder: dead)
        try lifecycle.local.addPendingFiles(finished, owner: "defined", holder: dead)
        try lifecycle.local.addPendingFiles(live, owner: "in-progress", holder: lifecycle.holder)
        #expect { try lifecycle.local.addPendingFiles([cutShort[1]], owner: "other", holder: lifecycle.holder) } throws: {
            ($0 as? SVirtError)?.code == .state
        }
        _ = try lifecycle.importDomain(ImportedDomain(name: "defined", disks: [.init(path: finished[0])]))

        _ = await lifecycle.reconcile()
        #expect(cutShort.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        #expect(FileManager.default.fileExists(atPath: finished[0]) && FileManager.default.fileExists(atPath: live[0]))
        #expect(try lifecycle.local.pendingFiles().map(\.owner) == ["in-progress"])
    }

    @Test("checkEdit: unchanged text (an editor's final newline aside) is nil, bad XML and a label the policy rejects throw, a good edit is returned",
          .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/policy/policy.33"), "needs the Debian policy"))
    func checkEdit() throws {
        let dir = try TemporaryDirectory("svirt-wf")
        defer { dir.remove() }
        let lifecycle = try makeLifecycle(dir)
        let a = dir.file("e.img")
        try Self.sparseImage(a, data: [])
        _ = try lifecycle.importDomain(ImportedDomain(name: "e", disks: [.init(path: a, format: .raw)]))
        let original = try lifecycle.editableXML(of: "e")
        #expect(try lifecycle.checkEdit(original: original, edited: original + "\n") == nil)
        #expect { try lifecycle.checkEdit(original: original, edited: "<domain>") } throws: { ($0 as? SVirtError)?.code == .invalidDomain }
        let rejected = original.replacingOccurrences(
            of: "</devices>", with: "</devices><seclabel type='static' model='selinux' relabel='no'><label>user_u:system_r:svirt_t:s0:c1,c2</label></seclabel>")
        #expect { try lifecycle.checkEdit(original: original, edited: rejected) } throws: {
            ($0 as? SVirtError)?.message.contains("user user_u may not have role system_r") == true
        }
        let good = rejected.replacingOccurrences(of: "user_u:", with: "system_u:")
        #expect(try lifecycle.checkEdit(original: original, edited: good)?.selinuxSeclabel.label == "system_u:system_r:svirt_t:s0:c1,c2")
        guard case .defined(let d, .updated) = try lifecycle.saveEdit(of: "e", original: original, edited: good) else {
            Issue.record("a good edit is defined")
            return
        }
        #expect(try lifecycle.definition(named: "e").domain == d)
        guard case .unchanged = try lifecycle.setSeclabel(of: "e", d.selinuxSeclabel) else {
            Issue.record("setting the label it has changes nothing")
            return
        }
    }
}

@Suite("workflow inputs never trap")
struct WorkflowNeverTrapTests {
    @Test("random --disk and --set-seclabel text is read or refused with an SVirtError, never a crash")
    func randomText() {
        var rng = SeededRandom(seed: 0x5EC1AB)
        let alphabet = Array("/,=:.abcdefqrstuwxyz0123456789_-shareablereadonlyformat=qcow2device=cdrombus=static:dynamic:none:s0:c1,c2 \u{0}é")
        for _ in 0..<3000 {
            let n = Int(rng.next() % 48)
            let text = String((0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            do { _ = try ImportedDomain.ImportedDisk.parse(text) } catch { #expect(error is SVirtError, "\(text): \(error)") }
            do { _ = try DomainDefinition.seclabel(spec: text, relabel: nil) } catch { #expect(error is SVirtError, "\(text): \(error)") }
        }
    }
}
