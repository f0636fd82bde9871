import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt import`: the Virtual Machine Manager's "import an existing disk image" (`virt-install --import`).
struct DomainImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Define a domain around existing disk images (virt-install --import).",
        discussion: """
            The format of each image (qcow2 or raw) is read from the file unless format= is given. A <shareable/> \
            disk is used by several VMs at once and labelled with no categories; a clone keeps using it.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The new domain's name.", valueName: "NAME"))
    var name: String

    @Option(name: .customLong("disk"), help: ArgumentHelp(
        "An existing image: PATH[,shareable][,readonly][,format=raw|qcow2][,device=disk|cdrom][,bus=BUS]. Repeat for more disks.",
        valueName: "PATH[,OPTIONS]"))
    var disks: [String] = []

    @Option(help: ArgumentHelp("Memory in MiB.", valueName: "MiB"))
    var memory: UInt64 = 1024

    @Option(help: ArgumentHelp("Virtual CPUs.", valueName: "N"))
    var vcpus: Int = 1

    @Option(help: ArgumentHelp("kvm (hardware virtualisation) or qemu (TCG emulation); default: kvm where /dev/kvm is usable, else qemu.", valueName: "kvm|qemu"))
    var type: String?

    @Flag(help: "Print the domain XML instead of defining it.")
    var printXml = false

    func validate() throws {
        if disks.isEmpty { throw ValidationError("give at least one --disk PATH (an existing disk image)") }
        if let type, DomainDefinition.VirtType(rawValue: type) == nil {
            throw ValidationError("--type \(type): use kvm or qemu")
        }
    }

    func run() async throws {
        try await virsh("Failed to import domain '\(name)'") {
            let cwd = FileManager.default.currentDirectoryPath
            let parsed = try disks.map { text -> ImportedDomain.ImportedDisk in
                var d = try ImportedDomain.ImportedDisk.parse(text)
                if !d.path.hasPrefix("/") { d.path = (cwd.hasSuffix("/") ? cwd : cwd + "/") + d.path }
                return d
            }
            var imported = ImportedDomain(name: name, memoryMiB: memory, vcpus: vcpus, disks: parsed)
            imported.type = type.flatMap(DomainDefinition.VirtType.init(rawValue:)) ?? (HostProbe().kvm().usable ? .kvm : .qemu)
            try await DomainContext.with(global, quiet: printXml) { ctx in
                let domain = try ctx.lifecycle.importDomain(imported, define: !printXml)
                if printXml {
                    print(domain.xmlText(), terminator: domain.xmlText().hasSuffix("\n") ? "" : "\n")
                } else {
                    print("Domain '\(domain.name)' defined from the imported image\(imported.disks.count == 1 ? "" : "s") "
                          + imported.disks.map(\.path).joined(separator: ", "))
                }
            }
        }
    }
}
