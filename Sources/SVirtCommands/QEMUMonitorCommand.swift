import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt qemu-monitor-command NAME JSON`: pass a QMP command to the domain's QEMU and print its reply, as virsh
/// does.
struct QEMUMonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu-monitor-command",
        abstract: "Send a QMP command to a running domain's QEMU and print the reply (errors included), as virsh does.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The domain's name, id or UUID.")
    var name: String

    @Argument(help: ArgumentHelp("The QMP command, e.g. '{\"execute\":\"query-status\"}'.", valueName: "JSON"))
    var command: String

    @Flag(help: "Pretty-print the reply.") var pretty = false

    @Option(help: ArgumentHelp("Seconds to wait for the reply.", valueName: "SECONDS"))
    var timeout: Int = 30

    func validate() throws {
        do {
            _ = try JSONValue.parse(Array(command.utf8))
        } catch {
            throw ValidationError("the command is not JSON: \(error); give an object such as '{\"execute\":\"query-status\"}'")
        }
        if timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global, quiet: true) { ctx in
                let s = try ctx.lifecycle.status(of: name)
                guard let r = s.running, r.state == .running, let g = r.guest else {
                    throw SVirtError(.notFound, "domain is not running")
                }
                let monitor: QMPClient
                do {
                    monitor = try QMPClient.connect(path: g.qmpSocket, timeout: .seconds(timeout),
                                                    peerContext: ProcFS().context(of: g.identity.pid))
                } catch {
                    throw SVirtError(.launch, "cannot reach the monitor of '\(s.name)' at \(g.qmpSocket): \(error)")
                }
                defer { monitor.close() }
                let message = try JSONValue.parse(Array(command.utf8))
                let reply = try monitor.send(message, timeout: .seconds(timeout))
                if let desc = reply["error"]?["desc"]?.stringValue {
                    // Under Landlock, svirt keeps what QEMU was refused, for 'svirt explain --vm'.
                    let write = message["execute"]?.stringValue == "blockdev-add"
                        ? !(message["arguments"]?["read-only"]?.boolValue ?? false) : nil
                    LandlockDenialLog.record(desc, origin: "qmp", write: write, running: r, registry: ctx.local)
                }
                if pretty {
                    let data = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(reply.json.utf8)),
                                                          options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print(reply.json)
                }
            }
        }
    }
}
