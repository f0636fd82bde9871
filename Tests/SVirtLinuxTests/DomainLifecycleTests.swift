import Foundation
import Glibc
import SELinux
import Testing
@testable import SVirt
@testable import SVirtLinux

/// A policy as a few rules, for the logic of the lifecycle's decisions (the real policies are tested through
/// libsepol and the policy engine). Types in `allowFiles` pairs may use each other's files; `transitions` are the
/// process transitions allowed, some only under a boolean.
struct RuleChecker: PolicyInspector {
    var policySource: String
    var booleans: [String: Bool] = [:]
    var allowFiles: Set<String> = []
    var transitions: [String: String?] = [:]
    var unconfinedTypes: Set<String> = []

    func check(source: SecurityContext, target: SecurityContext, objectClass: String,
               permissions: [String]) throws -> AccessDecision {
        if objectClass == "process" {
            guard let rule = transitions["\(source.type)>\(target.type)"] else {
                return .denied(Denial(kind: .typeEnforcement, detail: "allow \(source.type) \(target.type):process transition;"))
            }
            guard let boolean = rule else { return .allowed }
            return booleans[boolean] == true ? .allowed : .denied(Denial(kind: .boolean, booleans: [boolean]))
        }
        if unconfinedTypes.contains(source.type) || allowFiles.contains("\(source.type)>\(target.type)") { return .allowed }
        return .denied(Denial(kind: .typeEnforcement, detail: "allow \(source.type) \(target.type):\(objectClass);"))
    }

    func definesBoolean(_ name: String) throws -> Bool { booleans[name] != nil }

    func settingBooleans(_ values: [String: Bool]) throws -> any PolicyInspector {
        var copy = self
        for (k, v) in values {
            guard booleans[k] != nil else { throw SVirtError(.policy, "no boolean \(k)") }
            copy.booleans[k] = v
        }
        return copy
    }

    func attributes(ofType name: String) throws -> [String] { unconfinedTypes.contains(name) ? ["unconfined_domain_type"] : [] }
}

/// A lifecycle over a scratch state directory, with the guest kept as root (the stand-in is the test build's own
/// binary) unless `config` says otherwise.
func makeLifecycle(_ dir: TemporaryDirectory, checker: (any AccessChecker)? = nil, config: String = "user = root\n") throws -> DomainLifecycle {
    let state = dir.file("state")
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    try config.write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8)
    let env = try HostEnvironment(stateDirectory: state, selinuxRoot: "/etc/selinux")
    return try DomainLifecycle(environment: env, local: try env.openRegistry(), svirtExecutable: svirtExecutable,
                               driver: { env, levels in try SecurityDriver.host(env, registry: levels, checker: checker) })
}

/// A lifecycle whose guests run as nobody under Landlock, in a world-searchable scratch directory.
func landlockLifecycleAsNobody(_ dir: TemporaryDirectory) throws -> DomainLifecycle {
    chmod(dir.path, 0o755)
    let life = try makeLifecycle(dir, config: "user = nobody\n")
    life.mechanismOverride = .landlock
    return life
}

func domainXML(_ name: String, disk: String, seclabel: String = "") -> String {
    """
    <domain type='kvm'><name>\(name)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(disk)'/>
        <target dev='vda' bus='virtio'/></disk></devices>\(seclabel)
    </domain>
    """
}

func labelOf(_ path: String) -> String? {
    (try? ExtendedAttributes.get("security.selinux", path: path)).flatMap { $0.map(ExtendedAttributes.string) }
}

