import Foundation
import Glibc
import Testing
@testable import SVirt
@testable import SVirtLinux

@Suite("Registry: domains, running VMs, booleans") struct LifecycleRegistryTests {
    let me = ProcessIdentity(pid: getpid(), startTime: ProcFS().startTime(of: getpid()) ?? 1)

    @Test("a name is defined once; redefining with the same uuid replaces the XML, another uuid is refused")
    func defineRules() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
        #expect(try r.define(name: "vm1", uuid: "u-1", xml: "<a/>") == .created)
        #expect(try r.define(name: "vm1", uuid: "u-1", xml: "<b/>") == .updated)
        #expect(try r.definedDomain(named: "vm1")?.xml == "<b/>")
        #expect(throws: SVirtError.self) { try r.define(name: "vm1", uuid: "u-2", xml: "<c/>") }
        #expect(throws: SVirtError.self) { try r.define(name: "vm2", uuid: "u-1", xml: "<c/>") }
        #expect(try r.define(name: "vm2", uuid: "u-2", xml: "<c/>") == .created)
        #expect(try r.definedDomains().map(\.name) == ["vm1", "vm2"])
        #expect(try r.definedDomain(uuid: "U-2")?.name == "vm2")
        try r.undefine(name: "vm1")
        #expect(try r.definedDomain(named: "vm1") == nil)
        do {
            try r.undefine(name: "vm1")
            Issue.record("undefining a missing domain succeeded")
        } catch let e as SVirtError {
            #expect(e.code == .notFound)
        }
    }

    @Test("only one claim to start a VM exists, and domain ids grow")
    func claimOnce() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
        let a = try r.claimStart(name: "vm", uuid: "u", xml: "<x/>", holder: me, details: .init())
        do {
            _ = try r.claimStart(name: "vm", uuid: "u", xml: "<x/>", holder: me, details: .init())
            Issue.record("a second claim succeeded")
        } catch let e as SVirtError {
            #expect(e.code == .state)
            #expect(e.message.contains("already being started"))
        }
        let b = try r.claimStart(name: "other", uuid: "u2", xml: "<x/>", holder: me, details: .init(transient: true))
        #expect(b.id == a.id + 1)
        #expect(try r.runningDomain(named: "other")?.details.transient == true)
        try r.removeRunning(name: "vm")
        let c = try r.claimStart(name: "vm", uuid: "u", xml: "<x/>", holder: me, details: .init())
        #expect(c.id == b.id + 1)
    }

    @Test("every column of a running row round-trips")
    func runningRoundTrip() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
        var row = try r.claimStart(name: "vm", uuid: "u", xml: "<x/>", holder: me, details: .init())
        row.state = .running
        row.process = ProcessIdentity(pid: 4242, startTime: 99)
        row.holder = nil
        row.label = "system_u:system_r:svirt_t:s0:c1,c2"
        row.imageLabel = "system_u:object_r:svirt_image_t:s0:c1,c2"
        row.level = "s0:c1,c2"
        row.mechanism = "landlock"
        row.liveXML = "<live/>"
        row.runtimeDirectory = "/run/svirt/vm"
        row.details = .init(qmpSocket: "/run/svirt/vm/qmp.sock", logFile: "/run/svirt/vm/qemu.log", emulator: "/usr/bin/qemu",
                            confinement: "landlock", user: GuestUser(user: "nobody", uid: 65534, group: "nogroup", gid: 65534, groups: [107]),
                            ownersChanged: true, privatePaths: ["/run/svirt/vm"], notes: ["n"])
        try r.updateRunning(row)
        #expect(try r.runningDomain(named: "vm") == row)
        #expect(row.guest == GuestProcess(identity: ProcessIdentity(pid: 4242, startTime: 99), qmpSocket: "/run/svirt/vm/qmp.sock",
                                          logFile: "/run/svirt/vm/qemu.log"))
    }

    @Test("a stop claim takes a running row, or a row whose svirt process is gone, but not one a live svirt holds")
    func stopClaims() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
        let other = ProcessIdentity(pid: 1, startTime: 1)
        _ = try r.claimStart(name: "vm", uuid: "u", xml: "<x/>", holder: other, details: .init())
        do {
            _ = try r.claimStop(name: "vm", holder: me, isAlive: { _ in true })
            Issue.record("a row held by a live svirt was taken")
        } catch let e as SVirtError {
            #expect(e.code == .state)
        }
        let taken = try r.claimStop(name: "vm", holder: me, isAlive: { _ in false })
        #expect(taken.state == .starting)
        #expect(try r.runningDomain(named: "vm")?.state == .stopping)
        #expect(try r.runningDomain(named: "vm")?.holder == me)
        // This process's own operation in flight (the console runs several at once) is as busy as another's: a
        // destroy must not take over the row of a start still going on in the same process.
        do {
            _ = try r.claimStop(name: "vm", holder: me, isAlive: { _ in true })
            Issue.record("a stopping row held by this very process was taken by a second stop")
        } catch let e as SVirtError {
            #expect(e.code == .state)
        }
        _ = try r.claimStart(name: "own", uuid: "u2", xml: "<x/>", holder: me, details: .init())
        do {
            _ = try r.claimStop(name: "own", holder: me, isAlive: { _ in true })
            Issue.record("a destroy took over the row of a start in flight in the same process")
        } catch let e as SVirtError {
            #expect(e.code == .state)
        }
        do {
            _ = try r.claimStop(name: "missing", holder: me, isAlive: { _ in true })
            Issue.record("a missing row was claimed")
        } catch let e as SVirtError {
            #expect(e.code == .notFound)
        }
    }

    @Test("boolean settings persist, are logged, and can be cleared")
    func booleans() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        do {
            let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
            try r.setBoolean("virt_transition_userdomain", true)
            try r.setBoolean("virt_use_execmem", false)
            #expect(throws: SVirtError.self) { try r.setBoolean("bad name", true) }
        }
        let r = try SQLiteRegistry(state: StateDirectory(path: dir.path))
        #expect(try r.booleanSettings() == ["virt_transition_userdomain": true, "virt_use_execmem": false])
        #expect(try r.events().contains { $0.kind == "boolean" && $0.message == "virt_transition_userdomain set to on" })
        try r.clearBoolean("virt_use_execmem")
        #expect(try r.booleanSettings() == ["virt_transition_userdomain": true])
    }
}

