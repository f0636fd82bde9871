import Foundation
import SELinux
import SELinuxPolicy
import Testing
@testable import SVirt

/// The isolation matrix over Debian's real policies, with files held in memory (the CLI tests use real files).
@Suite("isolation matrix")
struct IsolationMatrixTests {
    static let defaultPolicy = "/etc/selinux/default/policy/policy.33"
    static let mlsPolicy = "/etc/selinux/mls/policy/policy.33"

    static func checker(_ path: String) throws -> PolicyAccessChecker {
        let data = try #require(FileManager.default.contents(atPath: path), "\(path) is missing (selinux-policy-default/-mls)")
        return PolicyAccessChecker(policy: try PolicyDatabase(bytes: [UInt8](data), source: path), source: path)
    }

    /// A VM with the given disks (path, extra XML) and seclabel, labelled at `level` when dynamic.
    static func subject(_ name: String, disks: [(String, String)], seclabel: String = "", level: String? = nil,
                        store: InMemoryFileLabelStore) throws -> IsolationMatrix.Subject {
        let devices = disks.enumerated().map { i, d in
            // A <seclabel> goes inside <source>; anything else after <target>.
            let inSource = d.1.hasPrefix("<seclabel")
            return Fixtures.fileDisk(d.0, target: "vd\(["a", "b", "c"][i])", extra: inSource ? "" : d.1, source: inSource ? d.1 : "")
        }.joined(separator: "\n")
        for d in disks where store.label(d.0) == nil { store.add(d.0, label: "system_u:object_r:virt_image_t:s0") }
        let domain = try Fixtures.parse(Fixtures.domain(name: name, devices: devices, seclabel: seclabel))
        let generator = try Fixtures.generator(manager: Fixtures.context("system_u:system_r:unconfined_t:s0-s0:c0.c1023"))
        let label = try generator.generateLabel(for: domain, level: Fixtures.level(level ?? "s0:c0,c1")).label
        let plan = try LabelPlanner(contexts: Fixtures.debianContexts, host: FakeHost()).plan(for: domain, label: label, mode: .restore)
        return IsolationMatrix.Subject(name: name, running: false, label: label, plan: plan, plannedLevel: level != nil)
    }

    @Test("two dynamic VMs at planned levels reach nothing of each other, under both Debian policies")
    func twoDynamic() throws {
        for path in [Self.defaultPolicy, Self.mlsPolicy] {
            let store = InMemoryFileLabelStore()
            let levels = IsolationMatrix.plannedLevels(for: ["b", "a"], pool: try CategoryPool(level: Fixtures.level("s0:c0.c1023")),
                                                       taken: [])
            let a = try Self.subject("a", disks: [("/img/a.img", "")], level: levels["a"]?.description, store: store)
            let b = try Self.subject("b", disks: [("/img/b.img", "")], level: levels["b"]?.description, store: store)
            #expect(a.label.range.low != b.label.range.low)
            let m = try IsolationMatrix(subjects: [a, b], checker: try Self.checker(path), store: store, policySource: path)
            #expect(!m.failed, "\(path): \(m.findings.map(\.message))")
            let ra = try #require(m.resource(path: "/img/a.img")), rb = try #require(m.resource(path: "/img/b.img"))
            #expect(ra.owner == "a" && rb.owner == "b")
            let cross = try #require(m.cell("a", rb.id))
            #expect(cross.relation == .foreign && cross.state == .denied)
            // The refusal comes from the policy's MCS/MLS constraint, and says so.
            let read = try #require(cross.permissions.first { $0.name == "read" })
            #expect(!read.allowed && read.reason?.hasPrefix("constraint:") == true, "\(read)")
            let own = try #require(m.cell("a", ra.id))
            #expect(own.state == .own && ["read", "write", "open", "getattr"].allSatisfy(own.allowed.contains))
            let ptrace = try #require(m.cell("a", "process:b")?.permissions.first { $0.name == "ptrace" })
            #expect(!ptrace.allowed)
        }
    }

