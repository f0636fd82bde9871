import ArgumentParser

/// The `svirt` command: sVirt without a daemon.
public struct SVirtCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "svirt",
        abstract: "Keep virtual machines apart with SELinux labels (sVirt), without a daemon.",
        version: SVirtVersion.description,
        subcommands: [
            HostShow.self,
            DomainDefine.self,
            DomainUndefine.self,
            DomainStart.self,
            DomainShutdown.self,
            DomainDestroy.self,
            DomainList.self,
            DomainInfo.self,
            DomainDumpXML.self,
            DomainLabels.self,
            DomainImport.self,
            DomainClone.self,
            DomainEdit.self,
            ConsoleServe.self,
            QEMUMonitorCommand.self,
            MCS.self,
            Label.self,
            Cluster.self,
            Policy.self,
            IsolationCheck.self,
            DenialExplain.self,
            BooleansCommand.self,
            Xen.self,
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

    @Option(name: .long, help: ArgumentHelp("The level registry: 'sqlite' (local, the default) or etcd://host1:2379,host2:2379 (etcds:// for TLS) to share levels across hosts (also 'registry =' in svirt.conf).", valueName: "URL"))
    public var registry: String?

    @Option(name: .long, help: ArgumentHelp("PEM client certificate for etcd (registry_cert).", valueName: "FILE"))
    public var registryCert: String?

    @Option(name: .long, help: ArgumentHelp("PEM private key of the client certificate (registry_key).", valueName: "FILE"))
    public var registryKey: String?

    @Option(name: .long, help: ArgumentHelp("PEM CA certificate that signed the etcd members' certificates (registry_ca).", valueName: "FILE"))
    public var registryCa: String?

    @Option(name: .long, help: ArgumentHelp("etcd user, for clusters with auth enabled (registry_user).", valueName: "NAME"))
    public var registryUser: String?

    @Option(name: .long, help: ArgumentHelp("File holding the etcd user's password (registry_password_file).", valueName: "FILE"))
    public var registryPasswordFile: String?

    @Option(name: .long, help: ArgumentHelp("This host's id in a shared registry (host_id; default: generated and kept in the state directory).", valueName: "ID"))
    public var hostId: String?

    public init() {}
}