@Suite("Domain lifecycle", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct DomainLifecycleTests {
    static let unconfinedVM = "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:unconfined_t:s0:c11,c22</label></seclabel>"

    var host: RuleChecker {
        RuleChecker(policySource: "the host's policy", allowFiles: ["svirt_t>svirt_image_t"], transitions: ["virtd_t>svirt_t": .none],
                    unconfinedTypes: ["unconfined_t"])
    }
    var builtIn: RuleChecker {
        RuleChecker(policySource: "svirt's built-in sVirt policy", booleans: ["virt_transition_userdomain": false],
                    allowFiles: ["svirt_t>svirt_image_t"],
                    transitions: ["virtd_t>svirt_t": .none, "virtd_t>unconfined_t": "virt_transition_userdomain"],
                    unconfinedTypes: ["unconfined_t"])
    }

    @Test("in SELinux mode the guest is spawned with the VM's label as its exec and socket-create contexts")
    func selinuxContexts() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir)
        life.mechanismOverride = .selinux
        try FileManager.default.createDirectory(atPath: dir.file("proc/thread-self/attr"), withIntermediateDirectories: true)
        try dir.write("proc/thread-self/attr/exec", "")
        try dir.write("proc/thread-self/attr/sockcreate", "")
        life.launchProcRoot = dir.file("proc")
        let img = try makeImage(dir, "s.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let started = try await life.start(try DomainDefinition(xml: domainXML("sel", disk: img)), options: o)
        let label = try #require(started.label.process?.description)
        #expect(readText(dir.file("proc/thread-self/attr/exec")) == label)
        #expect(readText(dir.file("proc/thread-self/attr/sockcreate")) == label)
        #expect(started.confinement == .selinux(enforcing: true))
        #expect(try life.local.runningDomain(named: "sel")?.details.confinement == "enforcing")
        let stopped = try await life.stop(name: "sel", mode: .destroy)
        #expect(stopped.failures.isEmpty)
        #expect(labelOf(img) == "system_u:object_r:virt_image_t:s0")
    }

    @Test("on a host that runs SELinux, QEMU runs in the VM's label",
          .enabled(if: HostProbe().selinux() != .disabled, "needs a host that runs SELinux"))
    func realSELinux() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        chmod(dir.path, 0o755)
        let life = try makeLifecycle(dir, config: "")
        let img = try makeImage(dir, "r.img")
        let started = try await life.start(try DomainDefinition(xml: domainXML("real", disk: img)))
        let pid = try #require(started.domain.process?.pid)
        #expect(ProcFS().context(of: pid) == started.label.process?.description)
        _ = try await life.stop(name: "real", mode: .destroy)
    }

    @Test("with neither SELinux nor Landlock, start refuses unless unconfined, and then the VM is recorded as unconfined")
    func noMechanism() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir)
        life.mechanismOverride = HostProbe.Mechanism.none
        let img = try makeImage(dir, "n.img")
        let domain = try DomainDefinition(xml: domainXML("bare", disk: img))
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        do {
            _ = try await life.start(domain, options: o)
            Issue.record("started without confinement")
        } catch let e as SVirtError {
            #expect(e.code == .confinement)
            #expect(e.message.contains("--unconfined"))
        }
        #expect(try life.local.runningDomain(named: "bare") == nil)
        o.unconfined = true
        let started = try await life.start(domain, options: o)
        #expect(started.confinement == .unconfined(reason: "started with --unconfined"))
        let row = try #require(try life.local.runningDomain(named: "bare"))
        #expect(row.details.confinement == "unconfined")
        #expect(row.details.unconfinedReason == "started with --unconfined")
        _ = try await life.stop(name: "bare", mode: .destroy)
    }

    @Test("a Landlock grant the policy denies refuses the start, names the path, and gives everything back",
          .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func grantDenied() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var deny = host
        deny.allowFiles = []
        let life = try makeLifecycle(dir, checker: deny)
        life.mechanismOverride = .landlock
        let img = try makeImage(dir, "d.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        do {
            _ = try await life.start(try DomainDefinition(xml: domainXML("denied", disk: img)), options: o)
            Issue.record("a denied grant was given")
        } catch let e as SVirtError {
            #expect(e.code == .policy)
            #expect(e.message.contains("cannot start under Landlock"))
            #expect(e.message.contains(img))
            #expect(e.message.contains("allow svirt_t svirt_image_t:file;"))
        }
        #expect(labelOf(img) == "system_u:object_r:virt_image_t:s0")
        #expect(try life.local.runningDomain(named: "denied") == nil)
        #expect(try life.local.reservationsNow().isEmpty)
        #expect(try life.local.events().contains { $0.kind == "start-failed" && $0.domain == "denied" })
    }

    @Test("an unconfined_t VM starts only while virt_transition_userdomain is on, decided by the built-in policy where the host's lacks it",
          .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func transitionBoolean() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir, checker: host)
        let builtIn = self.builtIn
        life.builtInPolicy = { builtIn }
        life.mechanismOverride = .landlock
        let img = try makeImage(dir, "u.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        let domain = try DomainDefinition(xml: domainXML("Static_VM2", disk: img, seclabel: Self.unconfinedVM))
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        for setting in [nil, false] as [Bool?] {
            if let setting { try life.local.setBoolean("virt_transition_userdomain", setting) }
            do {
                _ = try await life.start(domain, options: o)
                Issue.record("started with the boolean \(setting.map { "\($0)" } ?? "unset")")
            } catch let e as SVirtError {
                #expect(e.code == .policy)
                #expect(e.message.contains("only while the boolean virt_transition_userdomain is on"), "\(e.message)")
                #expect(e.message.contains("the host's policy has no such boolean"), "\(e.message)")
            }
            #expect(try life.local.reservationsNow().isEmpty)
        }
        try life.local.setBoolean("virt_transition_userdomain", true)
        let started = try await life.start(domain, options: o)
        guard case .unconfined(let why) = started.confinement else {
            Issue.record("confined as \(started.confinement)")
            return
        }
        #expect(why.contains("unconfined_t is an unconfined domain in svirt's built-in sVirt policy"))
        #expect(started.notes.contains { $0.contains("the host's policy has no boolean virt_transition_userdomain") })
        #expect(try life.local.runningDomain(named: "Static_VM2")?.details.confinement == "unconfined")
        #expect(started.label.process?.description == "system_u:system_r:unconfined_t:s0:c11,c22")
        #expect(labelOf(img) == "system_u:object_r:virt_image_t:s0", "relabel='no' leaves the image as it is")
        _ = try await life.stop(name: "Static_VM2", mode: .destroy)
    }

    @Test("a confined VM's Landlock grants are each checked, and a dynamic VM runs under Landlock",
          .enabled(if: landlockVersion >= 6, "needs Landlock ABI 6"))
    func landlockChecked() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir, checker: host)
        life.mechanismOverride = .landlock
        let img = try makeImage(dir, "l.img")
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        let started = try await life.start(try DomainDefinition(xml: domainXML("ll", disk: img)), options: o)
        #expect(grantsOf(started) > 3, "the stand-in's program paths and its own files")
        let report = try #require(started.grants)
        #expect(report.checks.contains { $0.path == img && $0.labelSource == "svirt" && $0.decision == .allowed })
        #expect(report.denied.isEmpty && report.unchecked.isEmpty)
        _ = try await life.stop(name: "ll", mode: .destroy)
    }

    @Test("with the host's Debian policy, which lacks virt_transition_userdomain, Static_VM2 starts only while svirt's boolean store turns it on",
          .enabled(if: landlockVersion >= 6 && HostProbe().selinux() == .disabled
                   && FileManager.default.fileExists(atPath: "/etc/selinux/default/policy/policy.33"), "needs Landlock, SELinux off and the Debian policy"))
    func debianTransition() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir)
        let img = try makeImage(dir, "v2.img")
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        let domain = try DomainDefinition(xml: domainXML("Static_VM2", disk: img, seclabel: Self.unconfinedVM))
        var o = DomainLifecycle.StartOptions()
        o.standIn = true
        try life.local.setBoolean("virt_transition_userdomain", false)
        do {
            _ = try await life.start(domain, options: o)
            Issue.record("Static_VM2 started with virt_transition_userdomain off")
        } catch let e as SVirtError {
            #expect(e.message.contains("only while the boolean virt_transition_userdomain is on"), "\(e.message)")
            #expect(e.message.contains("/etc/selinux/default/policy/policy.33 has no such boolean"), "\(e.message)")
        }
        try life.local.setBoolean("virt_transition_userdomain", true)
        let fresh = try makeLifecycle(dir)
        let started = try await fresh.start(domain, options: o)
        #expect(started.notes.contains { $0.contains("svirt's built-in sVirt policy, which has it") })
        #expect(started.confinement.mode == "unconfined")
        _ = try await fresh.stop(name: "Static_VM2", mode: .destroy)
    }

    @Test("a Landlock grant on another VM's image is denied by the Debian policy's MCS constraint, and the own image is allowed",
          .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/policy/policy.33"), "needs the Debian policy"))
    func mcsGrant() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let own = try makeImage(dir, "own.img", megabytes: 1), other = try makeImage(dir, "other.img", megabytes: 1)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:svirt_image_t:s0:c3,c4\0".utf8), path: other)
        let checker = HostPolicyAccessChecker(try HostSELinuxConfiguration.load(root: "/etc/selinux"))
        let process = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1,c2")
        let rules = [Landlock.PathRule(path: own, access: .readWrite, reason: "own"),
                     Landlock.PathRule(path: other, access: .readWrite, reason: "other")]
        let given = [canonical(own): try SecurityContext(parsing: "system_u:object_r:svirt_image_t:s0:c1,c2")]
        do {
            _ = try LandlockGrantCheck(checker: checker, defaults: nil).check(domain: "vm", process: process, rules: rules,
                                                                              given: given, entrypoint: nil)
            Issue.record("another VM's image was granted")
        } catch let e as SVirtError {
            #expect(e.code == .policy)
            #expect(e.message.contains("\(canonical(other)) (system_u:object_r:svirt_image_t:s0:c3,c4, from security.selinux)"))
            #expect(e.message.contains("MCS/MLS constraint"))
            #expect(!e.message.contains(canonical(own) + " "))
        }
    }

    @Test("a start whose svirt process died after spawning the guest is finished by the next reconciliation: guest stopped, labels and owners back, level released")
    func crashedStart() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let life = try makeLifecycle(dir)
        let img = try makeImage(dir, "c.img")
        chown(img, 1234, 5678)
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0\0".utf8), path: img)
        let domain = try DomainDefinition(xml: domainXML("crashy", disk: img))
        // What a start had done when it was killed: claimed, labelled, owners given, guest spawned.
        let dead = ProcessIdentity(pid: getpid(), startTime: 1)
        var row = try life.local.claimStart(name: "crashy", uuid: domain.uuid, xml: domain.xmlText(), holder: dead, details: .init())
        let driver = try life.driver()
        let labelled = try await driver.labelAll(for: domain)
        row.label = labelled.label.process?.description
        row.imageLabel = labelled.label.image.description
        row.level = labelled.label.reservedLevel?.description
        row.liveXML = domain.xmlText(seclabels: domain.liveSeclabels(with: labelled.label))
        row.details.ownersChanged = true
        try life.local.updateRunning(row)
        _ = try DACRelabeler(bootTime: driver.bootTime).labelAll([img], user: GuestUser(user: "nobody", uid: 65534, group: "nogroup", gid: 65534),
                                                                 holder: "crashy")
        let run = try RuntimeDirectory.create(name: "crashy", root: dir.file("state/run"))
        var c = QEMUConfiguration(name: "crashy", qmpSocket: run.qmpSocket)
        c.disks = [.init(path: img)]
        let g = try GuestSupervisor.start(StandInGuest.launchDescription(for: c, svirtExecutable: svirtExecutable),
                                          qmpSocket: run.qmpSocket, logFile: run.logFile)
        g.monitor.close()
        row.process = g.process.identity
        row.runtimeDirectory = run.path
        row.details.qmpSocket = run.qmpSocket
        row.details.logFile = run.logFile
        try life.local.updateRunning(row)
        #expect(labelOf(img) == labelled.label.image.description && ownerOf(img) == (65534, 65534))

        let done = await life.reconcile()
        #expect(done.map(\.name) == ["crashy"])
        #expect(done.first?.reason == "the svirt process (pid \(getpid())) that was starting it is gone")
        #expect(done.first?.stopped.failures == [])
        #expect(!ProcFS().isAlive(g.process.identity), "the half-started guest was stopped")
        #expect(labelOf(img) == "system_u:object_r:virt_image_t:s0")
        #expect(ownerOf(img) == (1234, 5678))
        #expect(try life.local.reservationsNow().isEmpty)
        #expect(try life.local.runningDomain(named: "crashy") == nil)
        #expect(!FileManager.default.fileExists(atPath: run.path))
        #expect(try life.local.events().contains { $0.kind == "reconcile" && $0.domain == "crashy" && $0.message.contains("labels restored") })
    }

    func grantsOf(_ s: DomainLifecycle.Started) -> Int {
        if case .landlock(let n) = s.confinement { return n }
        return -1
    }
}