    @Test("a static VM at s0:c1,c2,c3 beside a dynamic s0:c1,c2 is a FAIL that names both, and reaches its image")
    func dominance() throws {
        let store = InMemoryFileLabelStore()
        let st = try Self.subject("static1", disks: [("/img/s.img", "")], seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c1,c2,c3</label></seclabel>
            """, store: store)
        let dy = try Self.subject("dyn1", disks: [("/img/d.img", "")], level: "s0:c1,c2", store: store)
        let m = try IsolationMatrix(subjects: [st, dy], checker: try Self.checker(Self.defaultPolicy), store: store,
                                    policySource: Self.defaultPolicy)
        #expect(m.failed)
        let dom = try #require(m.findings.first { $0.kind == .levelDominance })
        #expect(dom.vms == ["static1", "dyn1"])
        #expect(dom.message.contains("'static1' (\(Fixtures.level("s0:c1,c2,c3")))") && dom.message.contains("'dyn1' (s0:c1,c2)")
                && dom.message.contains("dominates"), "\(dom.message)")
        let d = try #require(m.resource(path: "/img/d.img"))
        let cross = try #require(m.cell("static1", d.id))
        #expect(cross.state == .fail && cross.allowed.contains("read") && cross.allowed.contains("write"))
        #expect(m.findings.contains { $0.kind == .crossAccess && $0.vms == ["static1", "dyn1"] })
        // The other way round stays closed.
        let s = try #require(m.resource(path: "/img/s.img"))
        #expect(m.cell("dyn1", s.id)?.state == .denied)
    }

    @Test("a VM without a label that uses another VM's private image is a FAIL")
    func unlabelledReachesPrivate() throws {
        let store = InMemoryFileLabelStore()
        store.add("/img/a.img", label: "system_u:object_r:svirt_image_t:s0:c1,c2")
        let a = try Self.subject("a", disks: [("/img/a.img", "")], level: "s0:c1,c2", store: store)
        let thief = try Self.subject("thief", disks: [("/img/a.img", "<readonly/><shareable/>")],
                                     seclabel: "<seclabel type='none'/>", store: store)
        #expect(thief.label.process == nil)
        let m = try IsolationMatrix(subjects: [a, thief], checker: try Self.checker(Self.defaultPolicy), store: store,
                                    policySource: Self.defaultPolicy)
        #expect(m.failed)
        let r = try #require(m.resource(path: "/img/a.img"))
        #expect(r.owner == "a")
        let f = try #require(m.findings.first { $0.kind == .crossAccess && $0.vms == ["thief", "a"] })
        #expect(f.severity == .fail && f.message.contains("/img/a.img") && f.message.contains("type='none'"), "\(f.message)")
        // Without the thief the same VM passes.
        let alone = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), store: store,
                                        policySource: Self.defaultPolicy)
        #expect(!alone.failed)
    }

    @Test("a static range s0-s0:c0.c1023 dominates each dynamic VM, which do not dominate it; equal levels are said once")
    func rangeDominance() throws {
        let store = InMemoryFileLabelStore()
        let wide = try Self.subject("wide", disks: [("/img/w.img", "")], seclabel: """
            <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0-s0:c0.c1023</label></seclabel>
            """, store: store)
        let a = try Self.subject("a", disks: [("/img/a.img", "")], level: "s0:c1,c2", store: store)
        let b = try Self.subject("b", disks: [("/img/b.img", "")], level: "s0:c1,c2", store: store)
        let m = try IsolationMatrix(subjects: [wide, a, b], checker: try Self.checker(Self.defaultPolicy), store: store,
                                    policySource: Self.defaultPolicy)
        let dom = m.findings.filter { $0.kind == .levelDominance }.map(\.vms)
        #expect(dom == [["wide", "a"], ["wide", "b"], ["a", "b"]], "\(dom)")
        #expect(m.findings.first { $0.vms == ["a", "b"] && $0.kind == .levelDominance }?.message.contains("the same level") == true)
        // The policy agrees: the wide VM reads a's image, a does not read the wide VM's.
        let w = try #require(m.resource(path: "/img/w.img")), ai = try #require(m.resource(path: "/img/a.img"))
        #expect(w.owner == "wide" && m.cell("wide", ai.id)?.state == .fail && m.cell("a", w.id)?.state == .denied)
    }

    @Test("a running VM is checked with the label its file has: a disk relabelled behind svirt's back is an own-access FAIL with a warning")
    func runningUsesDiskLabel() throws {
        let store = InMemoryFileLabelStore()
        var a = try Self.subject("a", disks: [("/img/a.img", "")], level: "s0:c1,c2", store: store)
        let planned = try #require(a.plan.entries.first?.context?.description)
        // Defined: the planned label, whatever the file has now.
        let defined = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), store: store, policySource: "p")
        #expect(defined.resource(path: "/img/a.img")?.context == planned && !defined.failed && defined.warnings.isEmpty)
        // Running: the file keeps virt_image_t:s0 (svirt's label was undone), and the policy refuses svirt_t that type.
        a.running = true
        let running = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), store: store, policySource: "p")
        let r = try #require(running.resource(path: "/img/a.img"))
        #expect(r.context == "system_u:object_r:virt_image_t:s0")
        #expect(running.findings.contains { $0.kind == .ownAccess && $0.vms == ["a"] })
        #expect(running.warnings.contains { $0.contains("/img/a.img") && $0.contains(planned) })
        store.add("/img/a.img", label: planned)
        let relabelled = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), store: store, policySource: "p")
        #expect(!relabelled.failed && relabelled.warnings.isEmpty)
    }

    @Test("a shared disk is INFO under the default policy; under mls writing it is refused, so the writer FAILs")
    func sharedDisk() throws {
        for (path, writerFails) in [(Self.defaultPolicy, false), (Self.mlsPolicy, true)] {
            let store = InMemoryFileLabelStore()
            let a = try Self.subject("a", disks: [("/img/a.img", ""), ("/img/shared.img", "<shareable/>")], level: "s0:c1,c2",
                                     store: store)
            let b = try Self.subject("b", disks: [("/img/b.img", ""), ("/img/shared.img", "<shareable/>")], level: "s0:c3,c4",
                                     store: store)
            let m = try IsolationMatrix(subjects: [a, b], checker: try Self.checker(path), store: store, policySource: path)
            let shared = try #require(m.resource(path: "/img/shared.img"))
            #expect(shared.isShared && shared.context == "system_u:object_r:svirt_image_t:s0")
            let info = m.findings.filter { $0.kind == .sharedResource && $0.target == shared.id }
            #expect(info.count == 1 && info.first?.severity == .info && Set(info.first?.vms ?? []) == ["a", "b"])
            let own = m.findings.filter { $0.kind == .ownAccess }
            #expect(writerFails == !own.isEmpty, "\(path): \(own.map(\.message))")
            #expect(m.failed == writerFails)
            if writerFails {
                #expect(Set(own.map { $0.vms[0] }) == ["a", "b"])
                let write = try #require(m.cell("a", shared.id)?.permissions.first { $0.name == "write" })
                #expect(!write.allowed && write.reason?.hasPrefix("constraint:") == true)
                #expect(m.cell("a", shared.id)?.state == .fail)
            } else {
                #expect(m.cell("a", shared.id)?.state == .shared)
            }
        }
    }

    @Test("boolean overrides change the decisions: an NFS disk fails until virt_use_nfs is on; an unknown boolean is an error naming it")
    func booleans() throws {
        let store = InMemoryFileLabelStore()
        store.add("/nfs/a.img", label: "system_u:object_r:nfs_t:s0")
        let a = try Self.subject("a", disks: [("/nfs/a.img", "<seclabel model='selinux' relabel='no'/>")],
                                 level: "s0:c1,c2", store: store)
        let off = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), booleans: ["virt_use_nfs": false],
                                      store: store, policySource: "p")
        let r = try #require(off.resource(path: "/nfs/a.img"))
        #expect(r.context == "system_u:object_r:nfs_t:s0" && r.isShared)
        let read = try #require(off.cell("a", r.id)?.permissions.first { $0.name == "read" })
        #expect(!read.allowed && read.reason?.contains("virt_use_nfs") == true, "\(read)")
        #expect(off.failed && off.findings.contains { $0.kind == .ownAccess && $0.message.contains("virt_use_nfs") })
        let on = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), booleans: ["virt_use_nfs": true],
                                     store: store, policySource: "p")
        #expect(!on.failed && on.cell("a", r.id)?.state == .shared, "\(on.findings)")
        #expect(on.booleans == ["virt_use_nfs": true])
        do {
            _ = try IsolationMatrix(subjects: [a], checker: try Self.checker(Self.defaultPolicy), booleans: ["no_such_bool": true],
                                    store: store, policySource: "p")
            Issue.record("an unknown boolean must be refused")
        } catch let e as SVirtError {
            #expect(e.message.contains("no_such_bool"))
        }
    }

    @Test("the policy engine's checkEach gives, per permission, the decision and reason check gives for it alone")
    func checkEachAgrees() throws {
        for path in [Self.defaultPolicy, Self.mlsPolicy] {
            let checker = try Self.checker(path)
            let vm = Fixtures.context("system_u:system_r:svirt_t:s0:c1,c2")
            let targets = ["system_u:object_r:svirt_image_t:s0:c1,c2", "system_u:object_r:svirt_image_t:s0:c3,c4",
                           "system_u:object_r:svirt_image_t:s0", "system_u:object_r:nfs_t:s0", "system_u:system_r:svirt_t:s0:c5,c6"]
            for t in targets.map(Fixtures.context) {
                let cls = t.role == "system_r" ? "process" : "file"
                let perms = cls == "process" ? IsolationMatrix.processPermissions : IsolationMatrix.filePermissions
                let each = try checker.checkEach(source: vm, target: t, objectClass: cls, permissions: perms)
                let one = try perms.map { try checker.check(source: vm, target: t, objectClass: cls, permissions: [$0]) }
                #expect(each == one, "\(path) \(t) \(cls)")
            }
        }
    }

    static let audit2why: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return false }
        return (try? Self.python("import selinux.audit2why", input: "").status) == 0
    }()

    static func python(_ script: String, _ args: [String] = [], input: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script] + args
        let i = Pipe(), o = Pipe()
        p.standardInput = i
        p.standardOutput = o
        p.standardError = FileHandle.nullDevice
        try p.run()
        i.fileHandleForWriting.write(Data(input.utf8))
        try i.fileHandleForWriting.close()
        let data = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("every permission of every cell is what libsepol (audit2why) decides, under both Debian policies",
          .enabled(if: audit2why, "needs /usr/bin/python3 with python3-selinux"))
    func libsepolAgrees() throws {
        for path in [Self.defaultPolicy, Self.mlsPolicy] {
            let store = InMemoryFileLabelStore()
            let a = try Self.subject("a", disks: [("/img/a.img", ""), ("/img/shared.img", "<shareable/>")], level: "s0:c1,c2",
                                     store: store)
            let b = try Self.subject("b", disks: [("/img/b.img", ""), ("/img/shared.img", "<shareable/><readonly/>")],
                                     level: "s0:c3,c4", store: store)
            let s = try Self.subject("s", disks: [("/img/s.img", "")], seclabel: """
                <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c1,c2,c3</label></seclabel>
                """, store: store)
            let m = try IsolationMatrix(subjects: [a, b, s], checker: try Self.checker(path), store: store, policySource: path)
            var queries: [(String, Bool)] = []
            for c in m.cells {
                let source = try #require(m.machines.first { $0.name == c.vm }?.process)
                let target: String
                if c.target.hasPrefix("process:") {
                    target = try #require(m.machines.first { "process:\($0.name)" == c.target }?.process)
                } else {
                    target = try #require(m.resources.first { $0.id == c.target }?.context)
                }
                for p in c.permissions { queries.append(("\(source) \(target) \(c.objectClass) \(p.name)", p.allowed)) }
            }
            let script = """
                import sys, selinux.audit2why as a
                a.init(sys.argv[1])
                for line in sys.stdin:
                    s, t, c, p = line.split()
                    rc, _ = a.analyze(s, t, c, [p])
                    print(rc)
                """
            let r = try Self.python(script, [path], input: queries.map(\.0).joined(separator: "\n") + "\n")
            let answers = r.out.split(separator: "\n").map { Int($0) == 0 }
            try #require(r.status == 0 && answers.count == queries.count, "audit2why gave \(answers.count) answers for \(queries.count)")
            let differ = zip(queries, answers).filter { $0.0.1 != $0.1 }.map(\.0.0)
            #expect(differ.isEmpty, "\(path): svirt and libsepol disagree on \(differ)")
            #expect(queries.contains { $0.1 } && queries.contains { !$0.1 })
        }
    }

    @Test("planned levels are the lowest free pairs, incomparable with every taken level")
    func planned() throws {
        let pool = try CategoryPool(level: Fixtures.level("s0:c0.c7"))
        let l = IsolationMatrix.plannedLevels(for: ["y", "x", "z"], pool: pool, taken: [Fixtures.level("s0:c0,c1,c2")])
        // c0,c1 c0,c2 c1,c2 are dominated by the taken level; next are c0,c3, c1,c3, c2,c3.
        #expect(l["x"] == Fixtures.level("s0:c0,c3") && l["y"] == Fixtures.level("s0:c1,c3") && l["z"] == Fixtures.level("s0:c2,c3"))
        // An equal level is taken too; names are served in sorted order whatever order they come in.
        let m = IsolationMatrix.plannedLevels(for: ["b", "a"], pool: pool, taken: [Fixtures.level("s0:c0,c1")])
        #expect(m["a"] == Fixtures.level("s0:c0,c2") && m["b"] == Fixtures.level("s0:c1,c2"))
    }
}

/// The matrix decides each class of cells once (`DecisionMemo`) and, with `.findings`, keeps only the cells the
/// findings come from. Both must change nothing: every cell's answer is the checker's own, and the findings are
/// the same with either detail.
@Suite("isolation matrix at scale: one decision per class of cells")
struct IsolationMatrixScaleTests {
    typealias T = IsolationMatrixTests

    /// VMs of every kind, drawn with a fixed seed: dynamic pairs (some equal, some sharing a category), static
    /// levels that dominate others, a range, an unconfined static, a VM without a label, shared and read-only disks.
    static func subjects(seed: UInt64, count: Int, store: InMemoryFileLabelStore) throws -> [IsolationMatrix.Subject] {
        var rng = SeededGenerator(seed: seed)
        var out: [IsolationMatrix.Subject] = []
        for i in 0..<count {
            let name = "vm\(i)"
            var disks = [("/img/\(name).img", "")]
            if Int.random(in: 0..<4, using: &rng) == 0 { disks.append(("/img/shared.img", "<shareable/>")) }
            if Int.random(in: 0..<5, using: &rng) == 0 { disks.append(("/img/iso.img", "<readonly/>")) }
            let a = Int.random(in: 0..<6, using: &rng), b = a + 1 + Int.random(in: 0..<3, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                out.append(try T.subject(name, disks: disks, seclabel: """
                    <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c\(a),c\(b),c\(b + 1)</label></seclabel>
                    """, store: store))
            case 1:
                out.append(try T.subject(name, disks: disks, seclabel: """
                    <seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0-s0:c0.c\(b)</label></seclabel>
                    """, store: store))
            case 2:
                out.append(try T.subject(name, disks: disks, seclabel: """
                    <seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:unconfined_t:s0:c\(a),c\(b)</label></seclabel>
                    """, store: store))
            case 3:
                out.append(try T.subject(name, disks: disks, seclabel: "<seclabel type='none'/>", store: store))
            default:
                out.append(try T.subject(name, disks: disks, level: "s0:c\(a),c\(b)", store: store))
            }
        }
        return out
    }

    /// The VMs of `subjects(seed:count:store:)`, their files, and the checker over `policy`.
    static func setting(seed: Int, count: Int, policy: String) throws
        -> (InMemoryFileLabelStore, [IsolationMatrix.Subject], PolicyAccessChecker) {
        let store = InMemoryFileLabelStore()
        let subjects = try subjects(seed: UInt64(seed), count: count, store: store)
        return (store, subjects, try T.checker(policy))
    }

    @Test("every cell's answer is the checker's own, asked directly, under both Debian policies", arguments: [1, 2])
    func memoIsTheChecker(seed: Int) throws {
        for path in [T.defaultPolicy, T.mlsPolicy] {
            let (store, subjects, checker) = try Self.setting(seed: seed, count: 14, policy: path)
            let m = try IsolationMatrix(subjects: subjects, checker: checker, store: store, policySource: path, detail: .full)
            #expect(m.decisions < m.cells.count, "\(m.decisions) decisions for \(m.cells.count) cells")
            let process = Dictionary(m.machines.compactMap { mm in mm.process.map { (mm.name, $0) } }, uniquingKeysWith: { a, _ in a })
            let contexts = Dictionary(m.resources.map { ($0.id, $0.context) }, uniquingKeysWith: { a, _ in a })
            for c in m.cells {
                let source = try SecurityContext(parsing: try #require(process[c.vm]))
                let targetText = c.target.hasPrefix("process:") ? process[String(c.target.dropFirst(8))] : contexts[c.target]
                let target = try SecurityContext(parsing: try #require(targetText))
                let direct = try IsolationMatrix.ask(checker, source, target, c.objectClass, c.permissions.map(\.name))
                #expect(direct == c.permissions, "\(path) \(c.vm) → \(c.target)")
            }
        }
    }

    @Test("with .findings the findings, the verdict and the kept cells are those of .full; every cell left out refuses every access",
          arguments: [3, 4, 5])
    func findingsEqualFull(seed: Int) throws {
        for path in [T.defaultPolicy, T.mlsPolicy] {
            let (store, subjects, checker) = try Self.setting(seed: seed, count: 24, policy: path)
            let full = try IsolationMatrix(subjects: subjects, checker: checker, store: store, policySource: path, detail: .full)
            let lean = try IsolationMatrix(subjects: subjects, checker: checker, store: store, policySource: path, detail: .findings)
            #expect(lean.findings == full.findings, "\(path) seed \(seed)")
            #expect(lean.failed == full.failed)
            #expect(lean.resources == full.resources && lean.machines == full.machines)
            #expect(lean.cells.count + lean.omittedCells == full.cells.count)
            #expect(lean.omittedCells > 0)
            let kept = Set(lean.cells)
            #expect(kept.isSubset(of: Set(full.cells)))
            for c in full.cells where !kept.contains(c) {
                #expect(c.state == .denied && IsolationMatrix.crossing(c).isEmpty, "\(c)")
            }
            // .automatic keeps every cell up to the limit
            let auto = try IsolationMatrix(subjects: subjects, checker: checker, store: store, policySource: path, detail: .automatic)
            #expect(auto.detail == .full && auto.cells == full.cells)
        }
    }
}
