import ArgumentParser
import Foundation
import Glibc
import SELinux
import SVirt
import SVirtLinux

/// `svirt demo`: the SELinux Notebook's chapter "SELinux Virtual Machine Support", run for real in a scratch
/// directory: the chapter's VMs are defined and started as QEMU guests (or svirt's stand-in guest where QEMU is
/// missing), their labels printed as the chapter's tables and `ls -Z`/`ps -eZ` listings, Static_VM1 refused by
/// the preflight and started after the relabel, Static_VM2 started only while virt_transition_userdomain is on,
/// one guest's QEMU refused another's image, and every label given back at the end.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the SELinux Notebook's VM chapter end to end with confined QEMU guests in a scratch directory, then clean up.",
        discussion: """
            Needs root (security.* labels, and QEMU runs as an unprivileged user). Everything happens in a fresh \
            directory under /tmp with its own state directory, which is removed at the end; the host's own state \
            directory is not touched.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("stand-in"), help: "Use svirt's stand-in guest even where QEMU is installed.")
    var standIn = false

    @Flag(help: "Keep the scratch directory (images, registry, logs) instead of removing it.")
    var keep = false

    func run() async throws {
        guard getuid() == 0 else {
            try explain()
            throw ExitCode.failure
        }
        let scenario = try DemoScenario(selinuxRoot: global.selinuxRoot, forceStandIn: standIn)
        do {
            try await scenario.run()
        } catch {
            await scenario.cleanup(keep: keep)
            throw error
        }
        await scenario.cleanup(keep: keep)
    }

    /// What the demo would do, for a user who is not root: the steps, and the labels the chapter's VMs would get
    /// (generated with a throwaway registry: nothing is reserved, labelled or started).
    func explain() throws {
        print("""
            svirt demo runs the SELinux Notebook's chapter "SELinux Virtual Machine Support" with real guests. It needs root:
            it writes security.selinux and trusted.svirt.* attributes, gives the images to an unprivileged QEMU user and
            gives them back. Run it as root (sudo swift run svirt demo). As root it would, in a scratch directory:

              1. create small raw images labelled virt_image_t, and define Dynamic_VM1, Dynamic_VM2, Shareable_VM,
                 Shareable_VM-clone, Static_VM1 and Static_VM2;
              2. start them as QEMU guests (svirt's stand-in guest where QEMU is missing), confined by SELinux, or where
                 SELinux is off by a Landlock ruleset whose every grant the policy allows;
              3. print the chapter's tables and ls -Z / ps -eZ listings;
              4. show Static_VM1 refused by the preflight, then started after 'chcon -t svirt_image_t';
              5. show Static_VM2 (unconfined_t) starting only while the boolean virt_transition_userdomain is on;
              6. ask Dynamic_VM1's own QEMU (QMP blockdev-add) to open Dynamic_VM2's image: Permission denied;
              7. stop them all and print the labels given back, then remove the scratch directory.

            The labels the chapter's VMs would get on this host (nothing is reserved, labelled or started):

            """)
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        let selinux = try env.selinux()
        let generator = LabelGenerator(contexts: selinux.contexts, manager: env.managerContext().context, pool: try env.pool())
        var rows: [[String]] = []
        var rng = SystemRandomNumberGenerator()
        var allocator = MCSAllocator(pool: generator.pool, coolDown: 0)
        for vm in NotebookExamples.dynamic + NotebookExamples.shareable + NotebookExamples.staticVMs {
            let domain = try DomainDefinition(xml: vm.xml(), source: vm.name)
            let level = try allocator.allocate(owner: vm.name, now: 0, using: &rng)
            let label = try generator.generateLabel(for: domain, level: level).label
            rows.append([vm.name, "process", label.process?.description ?? "-"])
            let file: String
            switch (vm.shareable, label.type) {
            case (true, _): file = selinux.contexts.imageBase.context.description
            case (_, .static): file = "(left as it is: relabel='no')"
            default: file = label.image.description
            }
            rows.append(["", "file", file])
        }
        print(table(["VM Image Name", "Object", "Security context"], rows))
        printError("\nerror: svirt demo needs root; run it as root")
    }
}
