import Foundation
import Glibc
import SVirtLinux
import Testing

/// A scratch host for lifecycle commands: a state directory, images with known labels and owners, and
/// domain XML, in a directory the unprivileged QEMU user can search.
final class LifecycleHost: Sendable {
    let dir: String
    var state: String { "\(dir)/state" }

    init(_ prefix: String, config: String? = nil) throws {
        dir = try scratch(prefix)
        chmod(dir, 0o755)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        if let config { try config.write(toFile: "\(state)/svirt.conf", atomically: true, encoding: .utf8) }
    }

    deinit {
        // Stop whatever a failed test left running, then remove the files.
        if let list = try? svirt(["list", "--state-dir", state, "--json"]),
           let rows = try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] {
            for r in rows { if let n = r["name"] as? String { _ = try? svirt(["destroy", n, "--state-dir", state]) } }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A raw image with a label, an owner and a mode of its own, so that restore has something exact to check.
    func image(_ name: String, label: String = "system_u:object_r:virt_image_t:s0", owner: (UInt32, UInt32) = (1234, 5678),
               mode: mode_t = 0o640) throws -> String {
        let p = "\(dir)/\(name)"
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        ftruncate(fd, 16 << 20)
        close(fd)
        chmod(p, mode)
        chown(p, owner.0, owner.1)
        try ExtendedAttributes.set("security.selinux", value: Array(label.utf8) + [0], path: p)
        return p
    }

    func xml(_ name: String, disks: [String], type: String = "kvm", machine: String = "pc", extra: String = "",
             seclabel: String = "") -> String {
        let d = disks.enumerated().map { i, p in
            """
                <disk type='file' device='disk'>
                  <driver name='qemu' type='raw'/>
                  <source file='\(p)'/>
                  <target dev='vd\(Character(UnicodeScalar(97 + i)!))' bus='virtio'/>
                </disk>
            """
        }.joined(separator: "\n")
        return """
            <domain type='\(type)'>
              <name>\(name)</name>
              <memory unit='MiB'>64</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64' machine='\(machine)'>hvm</type></os>
              <devices>
            \(d)
              </devices>\(extra)\(seclabel)
            </domain>
            """
    }

    @discardableResult
    func define(_ name: String, _ xml: String) throws -> CLIResult {
        let path = "\(dir)/\(name).xml"
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
        return try svirt(["define", path, "--state-dir", state])
    }

    func run(_ args: String...) throws -> CLIResult { try svirt(args + ["--state-dir", state]) }

    func listJSON(all: Bool = true) throws -> [[String: Any]] {
        let r = try svirt(["list", "--json", "--state-dir", state] + (all ? ["--all"] : []))
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    /// The reserved levels (`svirt mcs list`).
    func reservations() throws -> [[String: Any]] {
        let r = try svirt(["mcs", "list", "--json", "--state-dir", state])
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? [["unreadable": r.stdout]]
    }

    func row(_ name: String) throws -> [String: Any]? { try listJSON().first { $0["name"] as? String == name } }
}

/// What restore must give back exactly: the label, the owner, the mode, and no svirt records.
struct FileFacts: Equatable, CustomStringConvertible {
    var label: String?
    var uid: UInt32
    var gid: UInt32
    var mode: mode_t
    var attributes: [String]

    init(_ path: String) {
        label = xattr("security.selinux", path)
        var st = stat()
        stat(path, &st)
        uid = st.st_uid
        gid = st.st_gid
        mode = st.st_mode & 0o7777
        attributes = (try? attributeNames(path)) ?? []
    }

    var description: String { "\(label ?? "-") \(uid):\(gid) \(String(mode, radix: 8)) \(attributes)" }
}

let qemuInstalled = (try? QEMUEmulator.find()) != nil

@Suite("svirt lifecycle commands", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct LifecycleCommandTests {
    @Test("two real QEMU guests start confined; VM1's QEMU is refused VM2's image but opens a second view of its own; both stop with every label and owner back")
    func twoGuests() throws {
        try requireSVirt()
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        let host = try LifecycleHost("svirt-life")
        let img1 = try host.image("vm1.img"), img2 = try host.image("vm2.img", owner: (4321, 8765), mode: 0o600)
        let before = [FileFacts(img1), FileFacts(img2)]
        let type = HostProbe().kvm().usable ? "kvm" : "qemu"
        #expect(try host.define("vm1", host.xml("vm1", disks: [img1], type: type)).status == 0)
        #expect(try host.define("vm2", host.xml("vm2", disks: [img2], type: type)).status == 0)
        for n in ["vm1", "vm2"] {
            let r = try host.run("start", n)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "Domain '\(n)' started\n")
        }
        let rows = try host.listJSON(all: false)
        #expect(rows.count == 2)
        let labels = rows.compactMap { $0["label"] as? String }
        #expect(labels.count == 2 && Set(labels).count == 2, "each guest has its own label: \(labels)")
        for r in rows {
            let pid = try #require(r["pid"] as? Int)
            // The guest is QEMU, running as the unprivileged user, not root.
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("Uid:\t\(GuestUserFacts.uid)"), "QEMU runs as \(GuestUserFacts.uid)")
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"))?.hasPrefix("/usr/bin/qemu-system") == true)
        }
        #expect(FileFacts(img1).label?.hasPrefix("system_u:object_r:svirt_image_t:s0:c") == true)
        #expect(FileFacts(img1).uid == GuestUserFacts.uid)

        let refused = try host.run("qemu-monitor-command", "vm1",
                                   #"{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"other","filename":"\#(img2)"}}"#)
        #expect(refused.status == 0)
        #expect(refused.stdout.contains("Could not open '\(img2)': Permission denied"), "\(refused.stdout)")
        let own = try host.run("qemu-monitor-command", "vm1",
                               #"{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"view2","filename":"\#(img1)","read-only":true}}"#)
        #expect(own.stdout == "{\"return\":{}}\n", "\(own.stdout) \(own.stderr)")
        let nodes = try host.run("qemu-monitor-command", "vm1", #"{"execute":"query-named-block-nodes"}"#)
        #expect(nodes.stdout.contains("\"node-name\":\"view2\""))

        for n in ["vm1", "vm2"] {
            let r = try host.run("destroy", n)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "Domain '\(n)' destroyed\n")
        }
        #expect([FileFacts(img1), FileFacts(img2)] == before)
        #expect(try host.listJSON().allSatisfy { $0["state"] as? String == "shut off" })
        #expect(try host.reservations().isEmpty)
    }

    @Test("after kill -9 of a QEMU, the next svirt list shows the VM shut off with its labels and owner restored")
    func killedGuest() throws {
        try requireSVirt()
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        let host = try LifecycleHost("svirt-kill")
        let img = try host.image("k.img")
        let before = FileFacts(img)
        let type = HostProbe().kvm().usable ? "kvm" : "qemu"
        try host.define("killme", host.xml("killme", disks: [img], type: type))
        #expect(try host.run("start", "killme").status == 0)
        let pid = try #require(try host.row("killme")?["pid"] as? Int)
        #expect(FileFacts(img) != before)
        kill(Int32(pid), SIGKILL)
        var gone = false
        for _ in 0..<200 where !gone {
            gone = !FileManager.default.fileExists(atPath: "/proc/\(pid)/stat")
                || ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
            if !gone { usleep(10_000) }
        }
        let list = try host.run("list", "--all")
        #expect(list.status == 0)
        #expect(list.stdout.contains("killme") && list.stdout.contains("shut off"), "\(list.stdout)")
        #expect(list.stderr.contains("domain 'killme' is shut off: its QEMU process (pid \(pid)) is gone"), "\(list.stderr)")
        #expect(FileFacts(img) == before)
        #expect(try host.reservations().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(host.state)/run/killme"))
    }

    @Test("when QEMU exits during startup, start fails with QEMU's own words and gives everything back")
    func startFailure() throws {
        try requireSVirt()
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        let host = try LifecycleHost("svirt-fail")
        let img = try host.image("f.img")
        let before = FileFacts(img)
        try host.define("broken", host.xml("broken", disks: [img], type: "qemu", machine: "no-such-machine"))
        let r = try host.run("start", "broken")
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: Failed to start domain 'broken'\nerror: "), "\(r.stderr)")
        #expect(r.stderr.contains("exited during startup"))
        #expect(r.stderr.contains("unsupported machine type"), "QEMU's own message reaches the user: \(r.stderr)")
        #expect(FileFacts(img) == before)
        #expect(try host.row("broken")?["state"] as? String == "shut off")
        #expect(try host.reservations().isEmpty)
    }

    @Test("two svirt start calls for the same VM: exactly one starts")
    func sameVMTwice() throws {
        try requireSVirt()
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        let host = try LifecycleHost("svirt-twice")
        let img = try host.image("t.img")
        let type = HostProbe().kvm().usable ? "kvm" : "qemu"
        try host.define("twice", host.xml("twice", disks: [img], type: type))
        for _ in 0..<3 {
            let results = try parallel(2) { _ in try host.run("start", "twice") }
            #expect(results.filter { $0.status == 0 }.count == 1, "\(results.map(\.stderr))")
            let loser = try #require(results.first { $0.status != 0 })
            #expect(loser.stderr.contains("Requested operation is not valid: domain is already"), "\(loser.stderr)")
            #expect(try host.listJSON(all: false).count == 1)
            #expect(try host.run("destroy", "twice").status == 0)
        }
    }

    @Test("32 different VMs started in parallel get 32 distinct levels, and all are released after destroy")
    func thirtyTwo() throws {
        try requireSVirt()
        // The stand-in guest keeps this cheap; QEMU is exercised above. user = root: the stand-in is the test build's
        // own binary, which the unprivileged user may not be able to reach.
        let host = try LifecycleHost("svirt-32", config: "user = root\n")
        for i in 0..<32 {
            let img = try host.image("p\(i).img", owner: (0, 0))
            try host.define("p\(i)", host.xml("p\(i)", disks: [img]))
        }
        let results = try parallel(32) { i in try host.run("start", "p\(i)", "--stand-in") }
        #expect(results.allSatisfy { $0.status == 0 }, "\(results.filter { $0.status != 0 }.map(\.stderr))")
        let rows = try host.listJSON(all: false)
        let levels = rows.compactMap { $0["level"] as? String }
        #expect(rows.count == 32 && Set(levels).count == 32, "\(levels)")
        let destroyed = try parallel(32) { i in try host.run("destroy", "p\(i)") }
        #expect(destroyed.allSatisfy { $0.status == 0 }, "\(destroyed.filter { $0.status != 0 }.map(\.stderr))")
        #expect(try host.reservations().isEmpty)
    }
}

@Suite("svirt domain views and errors", .serialized, .enabled(if: getuid() == 0, "needs root"))
struct DomainViewCommandTests {
    /// The word dominfo and list -Z show after the label on this host.
    var mode: String {
        switch HostProbe().mechanism() {
        case .selinux: return "enforcing"
        case .selinuxPermissive: return "permissive"
        case .landlock: return "landlock"
        case .none: return "unconfined"
        }
    }

    @Test("dominfo, dumpxml, labels, list -Z and start --verbose show a running VM the way virsh, ls -Z and ps -eZ do")
    func views() throws {
        try requireSVirt()
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        let host = try LifecycleHost("svirt-views")
        let img = try host.image("v.img")
        let type = HostProbe().kvm().usable ? "kvm" : "qemu"
        try host.define("views", host.xml("views", disks: [img], type: type))
        let off = try host.run("dominfo", "views")
        #expect(off.stdout.contains("State:          shut off"))
        #expect(off.stdout.contains("Security model: selinux\nSecurity DOI:   0\n"))
        #expect(!off.stdout.contains("Security label:"))
        let started = try svirt(["start", "views", "--verbose", "--state-dir", host.state] + (mode == "unconfined" ? ["--unconfined"] : []))
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stderr.contains("command line: /usr/bin/qemu-system-x86_64 -name guest=views"), "\(started.stderr)")
        #expect(started.stderr.contains("-display none"))
        let row = try #require(try host.row("views"))
        let label = try #require(row["label"] as? String), image = try #require(row["imageLabel"] as? String)
        let info = try host.run("dominfo", "views")
        #expect(info.stdout.contains("State:          running"))
        #expect(info.stdout.contains("Security model: selinux\nSecurity DOI:   0\nSecurity label: \(label) (\(mode))\n"), "\(info.stdout)")
        #expect(info.stdout.contains("Process ID:     \(row["pid"] as? Int ?? -1)"))
        let live = try host.run("dumpxml", "views", "--live")
        #expect(live.stdout.contains("<seclabel type='dynamic' model='selinux' relabel='yes'><label>\(label)</label><imagelabel>\(image)</imagelabel></seclabel>"))
        #expect(try host.run("dumpxml", "views").stdout == live.stdout, "a running domain's dumpxml is its live XML")
        let inactive = try host.run("dumpxml", "views", "--inactive")
        #expect(!inactive.stdout.contains("<label>") && inactive.stdout.contains("<name>views</name>"))
        let labels = try host.run("labels", "views")
        #expect(labels.stdout == "\(image) \(GuestUserFacts.name) \(img)\n", "\(labels.stdout)")
        let list = try host.run("list", "-Z")
        #expect(list.stdout.contains("views") && list.stdout.contains("\(label) (\(mode))"), "\(list.stdout)")
        #expect(try svirt(["host", "--state-dir", host.state]).stdout.contains("Confinement:      \(HostProbe().mechanism().rawValue) ("))
        #expect(try host.run("destroy", "views").status == 0)
        #expect(try host.run("dumpxml", "views", "--live").stderr == "error: Requested operation is not valid: domain is not running\n")
    }

    @Test("shutdown powers off a guest that answers the power button, and destroys one that does not after the timeout")
    func shutdown() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-shutdown", config: "user = root\n")
        let a = try host.image("a.img", owner: (0, 0)), b = try host.image("b.img", owner: (0, 0))
        let beforeB = FileFacts(b)
        try host.define("standin", host.xml("standin", disks: [a]))
        #expect(try host.run("start", "standin", "--stand-in").status == 0)
        let polite = try host.run("shutdown", "standin", "--timeout", "20")
        #expect(polite.status == 0, "\(polite.stderr)")
        #expect(polite.stdout == "Domain 'standin' is being shutdown\n")
        #expect(!polite.stderr.contains("destroyed"), "the stand-in powers off on system_powerdown")
        #expect(try host.row("standin")?["state"] as? String == "shut off")
        try #require(qemuInstalled, "qemu-system-x86_64 is not installed (CI installs qemu-system-x86)")
        // QEMU with no operating system ignores the ACPI power button.
        try host.define("deaf", host.xml("deaf", disks: [b], type: HostProbe().kvm().usable ? "kvm" : "qemu"))
        #expect(try host.run("start", "deaf").status == 0)
        let deaf = try host.run("shutdown", "deaf", "--timeout", "1")
        #expect(deaf.status == 0, "\(deaf.stderr)")
        #expect(deaf.stderr.contains("note: 'deaf' did not power off within 1 s, so it was destroyed"), "\(deaf.stderr)")
        #expect(FileFacts(b) == beforeB)
        #expect(try host.reservations().isEmpty)
    }

    @Test("start --xml runs a transient domain that is gone after destroy; undefine leaves a running domain transient")
    func transient() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-transient", config: "user = root\n")
        let img = try host.image("t.img", owner: (0, 0))
        let xml = "\(host.dir)/t.xml"
        try host.xml("tmp", disks: [img]).write(toFile: xml, atomically: true, encoding: .utf8)
        let created = try host.run("start", "--xml", xml, "--stand-in")
        #expect(created.stdout == "Domain 'tmp' created from \(xml)\n", "\(created.stderr)")
        #expect(try host.row("tmp")?["persistent"] as? Bool == false)
        #expect(try host.run("dominfo", "tmp").stdout.contains("Persistent:     no"))
        #expect(try host.run("destroy", "tmp").status == 0)
        #expect(try host.row("tmp") == nil)
        #expect(try host.run("define", xml).status == 0)
        #expect(try host.run("start", "tmp", "--stand-in").status == 0)
        let undefined = try host.run("undefine", "tmp")
        #expect(undefined.stdout == "Domain 'tmp' has been undefined\n")
        #expect(try host.row("tmp")?["state"] as? String == "running")
        #expect(try host.run("destroy", "tmp").status == 0)
        #expect(try host.row("tmp") == nil)
    }

