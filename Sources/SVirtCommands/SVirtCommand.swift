import ArgumentParser

/// The `svirt` command: sVirt without a daemon.
public struct SVirtCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "svirt",
        abstract: "Keep virtual machines apart with SELinux labels (sVirt), without a daemon.",
        version: "0.1.0",
        subcommands: [
            HostShow.self,
            MCS.self,
            Label.self,
            Demo.self,
            QEMUPaths.self,
            GuestStandIn.self,
            FContext.self,
            RestoreconCommand.self,
        ])

    public init() {}
}

/// Options every command that touches host state takes.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The state directory (default: /var/lib/svirt for root, the XDG state directory otherwise).", valueName: "DIR"))
    public var stateDir: String?

    @Option(name: .long, help: ArgumentHelp("Read the SELinux configuration from DIR instead of /etc/selinux (also SVIRT_SELINUX_ROOT).", valueName: "DIR"))
    public var selinuxRoot: String?

    public init() {}
}
