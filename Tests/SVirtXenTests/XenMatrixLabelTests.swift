import Foundation
import Testing
import SELinux
import SELinuxPolicy
import SVirt
@testable import SVirtXen

@Suite("Xen isolation matrix, MCS labels and the constraint overlay")
struct XenMatrixLabelTests {
    static func builds(_ policy: XenPolicy, _ configs: [XenDomainConfiguration]) throws -> [XenDomainBuild] {
        try configs.map { try XenDomainBuild($0, policy: policy) }
    }

    static func fixtureConfigs() throws -> [XenDomainConfiguration] { try labelCases.map(loadConfiguration) }

    @Test("domU_t guests reach each other through grants and event channels; isolated guests and the nomigrate guest do not")
    func matrixOnFixtures() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        var configs = try Self.fixtureConfigs()
        configs.append(try configuration("name = 'iso'\nseclabel = 'system_u:system_r:isolated_domU_t'\n", source: "iso.cfg"))
        let m = try XenIsolationMatrix(builds: try Self.builds(policy, configs), policy: policy)
        #expect(m.domains.map(\.name) == ["web1", "vault", "plain", "hvm1", "hvm1-dm", "iso"])
        let webPlain = try #require(m.cell("web1", "plain"))
        #expect(webPlain.reach(.grant) == .allowed && webPlain.reach(.event) == .allowed && webPlain.reach(.memory) == .denied)
        #expect(!webPlain.isolated)
        for other in ["web1", "plain", "hvm1", "vault"] {
            #expect(try #require(m.cell("iso", other)).isolated && (try #require(m.cell(other, "iso"))).isolated)
        }
        let dm = try #require(m.cell("hvm1-dm", "hvm1"))
        #expect(dm.deviceModelOfTarget && dm.reach(.memory) == .allowed)
        #expect(try #require(m.cell("hvm1-dm", "web1")).isolated)
        #expect(!m.openPairs.contains { $0.deviceModelOfTarget })
        #expect(m.openPairs.count == 6)
        // Argo is open everywhere in this policy, and reported apart.
        #expect(m.cells.allSatisfy { $0.reach(.argo) == .allowed })
        let text = m.text(policy: "svirt-xen.30")
        #expect(text.contains("web1 → plain: grant map, event channel"))
        #expect(text.contains("argo: 30 of 30 pairs"))
        #expect(text.contains("GE.A") && text.contains("...A"))
    }

    @Test("the HTML page needs no JavaScript and carries each cell's checks and reasons in a title")
    func html() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        let m = try XenIsolationMatrix(builds: try Self.builds(policy, try Self.fixtureConfigs()), policy: policy)
        let page = m.html(policy: "svirt-xen.30 <&>")
        #expect(!page.lowercased().contains("<script") && !page.lowercased().contains("onmouseover"))
        #expect(page.contains("svirt-xen.30 &lt;&amp;&gt;"))
        let cells = page.components(separatedBy: "<td ").dropFirst()
        #expect(cells.count == m.domains.count * m.domains.count)
        #expect(cells.allSatisfy { $0.hasPrefix("class=\"") && $0.contains(" title=\"") })
        #expect(page.contains("web1 → plain: not isolated&#10;grant map: allowed"))
        #expect(page.contains("denied by TE: no rule &#39;allow domU_t nomigrate_t:grant"))
        let report = m.report(policy: "p")
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"deviceModelOfTarget\":true") && !report.isolated)
        #expect(report.pairs.count == 20)
    }

    @Test("two domains with one name are refused, naming both files")
    func duplicateNames() throws {
        let policy = try loadXenPolicy("svirt-xen.30")
        let a = try configuration("name = 'same'\n", source: "a.cfg"), b = try configuration("name = 'same'\n", source: "b.cfg")
        #expect { try XenIsolationMatrix(builds: try Self.builds(policy, [a, b]), policy: policy) } throws: { e in
            "\(e)".contains("a.cfg") && "\(e)".contains("b.cfg")
        }
    }

    @Test("200 domUs get unique category pairs from the allocator, none dominating another, each valid in the policy")
    func uniquePairs() async throws {
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let labeler = try XenLabeler(policy: policy)
        #expect(labeler.pool.description == "s0:c0.c255")
        let configs = try (0..<200).map { try configuration("name = 'g\($0)'\n", source: "g\($0).cfg") }
        let registry = InMemoryLevelRegistry(seed: 42)
        let out = try await labeler.assign(configs, registry: registry)
        #expect(out.count == 200)
        let levels = out.map(\.level)
        #expect(Set(levels).count == 200)
        for (i, a) in levels.enumerated() {
            #expect(a.categories.count == 2 && a.sensitivity == 0)
            for b in levels[(i + 1)...] { #expect(!a.dominates(b) && !b.dominates(a)) }
        }
        #expect(try await registry.reservations().map(\.owner).sorted() == configs.map { "xen:\($0.name)" }.sorted())
        for a in out { #expect(policy.labelProblems(a.labels[0].context).isEmpty) }
    }

    @Test("a free level already in the file is kept; a taken or malformed one is replaced; init and device model labels follow")
    func keepAndFollow() async throws {
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let labeler = try XenLabeler(policy: policy)
        let keep = try configuration("name = 'k'\nseclabel = 'system_u:system_r:domU_t:s0:c7,c9'\n")
        let clash = try configuration("name = 'c'\nseclabel = 'system_u:system_r:domU_t:s0:c7,c9'\n")
        let wide = try configuration("name = 'w'\nseclabel = 'system_u:system_r:domU_t:s0:c1.c5'\n")
        let stub = try loadConfiguration("stubdom")
        let vault = try loadConfiguration("init-seclabel")
        let out = try await labeler.assign([keep, clash, wide, stub, vault], registry: InMemoryLevelRegistry(seed: 1))
        #expect(out[0].kept && out[0].level.description == "s0:c7,c9")
        #expect(!out[1].kept && out[1].level.description != "s0:c7,c9" && out[1].note?.contains("could not be kept") == true)
        #expect(!out[2].kept && out[2].note?.contains("not one category pair") == true)
        #expect(out[3].labels.map(\.key) == ["seclabel", "device_model_stubdomain_seclabel"])
        #expect(Set(out[3].labels.map { $0.context.range?.description }).count == 1)
        #expect(out[4].labels.map(\.key) == ["seclabel", "init_seclabel"])
        #expect(out[4].labels[1].context.type == "nomigrate_t_building")
        // Rewriting changes only the label values.
        let text = try XenLabeler.rewrite(stub, with: out[3])
        let again = try XenDomainConfiguration(parsing: text, source: "stubdom.cfg")
        #expect(again.seclabel?.context.range?.low == out[3].level)
        #expect(again.deviceModelSeclabel?.context.range?.low == out[3].level)
        #expect(text.replacingOccurrences(of: ":\(out[3].level)", with: "") == stub.config.text)
        // The labelled build passes on the MLS policy.
        #expect(try XenDomainBuild(again, policy: policy).allowed)
    }

    @Test("labels are refused on a policy without MLS, and an exhausted pool is an allocation error")
    func refusals() async throws {
        #expect(throws: XenError.self) { try XenLabeler(policy: try loadXenPolicy("svirt-xen.30")) }
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let small = try XenLabeler(policy: policy, pool: try CategoryPool(level: try SecurityLevel(parsing: "s0:c0.c7")))
        let configs = try (0..<29).map { try configuration("name = 'g\($0)'\n") }
        await #expect { try await small.assign(configs, registry: InMemoryLevelRegistry()) } throws: { e in
            (e as? XenError)?.code == .allocation
        }
    }

    @Test("the overlay exempts dom0, mls_priv and the named types with their channels, and uses only defined permissions")
    func overlayText() throws {
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let o = try XenMCSOverlay(policy: policy, exempt: ["xenstore_t"])
        #expect(Set(o.exemptTypes) == ["dom0_t", "xen_t", "xenboot_t", "xenstore_t"])
        #expect(Set(o.exemptChannelTypes) == ["dom0_t_channel", "xenstore_t_channel"])
        #expect(Set(o.pseudoDomainTypes) == ["domio_t", "domxen_t"])
        #expect(o.statements.count == 3 && o.skipped.isEmpty)
        #expect(o.statements[0].hasPrefix("mlsconstrain grant { map_read map_write copy transfer } ((h1 dom h2)"))
        #expect(o.text(for: "p").contains("tools/flask/policy/policy/mls"))
        #expect(throws: XenError.self) { try XenMCSOverlay(policy: policy, exempt: ["no_such_t"]) }
        #expect(throws: XenError.self) { try XenMCSOverlay(policy: try loadXenPolicy("svirt-xen.30")) }
    }

    @Test("with the overlay compiled in, categories isolate every guest pair, dom0 still reaches all, and libsepol agrees",
          .enabled(if: haveCheckpolicy, "needs checkpolicy"))
    func overlayCompiled() async throws {
        let policy = try loadXenPolicy("svirt-xen-mls.30")
        let overlay = try XenMCSOverlay(policy: policy, exempt: ["xenstore_t"]).text(for: "svirt-xen-mls.30")
        let source = try readText(xenPolicyDirectory + "/svirt-xen-mls.conf")
        var lines: [String] = []
        for l in source.split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append(String(l))
            if l.contains("@svirt-xen-overlay@") { lines.append(overlay) }
        }
        #expect(lines.count > source.split(separator: "\n", omittingEmptySubsequences: false).count)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try lines.joined(separator: "\n").write(toFile: dir + "/with.conf", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/checkpolicy")
        p.arguments = ["-t", "xen", "-M", "-c", "30", "-o", dir + "/with.30", dir + "/with.conf"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let with = try XenPolicy(try PolicyDatabase(bytes: try readBytes(dir + "/with.30")))

        var configs = try Self.fixtureConfigs()
        configs.append(try configuration("name = 'web2'\nseclabel = 'system_u:system_r:domU_t'\n", source: "web2.cfg"))
        let labeled = try await XenLabeler(policy: with).assign(configs, registry: InMemoryLevelRegistry(seed: 9))
        let relabeled = try zip(configs, labeled).map {
            try XenDomainConfiguration(parsing: try XenLabeler.rewrite($0, with: $1), source: $0.file)
        }
        let stock = try XenIsolationMatrix(builds: try Self.builds(policy, relabeled), policy: policy)
        let isolated = try XenIsolationMatrix(builds: try Self.builds(with, relabeled), policy: with)
        #expect(!stock.openPairs.isEmpty, "without the overlay, categories do not keep domU_t guests apart")
        #expect(isolated.openPairs.isEmpty, "\(isolated.openPairs.map { "\($0.source)→\($0.target)" })")
        #expect(try #require(isolated.cell("hvm1-dm", "hvm1")).reach(.memory) == .allowed)
        let builds = try Self.builds(with, relabeled)
        #expect(builds.allSatisfy { $0.allowed })
        // dom0 still talks to every guest, and guests to dom0.
        let dom0 = try with.dom0()
        var checks: [XenCheck] = builds.flatMap(\.checks)
        for b in builds {
            for kind in [XenAccessKind.grant, .event] {
                let there = with.access(kind, dom0, b.domain), back = with.access(kind, b.domain, dom0)
                #expect(there.allSatisfy(\.allowed) && back.allSatisfy(\.allowed), "\(kind) dom0 ↔ \(b.domain.name)")
                checks += there + back
            }
        }
        for c in isolated.cells { for k in XenAccessKind.allCases { checks += c.checks[k] ?? [] } }
        let compared = try XenOracleTests.compare(checks, policy: with, path: dir + "/with.30", mls: true)
        #expect(compared > 300)
    }
}
