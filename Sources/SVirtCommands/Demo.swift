import ArgumentParser
import SELinux
import SVirt
import SVirtLinux

/// `svirt demo`: the chapter's VMs. For now it shows the host report and the labels the chapter's VMs would
/// get; it reserves nothing and touches no file.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show the host report and the labels the SELinux Notebook's example VMs get.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        print("== Host\n")
        print(try HostReport.gather(environment: env).text)

        let contexts = try env.selinux().contexts
        let pool = try env.pool()
        // A throwaway registry: the demo shows labels without reserving anything on the host.
        let registry = InMemoryLevelRegistry(seed: UInt64.random(in: 1...UInt64.max))
        func dynamic(_ name: String) async throws -> SecurityLevel {
            try await registry.allocateLevel(owner: name, kind: .domain, process: nil, pool: pool)
        }
        let process = contexts.processBase.context, image = contexts.imageBase.context
        func ctx(_ base: SecurityContext, _ level: SecurityLevel?) -> String {
            base.with(range: level.map(SecurityRange.init) ?? base.range).description
        }
        var rows: [[String]] = []
        for name in ["Dynamic_VM1", "Dynamic_VM2"] {
            let l = try await dynamic(name)
            rows.append([name, "process", ctx(process, l)])
            rows.append(["", "file", ctx(image, l)])
        }
        for name in ["Shareable_VM", "Shareable_VM-clone"] {
            rows.append([name, "process", ctx(process, try await dynamic(name))])
        }
        rows.append(["", "file (shared)", image.description])
        let static1 = try SecurityContext(parsing: "system_u:system_r:svirt_t:s0:c1022,c1023")
        let static2 = try SecurityContext(parsing: "system_u:system_r:unconfined_t:s0:c11,c22")
        rows.append(["Static_VM1", "process", static1.description])
        rows.append(["", "file", contexts.restoreFallback.context.description + "  (relabel='no': left alone)"])
        rows.append(["Static_VM2", "process", static2.description])
        rows.append(["", "file", contexts.restoreFallback.context.description + "  (relabel='no': left alone)"])
        print("\n== Labels the chapter's VMs get (nothing is reserved or started)\n")
        print(table(["VM Image Name", "Object", "Security context"], rows))
    }
}