@Suite("QEMU configuration from domain XML") struct QEMUConfigurationDomainTests {
    let kvm = (usable: true, reason: "ok")

    @Test("machine, accelerator, memory, vcpus, disks, kernel and serial come from the XML")
    func mapping() throws {
        let d = try DomainDefinition(xml: """
            <domain type='kvm'><name>m</name><memory unit='KiB'>131073</memory><vcpu>2</vcpu>
              <os><type arch='x86_64' machine='q35'>hvm</type><kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0</cmdline></os>
              <devices>
                <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/><target dev='vda'/><backingStore/></disk>
                <disk type='file' device='disk'><source file='/b.img'/><target dev='vdb'/><readonly/></disk>
                <disk type='file' device='disk'><source file='/s.img'/><target dev='vdc'/><shareable/></disk>
                <disk type='file' device='cdrom'><source file='/c.iso'/><target dev='hdc'/></disk>
                <disk type='file' device='cdrom'><target dev='hdd'/></disk>
                <serial type='pty'><target port='0'/></serial>
                <console type='pty'><target type='serial' port='0'/></console>
              </devices></domain>
            """)
        let c = try QEMUConfiguration(domain: d, qmpSocket: "/run/x/qmp.sock", kvm: kvm)
        #expect(c.machine == "q35" && c.accelerator == .kvm && c.memoryMiB == 129 && c.vcpus == 2)
        #expect(c.disks.map(\.path) == ["/a.qcow2", "/b.img", "/s.img", "/c.iso"])
        #expect(c.disks.map(\.format) == [.qcow2, .raw, .raw, .raw])
        #expect(c.disks.map(\.readOnly) == [false, true, false, true])
        #expect(c.disks.map(\.shareable) == [false, false, true, false])
        #expect(c.disks[3].device == .cdrom)
        #expect(c.kernel == "/k" && c.initrd == "/i" && c.kernelCommandLine == "console=ttyS0")
        #expect(c.serial == .pty)
    }

