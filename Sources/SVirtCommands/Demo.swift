import ArgumentParser
import SELinux
import SVirt
import SVirtLinux

/// `svirt demo`: the chapter's VMs. For now it shows the host report and the labels svirt's generator gives the
/// chapter's VMs, with a throwaway in-memory registry: it reserves nothing and touches no file.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show the host report and the labels the SELinux Notebook's example VMs get.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        print("== Host\n")
        print(try HostReport.gather(environment: env).text)

        let selinux = try env.selinux()
        let generator = LabelGenerator(contexts: selinux.contexts, manager: env.managerContext().context, pool: try env.pool())
        // A throwaway registry: the demo shows labels without reserving anything on the host.
        let registry = InMemoryLevelRegistry(seed: UInt64.random(in: 1...UInt64.max))
        let planner = LabelPlanner(contexts: selinux.contexts, host: LinuxHostInspector())
        var rows: [[String]] = []
        var warnings: [String] = []
        func label(_ vm: NotebookExamples.VM) async throws -> (SecurityLabel, LabelPlan) {
            let domain = try DomainDefinition(xml: vm.xml(), source: vm.name)
            let r = try await generator.generateLabel(for: domain, registry: registry)
            warnings += r.warnings
            return (r.label, try planner.plan(for: domain, label: r.label))
        }
        func file(_ plan: LabelPlan) -> String {
            plan.entries.first.map { $0.context?.description ?? "(left as it is: \($0.note ?? "not relabelled"))" } ?? "-"
        }
        for vm in NotebookExamples.dynamic {
            let (l, plan) = try await label(vm)
            rows.append([vm.name, "process", l.process?.description ?? "-"])
            rows.append(["", "file", file(plan)])
        }
        var shared = ""
        for vm in NotebookExamples.shareable {
            let (l, plan) = try await label(vm)
            rows.append([vm.name, "process", l.process?.description ?? "-"])
            shared = file(plan)
        }
        rows.append(["", "file (shared)", shared])
        for vm in NotebookExamples.staticVMs {
            let (l, plan) = try await label(vm)
            rows.append([vm.name, "process", l.process?.description ?? "-"])
            rows.append(["", "file", file(plan)])
        }
        print("\n== Labels svirt gives the chapter's VMs (nothing is reserved, labelled or started)\n")
        print(table(["VM Image Name", "Object", "Security context"], rows))
        for w in Set(warnings).sorted() { print("\nNote: \(w)") }
    }
}
