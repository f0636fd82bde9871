import ArgumentParser
import SVirtLinux

/// `svirt __guest`: the stand-in guest the demo and tests run where QEMU is missing (hidden from help).
struct GuestStandIn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__guest",
        abstract: "Stand-in guest: open the given disks, hold them, and answer QMP on the inherited monitor socket.",
        shouldDisplay: false)

    @Option(help: "The guest's name, for its log.")
    var name = "guest"

    @Option(help: "The descriptor of the listening QMP socket (created by svirt's spawn).")
    var monitorFd: Int32 = 3

    @Option(name: .customLong("disk"), help: "A disk opened read-write (repeatable).")
    var disks: [String] = []

    @Option(name: .customLong("readonly-disk"), help: "A disk opened read-only (repeatable).")
    var readOnlyDisks: [String] = []

    func run() throws {
        let all = disks.map { StandInGuest.Disk(path: $0, readOnly: false) }
            + readOnlyDisks.map { StandInGuest.Disk(path: $0, readOnly: true) }
        let rc = StandInGuest.run(name: name, monitorFD: monitorFd, disks: all)
        if rc != 0 { throw ExitCode(rc) }
    }
}