@Suite("Registry: the journal it keeps") struct RegistryJournalTests {
    @Test("WAL where the state directory's files may be mapped; a WAL registry opened with a rollback journal keeps every row and leaves WAL without a -shm")
    func rollbackFromWAL() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let state = StateDirectory(path: dir.path)
        #expect(SQLiteRegistry.canMapShared(in: dir.path))
        do {   // each registry is closed at the end of its scope, as each svirt command's is when it exits
            let first = try SQLiteRegistry(state: state)
            #expect(first.journal == .wal)
            #expect(try first.define(name: "vm1", uuid: "u-1", xml: "<a/>") == .created)
            #expect(SQLiteRegistry.isWAL(state.registryPath))
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!entries.contains { $0.hasPrefix(".svirt-map-probe") }, "the probe file is removed: \(entries)")

        // As svirt under a policy that refuses the map of the -shm (Debian's virtd_t in /var/lib/svirt).
        do {
            let second = try SQLiteRegistry(state: state, journal: .rollback)
            #expect(second.journal == .rollback)
            #expect(!SQLiteRegistry.isWAL(state.registryPath))
            #expect(try second.definedDomain(named: "vm1")?.xml == "<a/>")
            #expect(try second.define(name: "vm2", uuid: "u-2", xml: "<b/>") == .created)
            #expect(try second.definedDomains().map(\.name) == ["vm1", "vm2"])
            #expect(!FileManager.default.fileExists(atPath: state.registryPath + "-shm"))
            #expect(!FileManager.default.fileExists(atPath: state.registryPath + "-wal"))
        }
        // A process that may map goes back to WAL, with every row.
        let third = try SQLiteRegistry(state: state)
        #expect(try third.definedDomains().map(\.name) == ["vm1", "vm2"])
        #expect(SQLiteRegistry.isWAL(state.registryPath))
    }
}
