import Foundation
import Testing

/// svirt on a real enforcing kernel: `scripts/selinux-guest` boots Debian's kernel under QEMU with the policy
/// package's policy loaded, runs real svirt starting real QEMU (TCG) there, and prints what the kernel says.
/// The assertions are on the kernel's own answers (`/proc/PID/attr/current`, `security.selinux` read by
/// getfattr, AVC records, QEMU's errno through QMP) unless they say they check svirt's output.
///
/// Modes: Debian's default policy and its mls policy as packaged, the mls policy with svirt's policy module
/// (`selinux/svirt.cil`, `svirt-mls.cil`), and the default policy left permissive (the negative control).
@Suite("svirt in an enforcing guest", .enabled(if: GuestGate.enabled), .serialized)
struct EnforcingGuestTests {
    typealias Mode = GuestBoots.Mode

    func boot(_ mode: Mode) async throws -> GuestRun {
        let run = try await GuestBoots.shared.run(mode)
        try #require(run.exitStatus == 0 && run["scenario_done"] == "yes",
                     "the \(mode.rawValue) guest did not finish its scenario (exit \(run.exitStatus)); see .build-selinux-guest/logs/\(mode.rawValue).log")
        return run
    }

    @Test("the guest booted SELinux enforcing; svirt runs in virtd_t, reached by the policy's own transitions",
          arguments: [Mode.defaultPolicy, .mlsPolicy, .mlsModule])
    func enforcingAndDomains(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["module"] == (mode == .mlsModule ? "1" : "0"))
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
        // The kernel's booleans, as svirt reads them from selinuxfs (the scenario set virt_use_execmem on)
        #expect(run.output("host").contains("Booleans (the kernel's, from selinuxfs):"), "\(run.output("host"))")
        if mode == .mlsModule {
            #expect(run.outputs["host"]?.contains { $0.hasPrefix("  virt_use_execmem ") && $0.hasSuffix(" on") } == true, "\(run.output("host"))")
            #expect(run.outputs["host"]?.contains { $0.hasPrefix("  virt_use_nfs ") && $0.hasSuffix(" off") } == true, "\(run.output("host"))")
        } else {
            // Debian's virtd_t may not read boolean_t files: svirt says so, and the kernel logged the refusal
            #expect(run.outputs["host"]?.contains { $0.hasPrefix("  virt_use_execmem ") && $0.hasSuffix("virt_use_execmem: Permission denied)") } == true,
                    "\(run.output("host"))")
            #expect(run.avcs.contains { $0.contains("name=\"virt_use_execmem\"") && $0.contains("scontext=system_u:system_r:virtd_t:") && $0.contains("tcontext=system_u:object_r:boolean_t:") })
        }
        // Labels: the probe asks what a start asks, an image type's relabel, which virtd_t may do
        #expect(run.output("host").contains("Labels:           writable"), "\(run.output("host"))")
    }

    @Test("each VM's QEMU runs as svirt_t with its own category pair, and its image carries the same level",
          arguments: [Mode.defaultPolicy, .mlsModule])
    func processAndImageLabels(_ mode: Mode) async throws {
        let run = try await boot(mode)
        do {
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

    @Test("mls without svirt's module: the kernel refuses virtd_t the relabel (validatetrans), svirt names the module, and nothing is left labelled")
    func mlsRelabelRefused() async throws {
        let run = try await boot(.mlsPolicy)
        let start = run.output("start_vm1")
        #expect(run.status("start_vm1") != 0, "\(start)")
        #expect(start.contains("unable to set the security context system_u:object_r:svirt_image_t:s0:c"), "\(start)")
        #expect(start.contains("Operation not permitted (the SELinux policy refused this relabel"), "\(start)")
        #expect(start.contains("load svirt's policy module (semodule -i selinux/svirt.cil selinux/svirt-mls.cil"), "\(start)")
        #expect(run.selinuxErrors.contains { $0.contains("security_validate_transition") && $0.contains("svirt_image_t:s0:c") },
                "\(run.selinuxErrors)")
        #expect(run["label_running_vm1"] == run["label_initial_vm1"])
        #expect(run["vm1_pid"] == "none")
        #expect(run["label_destroyed_vm1"] == run["label_initial_vm1"])
    }

    @Test("the kernel refuses VM1's QEMU VM2's image (EACCES, AVC permissive=0) and lets it open its own",
          arguments: [Mode.defaultPolicy, .mlsModule])
    func crossVMDenied(_ mode: Mode) async throws {
        let run = try await boot(mode)
        do {
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
          arguments: [Mode.defaultPolicy, .mlsModule])
    func explainDenial(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["klog_rc"] == "0")
        #expect(run.status("explain_vm1") == 0)
        do {
            let l1 = try #require(contextLevel(run["vm1_context"])), l2 = try #require(contextLevel(run["vm2_context"]))
            let text = run.output("explain_vm1")
            #expect(text.contains("scontext=system_u:system_r:svirt_t:\(l1) tcontext=system_u:object_r:svirt_image_t:\(l2) tclass=file"), "\(text)")
            #expect(text.contains("the MCS categories differ: this process may not touch another VM's files (\(l1) does not dominate \(l2))"), "\(text)")
        }
    }

    @Test("destroy gives each private image its original label back and the QEMU processes are gone",
          arguments: [Mode.defaultPolicy, .mlsModule])
    func destroyRestores(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["label_initial_vm1"] == "system_u:object_r:virt_image_t:s0")   // file_contexts' default
        #expect(run["label_initial_vm2"] == "system_u:object_r:virt_image_t:s0")
        #expect(run["label_destroyed_vm1"] == run["label_initial_vm1"])
        #expect(run["label_destroyed_vm2"] == run["label_initial_vm2"])
        do {
            #expect(run.status("destroy_vm1") == 0, "\(run.output("destroy_vm1"))")
            #expect(run.status("destroy_vm2") == 0, "\(run.output("destroy_vm2"))")
            #expect(run["vm1_pid"] != "none" && run["vm1_gone"] == "yes")
            #expect(run["vm2_pid"] != "none" && run["vm2_gone"] == "yes")
        }
    }

    @Test("a <shareable/> disk gets svirt_image_t:s0 and a <readonly/> disk virt_content_t:s0",
          arguments: [Mode.defaultPolicy, .mlsPolicy, .mlsModule])
    func sharedAndReadOnly(_ mode: Mode) async throws {
        let run = try await boot(mode)
        #expect(run["label_shared_running_shared"] == "system_u:object_r:svirt_image_t:s0")
        #expect(run["label_shared_running_ro"] == "system_u:object_r:virt_content_t:s0")
        // As libvirt, svirt leaves shared and read-only images labelled at stop (other VMs may use them).
        #expect(run["label_shared_destroyed_shared"] == "system_u:object_r:svirt_image_t:s0")
        #expect(run["label_shared_destroyed_ro"] == "system_u:object_r:virt_content_t:s0")
        if mode == .mlsPolicy || mode == .mlsModule {
            // The mls policy's write rule wants equal levels: a VM (s0:cX,cY) may not write an s0 shared disk.
            // svirt check says so before a start; the kernel refuses QEMU's open.
            #expect(run.output("check_queries").contains("FAIL own-access: 'Shared_VM' needs write on its /var/lib/libvirt/images/shared.img (system_u:object_r:svirt_image_t:s0) but the policy refuses it"),
                    "\(run.output("check_queries"))")
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

    @Test("static labels as the chapter: Static_VM1 refused by the preflight, fixed with chcon, run with exactly its label and its image left alone; Static_VM2 as unconfined_t refused by the policy")
    func staticLabels() async throws {
        let run = try await boot(.defaultPolicy)
        let refused = run.output("start_static1_before")
        #expect(run.status("start_static1_before") != 0, "\(refused)")
        #expect(refused.contains("svirt_t may not read and write it"), "\(refused)")
        #expect(refused.contains("run 'chcon -t svirt_image_t /var/lib/libvirt/images/static1.img'"), "\(refused)")
        #expect(run["label_static_before_static1"] == run["label_initial_static1"], "the refused start changed nothing")
        #expect(run["chcon_static1_rc"] == "0")
        let fixed = "system_u:object_r:svirt_image_t:s0:c1022,c1023"
        #expect(run["label_static_fixed_static1"] == fixed)
        #expect(run.status("start_static1") == 0, "\(run.output("start_static1"))")
        #expect(run["static1_context"] == "system_u:system_r:svirt_t:s0:c1022,c1023")
        #expect(run["label_static_running_static1"] == fixed)
        #expect(run.status("destroy_static1") == 0)
        #expect(run["static1_gone"] == "yes")
        #expect(run["label_static_destroyed_static1"] == fixed, "relabel='no': svirt never gives it another label")
        // Static_VM2: Debian's policy has no virt_transition_userdomain; the kernel refuses virtd_t the VM's
        // monitor socket as unconfined_t, and svirt says what that means
        let v2 = run.output("start_static2")
        #expect(run.status("start_static2") != 0)
        #expect(run["static2_pid"] == "none")
        #expect(v2.contains("the SELinux policy refused creating its monitor socket"), "\(v2)")
        #expect(v2.contains("system_u:system_r:unconfined_t:s0:c11,c22") && v2.contains("virt_transition_userdomain"), "\(v2)")
        #expect(run.avcs.contains { $0.contains("scontext=system_u:system_r:virtd_t:s0 tcontext=system_u:system_r:unconfined_t:s0:c11,c22")
            && $0.contains("permissive=0") })
        #expect(run["label_static2_after_static2"] == run["label_initial_static2"])
    }

    @Test("after kill -9 of a QEMU, the next svirt command gives its image's label back",
          arguments: [Mode.defaultPolicy, .mlsModule])
    func killReconciles(_ mode: Mode) async throws {
        let run = try await boot(mode)
        do {
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

    @Test("on Debian's policies as packaged, a confined svirt keeps its registry in /var/lib/svirt, labels QEMU's log, and says why it decides with its built-in policy",
          arguments: [Mode.defaultPolicy, .mlsPolicy])
    func svirtUnderDebianPolicy(_ mode: Mode) async throws {
        let run = try await boot(mode)
        // virtd_t may not map the registry's -shm there: svirt keeps a rollback journal instead of WAL
        #expect(run.status("list_default_state") == 0, "\(run.output("list_default_state"))")
        #expect(!run.avcs.contains { $0.contains("{ map }") && $0.contains("registry.sqlite") })
        // virtd_t may not read /etc/selinux/TYPE/policy: the kernel refuses, and svirt says so and what to do
        #expect(run.avcs.contains { $0.contains("name=\"policy\"") && $0.contains("scontext=system_u:system_r:virtd_t:") })
        let host = run.output("host")
        #expect(host.contains("Policy:           svirt's built-in policy: /etc/selinux/\(mode.rawValue)/policy may not be read by this process (Permission denied)"), "\(host)")
        #expect(host.contains("load svirt's policy module, which lets virtd_t read the policy"), "\(host)")
        // QEMU appends to its log, which svirt created with its VM's image label. Under mls without svirt's
        // module virtd_t may not create a file at a VM's level either (as it may not relabel one): the kernel
        // refuses the create, and no VM with a private level starts there anyway.
        if mode == .defaultPolicy {
            #expect(!run.avcs.contains { $0.contains("qemu.log") })
            #expect(!run.output("start_vm1").contains("QEMU may not be able to write its log"), "\(run.output("start_vm1"))")
        } else {
            let refused = run.avcs.filter { $0.contains("qemu.log") && $0.contains("scontext=system_u:system_r:virtd_t:") }
            #expect(refused.allSatisfy { $0.contains("{ create }") && $0.contains("tcontext=system_u:object_r:svirt_image_t:s0:c") }, "\(refused)")
        }
    }

    @Test("with svirt's policy module, svirt in virtd_t reads the host's policy and maps its registry's index")
    func svirtWithModule() async throws {
        let run = try await boot(.mlsModule)
        let host = run.output("host")
        #expect(host.contains("Policy:           /etc/selinux/mls/policy/policy.33 (version 33)"), "\(host)")
        #expect(!run.avcs.contains { $0.contains("name=\"policy\"") && $0.contains("scontext=system_u:system_r:virtd_t:") })
        #expect(run.status("list_default_state") == 0, "\(run.output("list_default_state"))")
        #expect(!run.avcs.contains { $0.contains("{ map }") && $0.contains("registry.sqlite") })
        #expect(!run.avcs.contains { $0.contains("qemu.log") })
        #expect(!run.output("start_vm1").contains("QEMU may not be able to write its log"), "\(run.output("start_vm1"))")
        // no relabel of svirt's (virtd_t) was refused; the boot's own relabel (kernel_t) and the administrator's
        // chcon (initrc_t, which has no mlsfileupgrade either) are
        let svirtRefused = run.selinuxErrors.filter { $0.contains("security_validate_transition") && $0.contains("taskcontext=system_u:system_r:virtd_t:") }
        #expect(svirtRefused.isEmpty, "\(svirtRefused)")
        #expect(run.status("start_vm1") == 0 && run.status("destroy_vm1") == 0)
        // explain, in virtd_t, decides with the host's policy, not the built-in one
        #expect(!run.output("explain_vm1").contains("built-in"), "\(run.output("explain_vm1"))")
    }

    @Test("the kernel as oracle: every cell of svirt check, a sample of policy decisions, and file_contexts lookups agree with the kernel and libselinux",
          arguments: [Mode.defaultPolicy, .mlsPolicy, .mlsModule])
    func kernelOracle(_ mode: Mode) async throws {
        let run = try await boot(mode)
        // svirt check's cells (running VMs, and a defined one with its planned level), one permission per line
        #expect(run.status("check_queries").map { $0 == 0 || $0 == 1 } == true, "\(run.output("check_queries"))")
        let engine = run.decisions("ENGINE", "check"), kernel = run.decisions("KERNEL", "check")
        #expect(engine.count >= 40, "\(engine.count) questions")
        #expect(engine.values.contains("ALLOW") && engine.values.contains("DENY"))
        #expect(Set(kernel.keys) == Set(engine.keys))
        let cellsDiffer = engine.filter { kernel[$0.key] != $0.value }.sorted { $0.key < $1.key }
        #expect(cellsDiffer.isEmpty, "svirt check and the kernel differ on \(cellsDiffer.count) of \(engine.count): \(cellsDiffer.prefix(10).map { "\($0.value) (kernel \(kernel[$0.key] ?? "none")): \($0.key)" })")

        // the policy sample drawn as the libsepol differential draws it
        #expect(run["policy_batch_rc"].map { $0 == "0" || $0 == "1" } == true, "\(run.output("policy_batch_err"))")
        let sampleEngine = run.decisions("ENGINE", "policy"), sampleKernel = run.decisions("KERNEL", "policy")
        let answered = sampleKernel.filter { $0.value == "ALLOW" || $0.value == "DENY" }
        #expect(sampleEngine.count >= 900, "\(sampleEngine.count) answers from svirt")
        #expect(answered.count == sampleKernel.count, "the kernel could not answer: \(sampleKernel.filter { $0.value != "ALLOW" && $0.value != "DENY" }.prefix(5))")
        #expect(answered.values.contains("ALLOW") && answered.values.contains("DENY"))
        let sampleDiffer = answered.filter { q, k in (sampleEngine[q] == "ALLOW") != (k == "ALLOW") }.sorted { $0.key < $1.key }
        #expect(sampleDiffer.isEmpty, "svirt and the kernel differ on \(sampleDiffer.count) of \(answered.count): \(sampleDiffer.prefix(10).map { "\(sampleEngine[$0.key] ?? "none") (kernel \($0.value)): \($0.key)" })")

        // file_contexts: svirt fcontext lookup against matchpathcon, path by path and type by type
        #expect(run.status("fcontext_batch") == 0)
        var svirtLabel: [String: String] = [:]
        for line in run.answers["ENGINE"]?["fcontext"] ?? [] {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            if f.count >= 3 { svirtLabel["\(f[1]) \(f[2])"] = String(f[0]) }
        }
        var compared = 0
        var fcDiffer: [String] = []
        for mode in ["--", "-d", "-l", "-s", "-c", "-b"] {
            for line in run.answers["LIBSELINUX"]?["fcontext \(mode)"] ?? [] {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard f.count == 2 else { continue }
                compared += 1
                let mine = svirtLabel["\(f[0]) \(mode)"]
                if mine != String(f[1]) { fcDiffer.append("\(f[0]) \(mode): svirt \(mine ?? "none"), matchpathcon \(f[1])") }
            }
        }
        #expect(compared >= 500 && compared == Int(run["fcontext_paths"] ?? ""), "\(compared) compared of \(run["fcontext_paths"] ?? "?")")
        #expect(fcDiffer.isEmpty, "\(fcDiffer.count) differ: \(fcDiffer.prefix(10))")
    }
}