    @Test("errors read as virsh's, with exit status 1")
    func errors() throws {
        try requireSVirt()
        let host = try LifecycleHost("svirt-errors", config: "user = root\n")
        let img = try host.image("e.img", owner: (0, 0))
        let missing = try host.run("start", "nope")
        #expect(missing.status == 1 && missing.stderr == "error: failed to get domain 'nope'\n")
        #expect(try host.run("dominfo", "nope").stderr == "error: failed to get domain 'nope'\n")
        try host.define("e", host.xml("e", disks: [img]))
        let notRunning = try host.run("destroy", "e")
        #expect(notRunning.status == 1)
        #expect(notRunning.stderr == "error: Failed to destroy domain 'e'\nerror: Requested operation is not valid: domain is not running\n")
        #expect(try host.run("start", "e", "--stand-in").status == 0)
        let again = try host.run("start", "e", "--stand-in")
        #expect(again.stderr == "error: Failed to start domain 'e'\nerror: Requested operation is not valid: domain is already active\n")
        let bad = "\(host.dir)/bad.xml"
        try "<domain type='kvm'><name>x</name></domain>".write(toFile: bad, atomically: true, encoding: .utf8)
        let invalid = try host.run("define", bad)
        #expect(invalid.status == 1 && invalid.stderr.hasPrefix("error: Failed to define domain from \(bad)\nerror: domain: <memory> is missing"), "\(invalid.stderr)")
        #expect(try host.run("destroy", "e").status == 0)
    }
}

/// The unprivileged user svirt runs QEMU as by default on this host.
enum GuestUserFacts {
    static let uid: UInt32 = (try? GuestUser.resolve(user: nil, group: nil).uid) ?? 65534
    /// `user:group` as `svirt labels` prints the owner.
    static let name: String = (try? GuestUser.resolve(user: nil, group: nil)).map { "\($0.user):\($0.group)" } ?? "nobody:nogroup"
}

/// Results filled in by concurrent workers, each at its own index.
final class ParallelResults<T>: @unchecked Sendable {
    var results: [Result<T, any Error>?]
    let lock = NSLock()
    init(_ n: Int) { results = Array(repeating: nil, count: n) }
}

/// Runs `body` for 0..<n at once, each on its own thread, and returns the results in order.
func parallel<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let box = ParallelResults<T>(n)
    DispatchQueue.concurrentPerform(iterations: n) { i in
        let r = Result { try body(i) }
        box.lock.lock()
        box.results[i] = r
        box.lock.unlock()
    }
    return try box.results.map { try ($0 ?? .failure(POSIXError(.EIO))).get() }
}
