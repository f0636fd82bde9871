import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt dominfo NAME`: `virsh dominfo`, with the security model, DOI and label.
struct DomainInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dominfo",
        abstract: "Show a domain's state, resources and security label (model, DOI, label and how it is enforced).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name, id or UUID.")
    var name: String

    @Flag(help: "Print JSON.") var json = false

    struct Info: Codable {
        var id: Int?
        var name: String
        var uuid: String
        var osType: String
        var state: String
        var cpus: Int
        var maxMemoryKiB: UInt64
        var persistent: Bool
        var pid: Int32?
        var securityModel: String
        var securityDOI: String
        var securityLabel: String?
        var securityMode: String?
        var imageLabel: String?
        var confinementReason: String?
        var user: String?
        var notes: [String]
    }

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global) { ctx in
                let s = try ctx.lifecycle.status(of: name)
                let xml = s.running?.liveXML ?? s.definedXML ?? ""
                let domain = try DomainDefinition(xml: xml, mode: s.running?.label != nil ? .live : .inactive,
                                                  source: "the XML of '\(s.name)'")
                let run = s.running
                let info = Info(
                    id: s.id, name: s.name, uuid: s.uuid, osType: domain.os.type, state: s.state, cpus: domain.vcpus,
                    maxMemoryKiB: domain.memoryKiB, persistent: s.persistent, pid: run?.process?.pid,
                    securityModel: "selinux", securityDOI: "0", securityLabel: run.map { _ in s.processLabel ?? run?.label ?? "(none)" },
                    securityMode: run?.details.confinement, imageLabel: run?.imageLabel,
                    confinementReason: run?.details.unconfinedReason, user: run?.details.user?.description,
                    notes: run?.details.notes ?? [])
                if json {
                    try printJSON(info)
                    return
                }
                func row(_ k: String, _ v: String) { print(k.padding(toLength: 16, withPad: " ", startingAt: 0) + v) }
                row("Id:", info.id.map(String.init) ?? "-")
                row("Name:", info.name)
                row("UUID:", info.uuid)
                row("OS Type:", info.osType)
                row("State:", info.state)
                row("CPU(s):", String(info.cpus))
                row("Max memory:", "\(info.maxMemoryKiB) KiB")
                row("Used memory:", "\(info.maxMemoryKiB) KiB")
                row("Persistent:", info.persistent ? "yes" : "no")
                row("Autostart:", "disable")
                row("Managed save:", "no")
                row("Security model:", info.securityModel)
                row("Security DOI:", info.securityDOI)
                if let label = info.securityLabel {
                    if info.securityMode == "unconfined" {
                        row("Security label:", "\(label) (unconfined)")
                        if let why = info.confinementReason { row("Confinement:", "none: \(why)") }
                    } else {
                        row("Security label:", "\(label) (\(info.securityMode ?? "enforcing"))")
                    }
                    if let pid = info.pid { row("Process ID:", String(pid)) }
                    if let u = info.user { row("Runs as:", u) }
                }
            }
        }
    }
}
