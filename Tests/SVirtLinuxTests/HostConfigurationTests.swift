import Foundation
import Testing
@testable import SELinux
@testable import SVirt
@testable import SVirtLinux

@Suite("host SELinux configuration") struct HostConfigurationTests {
    @Test("with no configuration tree, svirt uses its built-in contexts and says so")
    func builtIn() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let h = try HostSELinuxConfiguration.load(root: dir.path)
        #expect(h.isBuiltIn)
        #expect(h.contexts.processBase.context.description == "system_u:system_r:svirt_t:s0")
        #expect(h.contexts.tcgProcessBase?.context.type == "svirt_tcg_t")
        #expect(h.contexts.imageBase.context.type == "svirt_image_t")
        #expect(h.contexts.contentLabel.context.type == "virt_content_t")
        #expect(h.contexts.restoreFallback.context.type == "virt_image_t")
        #expect(h.contexts.processBase.source.isBuiltIn)
        #expect(h.notes.contains { $0.contains("\(dir.path)/config does not exist") })
    }

    @Test("a one-line virtual_domain_context gives no TCG context and a note about virt_use_execmem")
    func debianShape() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("config", "# comment\nSELINUX=enforcing\nSELINUXTYPE=targeted\n")
        _ = try dir.file("targeted/contexts/virtual_domain_context", "system_u:system_r:svirt_t:s0\n")
        _ = try dir.file("targeted/contexts/virtual_image_context",
                         "system_u:object_r:svirt_image_t:s0\nsystem_u:object_r:virt_content_t:s0\n")
        _ = try dir.file("targeted/contexts/files/file_contexts", "/var/lib/libvirt/images(/.*)? system_u:object_r:virt_image_t:s0\n")
        _ = try dir.file("targeted/policy/policy.31", "x")
        _ = try dir.file("targeted/policy/policy.33", "x")
        _ = try dir.file("targeted/policy/policy.30", "x")
        let h = try HostSELinuxConfiguration.load(root: dir.path)
        #expect(h.policyType == "targeted")
        #expect(h.configuredMode == .enforcing)
        #expect(h.contexts.tcgProcessBase == nil)
        #expect(h.contexts.processBase.source == .file(path: "\(dir.path)/targeted/contexts/virtual_domain_context", line: 1))
        #expect(h.contexts.contentLabel.source == .file(path: "\(dir.path)/targeted/contexts/virtual_image_context", line: 2))
        #expect(h.policyVersion == 33)
        #expect(h.policyPath == "\(dir.path)/targeted/policy/policy.33")
        #expect(h.fileContextsPath == "\(dir.path)/targeted/contexts/files/file_contexts")
        #expect(h.notes.contains { $0.contains("virt_use_execmem") })
    }

    @Test("a two-line virtual_domain_context gives the TCG context from line 2")
    func tcgLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("config", "SELINUX=permissive\nSELINUXTYPE=\"targeted\"\n")
        _ = try dir.file("targeted/contexts/virtual_domain_context",
                         "system_u:system_r:svirt_t:s0\n\nsystem_u:system_r:svirt_tcg_t:s0\n")
        let h = try HostSELinuxConfiguration.load(root: dir.path)
        #expect(h.contexts.tcgProcessBase?.context.type == "svirt_tcg_t")
        #expect(h.contexts.tcgProcessBase?.source == .file(path: "\(dir.path)/targeted/contexts/virtual_domain_context", line: 3))
        // The image file is missing: built-in image contexts, with a note.
        #expect(h.contexts.imageBase.source.isBuiltIn)
        #expect(h.notes.contains { $0.contains("virtual_image_context does not exist") })
    }

    @Test("a bad context in a contexts file is an error naming the file and line")
    func badContextLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("config", "SELINUXTYPE=t\n")
        _ = try dir.file("t/contexts/virtual_image_context", "system_u:object_r:svirt_image_t:s0\nnot a context\n")
        do {
            _ = try HostSELinuxConfiguration.load(root: dir.path)
            Issue.record("accepted a bad contexts file")
        } catch let e as SELinuxError {
            #expect(e.message.hasPrefix("\(dir.path)/t/contexts/virtual_image_context:2:"))
        }
    }

    @Test("bad SELINUX= and unsafe SELINUXTYPE= values are errors with the line")
    func badConfig() throws {
        #expect(throws: SELinuxError.self) { try SELinuxConfigFile.parse("SELINUX=sometimes\n", path: "c") }
        do {
            _ = try SELinuxConfigFile.parse("\nSELINUXTYPE=../../etc\n", path: "/etc/selinux/config")
            Issue.record("accepted a path as SELINUXTYPE")
        } catch let e as SELinuxError {
            #expect(e.message.hasPrefix("/etc/selinux/config:2:"))
        }
        let ok = try SELinuxConfigFile.parse("SELINUX=Disabled\nSETLOCALDEFS=0\n", path: "c")
        #expect(ok.mode == .disabled)
    }

    @Test("the real Debian configuration on this machine is read when it exists",
          .enabled(if: FileManager.default.fileExists(atPath: "/etc/selinux/default/contexts/virtual_domain_context")))
    func debianHost() throws {
        let h = try HostSELinuxConfiguration.load()
        #expect(h.policyType != nil)
        #expect(h.contexts.processBase.context.type == "svirt_t")
        #expect(h.contexts.imageBase.context.type == "svirt_image_t")
        #expect(h.policyPath != nil)
    }
}

