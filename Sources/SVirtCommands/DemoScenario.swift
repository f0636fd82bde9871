import ArgumentParser
import Foundation
import Glibc
import SELinux
import SVirt
import SVirtLinux

/// The chapter, step by step, in a scratch directory with its own state directory and images.
final class DemoScenario {
    let dir: String
    let images: String
    let env: HostEnvironment
    let lifecycle: DomainLifecycle
    let standIn: Bool
    let standInReason: String?
    let domainType: String
    let mechanism: HostProbe.Mechanism
    let selinuxState: HostProbe.SELinuxState
    let started = ContinuousClock.now
    /// The image every chapter VM uses, by VM name.
    var imageOf: [String: String] = [:]

    init(selinuxRoot: String?, forceStandIn: Bool) throws {
        var template = Array("/tmp/svirt-demo.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SVirtError(.launch, "cannot create a scratch directory under /tmp: \(String(cString: strerror(errno)))")
        }
        dir = String(cString: made)
        images = "\(dir)/images"
        // The unprivileged QEMU user must be able to reach the images.
        chmod(dir, 0o755)
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let state = "\(dir)/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

        var reason: String?
        var useStandIn = forceStandIn
        if !forceStandIn {
            do {
                _ = try QEMUEmulator.find()
            } catch {
                useStandIn = true
                reason = "QEMU is missing (\(error)), so the guests are svirt's built-in stand-in: the svirt binary in a hidden "
                    + "guest mode that opens its disks and holds them, answers QMP, and is confined the same way"
            }
        } else {
            reason = "--stand-in: the guests are svirt's built-in stand-in, confined the same way as QEMU"
        }
        var config = ""
        if useStandIn, let user = try? GuestUser.resolve(user: nil, group: nil),
           let why = user.unreachableReason(StandInGuest.currentExecutable(), write: false, ownerWillBeSet: false) {
            // The stand-in is this very binary; where the QEMU user cannot reach it, the guests keep root.
            config = "user = root\n"
            reason = (reason ?? "") + "; they run as root, because \(why)"
        }
        if !config.isEmpty { try config.write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8) }
        standIn = useStandIn
        standInReason = reason
        env = try HostEnvironment(stateDirectory: state, selinuxRoot: selinuxRoot)
        lifecycle = try DomainLifecycle(environment: env, local: try env.openRegistry())
        let probe = HostProbe()
        mechanism = probe.mechanism()
        selinuxState = probe.selinux()
        domainType = probe.kvm().usable ? "kvm" : "qemu"
    }

    // MARK: Output

    func say(_ s: String = "") { print(s) }

    func section(_ title: String) {
        say("")
        say("== \(title)")
        say("")
    }

    func command(_ s: String) { say("# \(s)") }

    /// `ls -lZ` of the images: mode, owner, group, label, name.
    func listImages() {
        command("ls -lZ \(images)")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).sorted()
        var rows: [[String]] = []
        for n in names {
            let p = "\(images)/\(n)"
            var st = stat()
            guard stat(p, &st) == 0 else { continue }
            let label = (try? ExtendedAttributes.get("security.selinux", path: p)).flatMap { $0.map(ExtendedAttributes.string) } ?? "?"
            rows.append([Self.modeString(st.st_mode), DomainLifecycle.userName(st.st_uid), DomainLifecycle.groupName(st.st_gid), label, n])
        }
        for r in Self.columns(rows) { say(r) }
    }

    /// `ps -eZ | grep qemu`: label, pid, tty, time, command. Where the kernel runs no SELinux, the label is the one
    /// svirt started the guest with, and the line says how the guest is confined.
    func listProcesses(_ names: [String]) {
        command("ps -eZ | grep \(standIn ? "svirt" : "qemu")")
        var rows: [[String]] = []
        for n in names {
            guard let r = try? lifecycle.local.runningDomain(named: n), let p = r.process else { continue }
            let kernel = env.proc.context(of: p.pid)
            let line = psLine(label: kernel ?? r.label ?? "-", pid: p.pid, proc: env.proc).split(separator: " ").map(String.init)
            var cells = line
            if kernel == nil { cells.append("(\(n): \(r.details.confinement ?? "-"))") }
            rows.append(cells)
        }
        for r in Self.columns(rows) { say(r) }
    }

    static func columns(_ rows: [[String]]) -> [String] {
        var widths: [Int] = []
        for r in rows { for (i, c) in r.enumerated() { if i >= widths.count { widths.append(c.count) } else { widths[i] = max(widths[i], c.count) } } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: " ")
        }
    }

    static func modeString(_ m: mode_t) -> String {
        let chars = Array("rwxrwxrwx")
        var s = (m & S_IFMT) == S_IFDIR ? "d" : "-"
        for i in 0..<9 { s.append(m & (1 << (8 - mode_t(i))) != 0 ? chars[i] : "-") }
        return s
    }

    func label(_ path: String) -> String {
        (try? ExtendedAttributes.get("security.selinux", path: path)).flatMap { $0.map(ExtendedAttributes.string) } ?? "(none)"
    }

    // MARK: Steps

    func makeImage(_ name: String) throws -> String {
        let p = "\(images)/\(name)"
        if FileManager.default.fileExists(atPath: p) { return p }
        let fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SVirtError(.launch, "cannot create \(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, 1 << 20) == 0 else { throw SVirtError(.launch, "cannot size \(p): \(String(cString: strerror(errno)))") }
        // The label the chapter's images have when they are built (restorecon in /var/lib/libvirt/images).
        try ExtendedAttributes.set("security.selinux", value: Array("system_u:object_r:virt_image_t:s0".utf8) + [0], fd: fd, path: p)
        return p
    }

    func define(_ vm: NotebookExamples.VM) throws {
        imageOf[vm.name] = try makeImage(vm.image)
        let domain = try DomainDefinition(xml: vm.xml(imageDirectory: images, type: domainType, memoryMiB: 128), source: vm.name)
        try lifecycle.define(domain)
        say("Domain '\(vm.name)' defined")
    }

    var options: DomainLifecycle.StartOptions {
        var o = DomainLifecycle.StartOptions()
        o.standIn = standIn
        return o
    }

    /// Starts a defined VM as `svirt start` does, printing what virsh would.
    @discardableResult
    func start(_ name: String, expectFailure: Bool = false) async throws -> DomainLifecycle.Started? {
        command("svirt start \(name)")
        guard let record = try lifecycle.local.definedDomain(named: name) else {
            throw SVirtError(.notFound, "failed to get domain '\(name)'")
        }
        let domain = try DomainDefinition(xml: record.xml, source: name)
        do {
            let s = try await lifecycle.start(domain, options: options)
            say("Domain '\(name)' started")
            for n in s.notes where !n.contains("stands in") { say("note: \(n)") }
            return s
        } catch let e as SVirtError where expectFailure {
            say("error: Failed to start domain '\(name)'")
            say("error: \(e.message)")
            return nil
        }
    }

    func labelOfProcess(_ name: String) -> String {
        guard let r = try? lifecycle.local.runningDomain(named: name) else { return "-" }
        if let p = r.process, let k = env.proc.context(of: p.pid) { return k }
        return r.label ?? "-"
    }

    func run() async throws {
        say("svirt demo: the SELinux Notebook's chapter \"SELinux Virtual Machine Support\", with real guests")
        say("")
        let policy = (try? env.selinux()).map { $0.policyPath ?? "svirt's built-in sVirt policy" } ?? "?"
        say("Scratch directory: \(dir) (removed at the end)")
        say("SELinux:           \(selinuxState.rawValue) (the kernel's state)")
        say("Confinement:       \(mechanism.rawValue): \(HostReport.explain(mechanism.rawValue))")
        say("Policy:            \(policy)")
        say("Guests:            \(standIn ? "svirt stand-in" : "QEMU"), \(domainType == "kvm" ? "KVM" : "TCG (no usable /dev/kvm)")")
        if let r = standInReason { say("Note:              \(r)") }
        if mechanism == .none {
            throw SVirtError(.confinement, "this host has neither SELinux nor Landlock, so svirt cannot confine the chapter's VMs; "
                             + "the demo does not run guests unconfined")
        }

        section("1. Images and definitions")
        for vm in NotebookExamples.dynamic + NotebookExamples.shareable + NotebookExamples.staticVMs { try define(vm) }
        say("")
        listImages()

        section("2. Dynamic labelling: each VM gets its own MCS level")
        for vm in NotebookExamples.dynamic { try await start(vm.name) }
        say("")
        var rows: [[String]] = []
        for vm in NotebookExamples.dynamic {
            rows.append([vm.name, "process", labelOfProcess(vm.name)])
            rows.append(["", "file", label(imageOf[vm.name] ?? "")])
        }
        say(table(["VM Image Name", "Object", "Dynamically assigned security context"], rows))
        say("")
        listImages()
        say("")
        listProcesses(NotebookExamples.dynamic.map(\.name))

        section("3. Shared image: one image, two processes with their own levels")
        for vm in NotebookExamples.shareable { try await start(vm.name) }
        say("")
        rows = NotebookExamples.shareable.map { [$0.name, "process", labelOfProcess($0.name)] }
        rows.append(["", "file", label(imageOf["Shareable_VM"] ?? "")])
        say(table(["VM Image Name", "Object", "Security context"], rows))
        say("")
        listProcesses(NotebookExamples.shareable.map(\.name))

        section("4. Static labelling: Static_VM1 (svirt_t:s0:c1022,c1023, relabel='no')")
        let s1 = try await start("Static_VM1", expectFailure: true)
        if s1 != nil {
            say("note: the preflight did not refuse Static_VM1 (the policy in use allows svirt_t to use virt_image_t files); "
                + "it is stopped and relabelled as the chapter does")
            _ = try await lifecycle.stop(name: "Static_VM1", mode: .destroy)
        }
        let img1 = imageOf["Static_VM1"] ?? ""
        say("")
        command("chcon -t svirt_image_t Static_VM1.img")
        try setContext(img1) { $0.with(type: "svirt_image_t") }
        command("chcon -l s0:c1022,c1023 Static_VM1.img")
        try setContext(img1) { $0.with(range: try SecurityRange(parsing: "s0:c1022,c1023")) }
        say("\(label(img1)) Static_VM1.img")
        say("")
        try await start("Static_VM1")

        section("5. Static_VM2 (unconfined_t): only while virt_transition_userdomain is on")
        let img2 = imageOf["Static_VM2"] ?? ""
        if selinuxState == .disabled {
            say("SELinux is off, so svirt's own boolean store holds virt_transition_userdomain, and svirt's policy engine decides")
            say("whether the manager's context may start a process in unconfined_t.")
            say("")
            command("setsebool virt_transition_userdomain off   (svirt's boolean store)")
            try lifecycle.local.setBoolean("virt_transition_userdomain", false)
            try await start("Static_VM2", expectFailure: true)
            say("")
            command("setsebool -P virt_transition_userdomain on   (svirt's boolean store)")
            try lifecycle.local.setBoolean("virt_transition_userdomain", true)
            // A fresh lifecycle reads the boolean store again, as the next svirt command would.
            let next = try DomainLifecycle(environment: env, local: lifecycle.local)
            command("svirt start Static_VM2")
            let domain = try DomainDefinition(xml: try lifecycle.local.definedDomain(named: "Static_VM2")?.xml ?? "", source: "Static_VM2")
            let s = try await next.start(domain, options: options)
            say("Domain 'Static_VM2' started")
            for n in s.notes where !n.contains("stands in") { say("note: \(n)") }
        } else {
            say("SELinux is \(selinuxState.rawValue): the kernel's own boolean decides (setsebool -P virt_transition_userdomain on).")
            try await start("Static_VM2", expectFailure: true)
        }
        say("")
        command("svirt dominfo Static_VM2 | grep Security")
        if let r = try lifecycle.local.runningDomain(named: "Static_VM2") {
            say("Security model: selinux")
            say("Security DOI:   0")
            say("Security label: \(labelOfProcess("Static_VM2")) (\(r.details.confinement ?? "-"))")
            if let why = r.details.unconfinedReason { say("Confinement:    none: \(why)") }
        }
        say("")
        let statics = NotebookExamples.staticVMs.map(\.name)
        rows = []
        for n in statics {
            rows.append([n, "process", labelOfProcess(n)])
            rows.append(["", "file", label(imageOf[n] ?? "")])
        }
        say(table(["VM Image Name", "Object", "Static security context"], rows))
        say("")
        listImages()
        say("")
        listProcesses(statics)
        _ = img2

        section("6. Isolation: Dynamic_VM1's own QEMU asks for Dynamic_VM2's image")
        try monitor("Dynamic_VM1", ["execute": "blockdev-add", "arguments": ["driver": "file", "node-name": "other",
                                                                              "filename": .string(imageOf["Dynamic_VM2"] ?? "")]])
        try monitor("Dynamic_VM1", ["execute": "blockdev-add", "arguments": ["driver": "file", "node-name": "second-view",
                                                                              "filename": .string(imageOf["Dynamic_VM1"] ?? ""),
                                                                              "read-only": true]])
        if let live = try lifecycle.local.runningDomain(named: "Dynamic_VM1")?.liveXML,
           let line = live.split(separator: "\n").first(where: { $0.contains("<seclabel") }) {
            say("")
            command("svirt dumpxml Dynamic_VM1 --live | grep seclabel")
            say(line.trimmingCharacters(in: .whitespaces))
        }

        section("7. Isolation proved from the policy: every VM process against every VM resource")
        let checked = (NotebookExamples.dynamic + NotebookExamples.shareable).map(\.name)
        command("svirt check \(checked.joined(separator: " "))")
        do {
            let matrix = try await lifecycle.isolationMatrix(names: checked)
            say(matrix.text())
        } catch {
            say("warning: the check could not be made: \(error)")
        }

        section("8. Stop them all: every label and owner is given back")
        let all = try lifecycle.local.runningDomains().map(\.name)
        for n in all {
            command("svirt destroy \(n)")
            let stopped = try await lifecycle.stop(name: n, mode: .destroy)
            say("Domain '\(n)' destroyed")
            for f in stopped.failures { say("warning: \(f)") }
        }
        say("")
        listImages()
        say("")
        say("As in the chapter: the dynamic images are back to virt_image_t:s0, the shared image keeps svirt_image_t:s0,")
        say("Static_VM1.img keeps the label chcon gave it (relabel='no'), Static_VM2.img was never relabelled, and every")
        say("owner is root again.")
        let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        say("")
        say(String(format: "Done in %.1f s.", seconds))
    }

    /// Changes a file's context as chcon does.
    func setContext(_ path: String, _ change: (SecurityContext) throws -> SecurityContext) throws {
        let current = try SecurityContext(parsing: label(path))
        let next = try change(current)
        try ExtendedAttributes.set("security.selinux", value: Array(next.description.utf8) + [0], path: path)
    }

    /// Sends a QMP command to a guest's monitor and prints it as `svirt qemu-monitor-command` would.
    func monitor(_ name: String, _ message: JSONValue) throws {
        command("svirt qemu-monitor-command \(name) '\(message.json)'")
        guard let g = try lifecycle.local.runningDomain(named: name)?.guest else {
            say("error: domain '\(name)' is not running")
            return
        }
        let client = try QMPClient.connect(path: g.qmpSocket, timeout: .seconds(10), peerContext: ProcFS().context(of: g.identity.pid))
        defer { client.close() }
        say(try client.send(message).json)
    }

    /// Stops whatever still runs and removes the scratch directory.
    func cleanup(keep: Bool) async {
        for r in (try? lifecycle.local.runningDomains()) ?? [] {
            _ = try? await lifecycle.stop(name: r.name, mode: .destroy)
        }
        if keep {
            print("\nThe scratch directory is kept: \(dir)")
        } else {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}
