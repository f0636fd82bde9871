import ArgumentParser
import SVirtLinux

/// `svirt qemu-paths`: the system paths a confined QEMU guest is granted under Landlock on this host, and why.
struct QEMUPaths: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu-paths",
        abstract: "List the system paths a Landlock-confined QEMU may use on this host, computed from the emulator.")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The emulator (default: qemu-system-ARCH on PATH).", valueName: "PATH"))
    var emulator: String?

    @Option(help: "The guest architecture.")
    var arch = QEMUEmulator.hostArchitecture()

    @Flag(help: "Leave out /dev/kvm (a TCG guest).")
    var tcg = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Encodable {
        var path: String
        var access: String
        var rights: String
        var reason: String
    }

    func run() throws {
        let e = try QEMUEmulator.find(arch: arch, path: emulator)
        let paths = try QEMUSystemPaths.compute(for: e, kvm: !tcg)
        let rows = paths.rules.map { Row(path: $0.path, access: $0.access.summary, rights: $0.access.description, reason: $0.reason) }
        if json {
            try printJSON(rows)
            return
        }
        print("Emulator:  \(e.path) (sandbox: \(e.supportsSandbox ? "supported" : "not supported"))")
        if !paths.program.missingLibraries.isEmpty {
            print("Missing:   \(paths.program.missingLibraries.joined(separator: ", "))")
        }
        print("")
        print(table(["Access", "Path", "Why"], rows.map { [$0.access, $0.path, $0.reason] }))
    }
}
