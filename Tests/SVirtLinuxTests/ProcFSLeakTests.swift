import Foundation
import Glibc
import Testing
@testable import SVirtLinux

/// Resident memory of this process, in KiB.
private func residentKiB() -> Int {
    let text = ProcFS.readText("/proc/self/status") ?? ""
    let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

/// Whether reading this process's SELinux context fails after the file opened (no LSM labels processes here).
private let contextReadFails: Bool = {
    let fd = open("/proc/self/attr/current", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var b = [UInt8](repeating: 0, count: 64)
    return b.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } < 0
}()

@Suite("procfs reads")
struct ProcFSLeakTests {
    @Test("a procfs file whose read fails gives nil and keeps nothing: the console, which reads its own context on every request, no longer grows by 4 KiB a request",
          .enabled(if: contextReadFails, "needs a kernel where /proc/self/attr/current cannot be read (no LSM labels processes)"))
    func failedReadKeepsNothing() {
        let proc = ProcFS()
        #expect(proc.context() == nil)
        for _ in 0..<100 { _ = proc.context() }
        let before = residentKiB()
        for _ in 0..<2000 { _ = proc.context() }
        let grown = residentKiB() - before
        // Foundation's reader lost 4 KiB each time: 8 MiB over 2,000 reads.
        #expect(grown < 1024, "2,000 failed reads of the context grew this process by \(grown) KiB")
    }

    @Test("procfs files are read whole, past one 4 KiB chunk")
    func readsWhole() throws {
        let maps = try #require(ProcFS.read("/proc/self/maps"))
        #expect(maps.count > 4096 && maps.last == 0x0a)
        #expect(ProcFS.read("/proc/self/no-such-file") == nil)
        #expect(ProcFS().bootTime() != nil && ProcFS().startTime(of: getpid()) != nil)
    }
}
