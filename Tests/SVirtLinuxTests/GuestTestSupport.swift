import Foundation
import Glibc
import SVirt
@testable import SVirtLinux

let qemuEmulator = try? QEMUEmulator.find()
let hasQEMU = qemuEmulator != nil
let kvmUsable = HostProbe().kvm().usable
let landlockVersion = (try? Landlock.ABI.current())?.version ?? 0
/// The svirt executable built next to this test binary (the stand-in guest).
let svirtExecutable: String = {
    let dir = (canonical("/proc/self/exe") as NSString).deletingLastPathComponent
    return "\(dir)/svirt"
}()

/// A raw image of `megabytes` in `dir`.
func makeImage(_ dir: TemporaryDirectory, _ name: String, megabytes: Int = 16) throws -> String {
    let p = dir.file(name)
    let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw SystemCallError(call: "open", path: p, errno: errno) }
    defer { close(fd) }
    guard ftruncate(fd, off_t(megabytes) << 20) == 0 else { throw SystemCallError(call: "ftruncate", path: p, errno: errno) }
    return p
}

/// A one-disk configuration whose runtime directory is `<dir>/run-<name>`.
func guestConfiguration(_ name: String, image: String, dir: TemporaryDirectory) throws -> (QEMUConfiguration, RuntimeDirectory) {
    let run = try RuntimeDirectory.create(name: "run-\(name)", root: dir.path)
    var c = QEMUConfiguration(name: name, accelerator: kvmUsable ? .kvm : .tcg, memoryMiB: 64, qmpSocket: run.qmpSocket)
    c.disks = [.init(path: image, target: "vda")]
    c.startPaused = true
    return (c, run)
}

/// Starts QEMU for `c`, confined by Landlock to its own files when `confined`.
func startQEMU(_ c: QEMUConfiguration, run: RuntimeDirectory, confined: Bool = true) throws -> StartedGuest {
    guard let emulator = qemuEmulator else { throw SVirtError(.notFound, "no QEMU") }
    var d = try QEMUCommandLine(c, emulator: emulator).launchDescription()
    if confined {
        let system = try QEMUSystemPaths.compute(for: emulator, kvm: c.accelerator == .kvm)
        d.landlock = .guest(c, system: system)
    }
    return try GuestSupervisor.start(d, qmpSocket: run.qmpSocket, logFile: run.logFile, timeout: .seconds(60))
}

/// Starts the stand-in guest for `c`, confined by Landlock to its own files.
func startStandIn(_ c: QEMUConfiguration, run: RuntimeDirectory, confined: Bool = true) throws -> StartedGuest {
    var d = StandInGuest.launchDescription(for: c, svirtExecutable: svirtExecutable)
    if confined {
        let program = try ProgramPaths.compute(for: svirtExecutable)
        d.landlock = .guest(system: program.rules, readWrite: c.writableFiles, readOnly: c.readOnlyFiles)
    }
    return try GuestSupervisor.start(d, qmpSocket: run.qmpSocket, logFile: run.logFile, timeout: .seconds(30))
}
