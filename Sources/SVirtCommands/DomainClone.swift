import ArgumentParser
import Foundation
import Glibc
import SVirt
import SVirtLinux

/// `svirt clone NAME NEWNAME`: virt-clone for svirt's registry.
struct DomainClone: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clone",
        abstract: "Clone a shut-off domain: new name, UUID and MAC addresses; private disks copied sparse, shareable and read-only disks shared.",
        discussion: """
            Each private disk gets a copy (holes stay holes): at the --file paths in disk order, else next to the \
            original with the domain's name replaced by the new one. <shareable/> and <readonly/> disks keep their \
            source, so both VMs use the one image. A VM with a static SELinux label is refused unless --force: one \
            image per static label.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The domain to clone.", valueName: "NAME"))
    var name: String

    @Argument(help: ArgumentHelp("The clone's name.", valueName: "NEWNAME"))
    var newName: String

    @Option(name: .customLong("file"), help: ArgumentHelp("Where a private disk's copy goes, one per copied disk, in disk order.", valueName: "PATH"))
    var files: [String] = []

    @Flag(help: "Clone a VM with a static SELinux label anyway (give the clone a label of its own before both run).")
    var force = false

    func run() async throws {
        try await virsh("Failed to clone domain '\(name)'") {
            try await DomainContext.with(global) { ctx in
                let cwd = FileManager.default.currentDirectoryPath
                let absolute = files.map { $0.hasPrefix("/") || $0.isEmpty ? $0 : (cwd.hasSuffix("/") ? cwd : cwd + "/") + $0 }
                let plan = try ctx.lifecycle.planClone(name: name, newName: newName, files: absolute, force: force)
                for w in plan.warnings { printError("warning: \(w)") }
                let onTerminal = isatty(1) == 1
                var lastShown = -1
                let cloned = try ctx.lifecycle.clone(plan) { p in
                    guard onTerminal, p.progress.total > 0 else { return }
                    let percent = Int(Double(p.progress.done) / Double(p.progress.total) * 100)
                    guard percent != lastShown || p.progress.done == p.progress.total else { return }
                    lastShown = percent
                    let line = "\rCopying \(p.copy.what) (\(p.index + 1)/\(p.count)) to \(p.copy.destination): \(percent)% "
                        + "(\(Self.size(p.progress.done)) of \(Self.size(p.progress.total)))"
                    FileHandle.standardOutput.write(Data((line + "\u{1B}[K").utf8))
                    if p.progress.done == p.progress.total { FileHandle.standardOutput.write(Data("\n".utf8)) }
                }
                for k in plan.kept {
                    print("\(k.what): kept \(k.source ?? "(empty)") (\(k.reason))")
                }
                for c in cloned.copies {
                    print("\(c.copy.what): copied \(c.copy.source) to \(c.copy.destination) (\(Self.size(c.result.size)), "
                          + "\(Self.size(c.result.written)) written)")
                }
                print("Clone '\(newName)' created successfully.")
            }
        }
    }

    static func size(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes)
        var u = 0
        while v >= 1024, u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(bytes) B" : String(format: "%.1f", v) + " " + units[u]
    }
}
