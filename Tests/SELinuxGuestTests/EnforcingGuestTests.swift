import Foundation
import Testing

/// svirt on a real enforcing kernel: `scripts/selinux-guest` boots Debian's kernel under QEMU with the policy
/// package's policy loaded, runs real svirt starting real QEMU (TCG) there, and prints what the kernel says.
/// The assertions are on the kernel's own answers (`/proc/PID/attr/current`, `security.selinux` read by
/// getfattr, AVC records, QEMU's errno through QMP) unless they say they check svirt's output.
///
/// svirt failures found in the guest are `withKnownIssue`: the suite passes while they stand, and reports
/// "known issue was not recorded" once one is fixed, so the mark comes off with the fix.
@Suite("svirt in an enforcing guest", .enabled(if: GuestGate.enabled), .serialized)
struct EnforcingGuestTests {
    typealias Mode = GuestBoots.Mode

    static let mlsRelabel: Comment = """
        svirt cannot give an image a VM's level under Debian's mls policy: the kernel refuses virtd_t's \
        setxattr of security.selinux from s0 to s0:cX,cY (EPERM, validatetrans), so no dynamic VM starts
        """

    func boot(_ mode: Mode) async throws -> GuestRun {
        let run = try await GuestBoots.shared.run(mode)
        try #require(run.exitStatus == 0 && run["scenario_done"] == "yes",
                     "the \(mode.rawValue) guest did not finish its scenario (exit \(run.exitStatus)); see .build-selinux-guest/logs/\(mode.rawValue).log")
        return run
    }

    /// Runs `body`; in the modes where svirt is known to fail it, as a known issue.
    func checking(_ mode: Mode, knownIssueIn broken: Set<Mode>, _ why: Comment,
                  _ body: () async throws -> Void) async throws {
        if broken.contains(mode) {
            await withKnownIssue(why) { try await body() }
        } else {
            try await body()
        }
    }

    @Test("the guest booted SELinux enforcing; svirt runs in virtd_t, reached by the policy's own transitions",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func enforcingAndDomains(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["lsm"]?.split(separator: ",").contains("selinux") == true)
        #expect(run["load_policy_rc"] == "0")
        #expect(run["policy_mls"] == "1")
        #expect(run["enforce"] == "1")
        #expect(run["scenario_enforce"] == "1")
        #expect(run["enforce_at_end"] == "1")
        #expect(contextType(run["pid1_context"]) == "kernel_t")
        #expect(contextType(run["stage2_context"]) == "init_t")      // kernel_t -> init_t: init_exec_t
        #expect(contextType(run["scenario_context"]) == "initrc_t")  // init_t -> initrc_t: a bin_t script
        #expect(contextType(run["svirt_process_context"]) == "virtd_t", "svirt's own process, read from /proc while it runs")
        #expect(run["bool_virt_use_execmem"] == "on")
        #expect(run.host("accel") != nil)
        // svirt's report of the host, in its own words: it must see what the kernel says
        #expect(run.status("host") == 0)
        #expect(run.output("host").contains("SELinux:          enforcing"), "\(run.output("host"))")
        #expect(run.output("host").contains("Manager context:  \(run["svirt_process_context"] ?? "?")"), "\(run.output("host"))")
    }

    @Test("each VM's QEMU runs as svirt_t with its own category pair, and its image carries the same level",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func processAndImageLabels(_ mode: Mode) async throws {
        let run = try await boot(mode)
        try await checking(mode, knownIssueIn: [.mlsPolicy], Self.mlsRelabel) {
            #expect(run.status("start_vm1") == 0, "\(run.output("start_vm1"))")
            #expect(run.status("start_vm2") == 0, "\(run.output("start_vm2"))")
            let p1 = try #require(run["vm1_context"]), p2 = try #require(run["vm2_context"])
            #expect(p1.hasPrefix("system_u:system_r:svirt_t:s0:c"))
            #expect(p2.hasPrefix("system_u:system_r:svirt_t:s0:c"))
            let l1 = try #require(contextLevel(p1)), l2 = try #require(contextLevel(p2))
            #expect(isCategoryPair(l1) && isCategoryPair(l2))
            #expect(l1 != l2)
            #expect(run["label_running_vm1"] == "system_u:object_r:svirt_image_t:\(l1)")
            #expect(run["label_running_vm2"] == "system_u:object_r:svirt_image_t:\(l2)")
        }
    }

    @Test("mls: the kernel's refusal of svirt's relabel is validatetrans on the image, and nothing is left labelled")
    func mlsRelabelRefused() async throws {
        let run = try await boot(.mlsPolicy)
        let start = run.output("start_vm1")
        guard run.status("start_vm1") != 0 else { return }   // fixed: processAndImageLabels says so
        #expect(start.contains("unable to set the security context system_u:object_r:svirt_image_t:s0:c"), "\(start)")
        #expect(start.contains("Operation not permitted (the SELinux policy refused this relabel"), "\(start)")
        #expect(run.selinuxErrors.contains { $0.contains("security_validate_transition") && $0.contains("svirt_image_t:s0:c") },
                "\(run.selinuxErrors)")
        #expect(run["label_running_vm1"] == run["label_initial_vm1"])
        #expect(run["vm1_pid"] == "none")
    }

    @Test("the kernel refuses VM1's QEMU VM2's image (EACCES, AVC permissive=0) and lets it open its own",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func crossVMDenied(_ mode: Mode) async throws {
        let run = try await boot(mode)
        try await checking(mode, knownIssueIn: [.mlsPolicy], Self.mlsRelabel) {
            let l1 = try #require(contextLevel(run["vm1_context"])), l2 = try #require(contextLevel(run["vm2_context"]))
            #expect(run.output("qmp_vm1_other").contains("Could not open '/var/lib/libvirt/images/vm2.img': Permission denied"),
                    "\(run.output("qmp_vm1_other"))")
            let avcs = run.denials(scontext: "system_u:system_r:svirt_t:\(l1)", tcontext: "system_u:object_r:svirt_image_t:\(l2)")
            #expect(!avcs.isEmpty, "no AVC for svirt_t:\(l1) on svirt_image_t:\(l2)")
            #expect(avcs.allSatisfy { $0.contains("permissive=0") && $0.contains("tclass=file") && $0.contains("name=\"vm2.img\"") })
            #expect(run.output("qmp_vm1_own") == "{\"return\":{}}", "\(run.output("qmp_vm1_own"))")
            #expect(run.denials(scontext: "system_u:system_r:svirt_t:\(l1)", tcontext: "system_u:object_r:svirt_image_t:\(l1)").isEmpty)
        }
    }

    @Test("svirt explain --vm reads the kernel's log and says the MCS categories differ",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func explainDenial(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["klog_rc"] == "0")
        #expect(run.status("explain_vm1") == 0)
        try await checking(mode, knownIssueIn: [.mlsPolicy], Self.mlsRelabel) {
            let l1 = try #require(contextLevel(run["vm1_context"])), l2 = try #require(contextLevel(run["vm2_context"]))
            let text = run.output("explain_vm1")
            #expect(text.contains("scontext=system_u:system_r:svirt_t:\(l1) tcontext=system_u:object_r:svirt_image_t:\(l2) tclass=file"), "\(text)")
            #expect(text.contains("the MCS categories differ: this process may not touch another VM's files (\(l1) does not dominate \(l2))"), "\(text)")
        }
    }

    @Test("destroy gives each private image its original label back and the QEMU processes are gone",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func destroyRestores(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["label_initial_vm1"] == "system_u:object_r:virt_image_t:s0")   // file_contexts' default
        #expect(run["label_initial_vm2"] == "system_u:object_r:virt_image_t:s0")
        #expect(run["label_destroyed_vm1"] == run["label_initial_vm1"])
        #expect(run["label_destroyed_vm2"] == run["label_initial_vm2"])
        try await checking(mode, knownIssueIn: [.mlsPolicy], Self.mlsRelabel) {
            #expect(run.status("destroy_vm1") == 0, "\(run.output("destroy_vm1"))")
            #expect(run.status("destroy_vm2") == 0, "\(run.output("destroy_vm2"))")
            #expect(run["vm1_pid"] != "none" && run["vm1_gone"] == "yes")
            #expect(run["vm2_pid"] != "none" && run["vm2_gone"] == "yes")
        }
    }

    @Test("a <shareable/> disk gets svirt_image_t:s0 and a <readonly/> disk virt_content_t:s0",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func sharedAndReadOnly(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["label_shared_running_shared"] == "system_u:object_r:svirt_image_t:s0")
        #expect(run["label_shared_running_ro"] == "system_u:object_r:virt_content_t:s0")
        // As libvirt, svirt leaves shared and read-only images labelled at stop (other VMs may use them).
        #expect(run["label_shared_destroyed_shared"] == "system_u:object_r:svirt_image_t:s0")
        #expect(run["label_shared_destroyed_ro"] == "system_u:object_r:virt_content_t:s0")
        if mode == .mlsPolicy {
            // The mls policy's write rule wants equal levels: a VM (s0:cX,cY) may not write an s0 shared disk.
            // svirt check says so before a start; the kernel refuses QEMU's open.
            #expect(run.status("start_shared") != 0)
            // QEMU is handed the disk as a descriptor, so the kernel refuses the write on the inherited file
            // (path=...) rather than an open by name.
            let avc = try #require(run.avcs.first { $0.contains("{ write }") && $0.contains("shared.img") })
            #expect(avc.contains("scontext=system_u:system_r:svirt_t:s0:c") && avc.contains("permissive=0"), "\(avc)")
            #expect(avc.contains("tcontext=system_u:object_r:svirt_image_t:s0 tclass=file"), "\(avc)")
        } else {
            #expect(run.status("start_shared") == 0, "\(run.output("start_shared"))")
            #expect(contextType(run["shared_context"]) == "svirt_t")
            #expect(isCategoryPair(contextLevel(run["shared_context"])))
            #expect(run["shared_gone"] == "yes")
        }
    }

    @Test("after kill -9 of a QEMU, the next svirt command gives its image's label back",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func killReconciles(_ mode: Mode) async throws {
        let run = try await boot(mode)
        try await checking(mode, knownIssueIn: [.mlsPolicy], Self.mlsRelabel) {
            let killed = try #require(contextLevel(run["killed_context"]))
            #expect(isCategoryPair(killed))
            #expect(run["label_killed_running_vm1"] == "system_u:object_r:svirt_image_t:\(killed)")
            #expect(run["kill9_rc"] == "0")
            #expect(run["killed_gone"] == "yes")
            #expect(run["label_killed_before_list_vm1"] == run["label_killed_running_vm1"], "only svirt gives the label back")
            #expect(run.status("list_after_kill") == 0, "\(run.output("list_after_kill"))")
            #expect(run.output("list_after_kill").contains("its QEMU process (pid \(run["killed_pid"] ?? "?")) is gone"))
            #expect(run["label_killed_after_list_vm1"] == run["label_initial_vm1"])
        }
    }

    @Test("negative control: permissive, the same cross-VM open succeeds and the AVC says permissive=1")
    func permissiveControl() async throws {
        let run = try await boot(.permissive)
        #expect(run["enforce"] == "0")
        #expect(run["scenario_enforce"] == "0")
        #expect(run.output("host").contains("SELinux:          permissive"), "\(run.output("host"))")
        let l1 = try #require(contextLevel(run["vm1_context"])), l2 = try #require(contextLevel(run["vm2_context"]))
        #expect(isCategoryPair(l1) && isCategoryPair(l2) && l1 != l2)
        #expect(run["label_running_vm2"] == "system_u:object_r:svirt_image_t:\(l2)")
        #expect(run.output("qmp_vm1_other") == "{\"return\":{}}", "\(run.output("qmp_vm1_other"))")
        let avcs = run.denials(scontext: "system_u:system_r:svirt_t:\(l1)", tcontext: "system_u:object_r:svirt_image_t:\(l2)")
        #expect(!avcs.isEmpty)
        #expect(avcs.allSatisfy { $0.contains("permissive=1") })
    }

    @Test("svirt's own problems under Debian's policy, as the kernel reports them", arguments: [Mode.defaultPolicy, .mlsPolicy])
    func svirtUnderDebianPolicy(_ mode: Mode) async throws {
        let run = try await boot(mode)
        withKnownIssue("the registry (SQLite WAL) in /var/lib/svirt: virtd_t may not map virt_var_lib_t files (the -shm)") {
            #expect(run.status("list_default_state") == 0, "\(run.output("list_default_state"))")
        }
        withKnownIssue("virtd_t may not read /etc/selinux/TYPE/policy: svirt falls back to its built-in policy") {
            #expect(!run.output("host").contains("svirt's built-in policy"))
        }
        #expect(run.avcs.contains { $0.contains("name=\"policy\"") && $0.contains("scontext=system_u:system_r:virtd_t:") })
        withKnownIssue("QEMU (svirt_t) may not append to its log /run/svirt/NAME/qemu.log (virt_runtime_t): its errors are lost") {
            #expect(!run.avcs.contains { $0.contains("/qemu.log") && $0.contains("{ append }") })
        }
    }
}