    @Test("a type='kvm' domain needs KVM; type='qemu' runs on TCG")
    func accelerator() throws {
        let xml = { (t: String) in "<domain type='\(t)'><name>a</name><memory>65536</memory></domain>" }
        do {
            _ = try QEMUConfiguration(domain: try DomainDefinition(xml: xml("kvm")), qmpSocket: "/q", kvm: (false, "no /dev/kvm"))
            Issue.record("a kvm domain was configured without KVM")
        } catch let e as SVirtError {
            #expect(e.message.contains("no /dev/kvm") && e.message.contains("type='qemu'"))
        }
        #expect(try QEMUConfiguration(domain: try DomainDefinition(xml: xml("qemu")), qmpSocket: "/q", kvm: (false, "")).accelerator == .tcg)
    }

    @Test("devices svirt cannot run are refused by name", arguments: [
        ("<hostdev mode='subsystem' type='usb'><source><address bus='1' device='2'/></source></hostdev>", "<hostdev>"),
        ("<disk type='network' device='disk'><source protocol='nbd' name='x'><host name='h'/></source><target dev='vda'/></disk>", "network disk"),
        ("<disk type='file' device='floppy'><source file='/f'/><target dev='fda'/></disk>", "device='floppy'"),
        ("<serial type='tcp'><source mode='bind' host='0' service='1'/></serial>", "serial type='tcp'"),
        ("<serial type='unix'><source mode='connect' path='/s'/></serial>", "mode='connect'"),
    ])
    func refused(device: String, named: String) throws {
        let d = try DomainDefinition(xml: "<domain type='qemu'><name>r</name><memory>65536</memory><devices>\(device)</devices></domain>")
        do {
            _ = try QEMUConfiguration(domain: d, qmpSocket: "/q", kvm: kvm)
            Issue.record("\(named) was accepted")
        } catch let e as SVirtError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains(named), "\(e.message)")
        }
    }
}