@Suite("host probe") struct HostProbeTests {
    @Test("without selinuxfs in the mount table SELinux is disabled, whatever /etc/selinux/config says")
    func disabled() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("self/mounts", "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n")
        #expect(HostProbe(procRoot: dir.path).selinux() == .disabled)
    }

    @Test("selinuxfs with enforce 1 is enforcing and 0 is permissive")
    func enforcing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fs = "\(dir.path)/selinuxfs"
        _ = try dir.file("self/mounts", "selinuxfs \(fs) selinuxfs rw 0 0\n")
        _ = try dir.file("selinuxfs/enforce", "1")
        let probe = HostProbe(procRoot: dir.path)
        #expect(probe.selinux() == .enforcing)
        #expect(probe.mechanism() == .selinux)
        _ = try dir.file("selinuxfs/enforce", "0")
        #expect(probe.selinux() == .permissive)
    }

    @Test("this kernel reports Landlock and the mechanism follows it")
    func landlock() {
        let probe = HostProbe()
        if probe.selinux() == .disabled {
            #expect(probe.mechanism() == (probe.landlock().abi != nil ? .landlock : .none))
        }
    }

    @Test("labels are writable in a directory on a normal filesystem as root", .enabled(if: isRoot, "needs root"))
    func labelsWritable() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let r = HostProbe().labelsWritable(in: dir.path)
        #expect(r.writable, "\(r.reason)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

@Suite("xattr errors") struct XattrErrorTests {
    @Test("EPERM on security.selinux as root names the policy's validatetrans, as another user names root")
    func permissionHint() {
        #expect(XattrFile.permissionHint("setxattr security.selinux", euid: 0).contains("op=security_validate_transition"))
        #expect(XattrFile.permissionHint("setxattr security.selinux", euid: 1000) == "security.* and trusted.* attributes need root")
        #expect(XattrFile.permissionHint("setxattr trusted.svirt.security.dac", euid: 0) == "security.* and trusted.* attributes need root")
    }
}

@Suite("procfs") struct ProcFSTests {
    @Test("the start time is read after the last ')' even when the command name holds ') '")
    func startTime() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fields = (3...52).map { $0 == 22 ? "987654" : "\($0)" }.joined(separator: " ")
        _ = try dir.file("77/stat", "77 (evil) (name) \(fields)\n")
        let p = ProcFS(root: dir.path)
        #expect(p.startTime(of: 77) == 987654)
        #expect(p.startTime(of: 78) == nil)
        #expect(!p.isAlive(ProcessIdentity(pid: 77, startTime: 1)))
    }

    @Test("this process's own context is read from thread-self (no process getattr on itself), else from self")
    func ownContextPath() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.file("self/attr/current", "system_u:system_r:leader_t:s0\0")
        let p = ProcFS(root: dir.path)
        #expect(p.context() == "system_u:system_r:leader_t:s0")
        #expect(p.selfContextPath == "\(dir.path)/self/attr/current")
        _ = try dir.file("thread-self/attr/current", "system_u:system_r:virtd_t:s0-s0:c0.c1023\0")
        #expect(p.context() == "system_u:system_r:virtd_t:s0-s0:c0.c1023")
        #expect(p.selfContextPath == "\(dir.path)/thread-self/attr/current")
        let env = try HostEnvironment(stateDirectory: "\(dir.path)/state", selinuxRoot: dir.path, proc: p)
        #expect(env.managerContext().context.description == "system_u:system_r:virtd_t:s0-s0:c0.c1023")
    }

    @Test("this process is alive, and a pid with another start time is not")
    func selfIdentity() throws {
        let p = ProcFS()
        let me = try #require(p.selfIdentity())
        #expect(p.isAlive(me))
        #expect(!p.isAlive(ProcessIdentity(pid: me.pid, startTime: me.startTime &+ 1)))
    }
}
