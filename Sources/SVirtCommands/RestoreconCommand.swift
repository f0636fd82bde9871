import ArgumentParser
import Foundation
import Glibc
import SELinux
import SVirtLinux
import Synchronization

/// `svirt restorecon`: set files' labels to their file_contexts defaults, leaving alone the files svirt labelled
/// for a running VM.
struct RestoreconCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restorecon",
        abstract: "Set files' SELinux labels to the defaults of the policy's file_contexts.",
        discussion: """
            The whole context is set (user, role, type and range). Files svirt labelled for a running VM (a \
            positive trusted.svirt.security.ref_selinux count) are skipped and reported, unless -F is given. \
            Files whose default is <<none>>, or that no line matches, keep their label.
            """)

    @OptionGroup var source: FileContextsOptions

    @Flag(name: .customShort("n"), help: "Change nothing: print what would be relabelled.")
    var dryRun = false

    @Flag(name: .customShort("v"), help: "Print each relabelled file, the files left without a default, and a summary.")
    var verbose = false

    @Flag(name: .customShort("R"), help: "Walk directories (symlinks are not followed).")
    var recursive = false

    @Flag(name: .customShort("F"), help: "Also relabel the files svirt labelled for a running VM.")
    var force = false

    @Option(name: .long, help: ArgumentHelp("Worker threads for -R (default: one per CPU).", valueName: "N"))
    var threads: Int = 0

    @Argument(help: ArgumentHelp("Files or directories to relabel.", valueName: "PATH"))
    var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one PATH") }
        if threads < 0 || threads > 256 { throw ValidationError("--threads must be between 0 and 256") }
    }

    func run() async throws {
        let fc = try source.load()
        let out = LineWriter()
        let options = Restorecon.Options(dryRun: dryRun, recursive: recursive, force: force, threads: threads)
        let verbose = self.verbose, dryRun = self.dryRun
        let onTerminal = isatty(2) == 1
        var progress: (@Sendable (Int) -> Void)?
        if onTerminal && recursive {
            progress = { n in out.progress("svirt restorecon: \(n) files checked") }
        }
        let summary = Restorecon(fileContexts: fc, options: options).run(paths, events: { event in
            RestoreconCommand.report(event, verbose: verbose, to: out)
        }, progress: progress)
        out.endProgress()
        if verbose || summary.skippedHeldBySVirt > 0 || summary.failed > 0 || summary.conflicting > 0 {
            let changed = dryRun ? "would be relabelled" : "relabelled"
            var text = "svirt restorecon: \(summary.checked) checked, \(summary.relabeled) \(changed), "
            text += "\(summary.unchanged) unchanged, \(summary.skippedHeldBySVirt) skipped (labelled by svirt for "
            text += "running VMs), \(summary.noDefaultLabel) without a default, \(summary.failed) failed"
            if summary.conflicting > 0 { text += ", \(summary.conflicting) hard-linked path(s) left with their inode's first label" }
            out.line(2, Array(text.utf8))
        }
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

extension RestoreconCommand {
    /// Prints one event: relabels on stdout (with -n, or -v), skips and failures on stderr, files without a
    /// default on stderr with -v.
    static func report(_ event: Restorecon.Event, verbose: Bool, to out: LineWriter) {
        func line(_ fd: Int32, _ head: String, _ path: [UInt8], _ tail: String) {
            var bytes = Array(head.utf8)
            bytes += path
            bytes += Array(tail.utf8)
            out.line(fd, bytes)
        }
        switch event {
        case .relabeled(let path, let from, let to, let dryRun):
            guard dryRun || verbose else { return }
            line(1, dryRun ? "Would relabel " : "Relabeled ", path, " from \(from ?? "(none)") to \(to)")
        case .skippedHeldBySVirt(let path, let count, let current, let original):
            let vms = count == 1 ? "1 running VM" : "\(count) running VMs"
            let labels = "label \(current ?? "(none)"), original \(original ?? "unknown")"
            line(2, "svirt restorecon: skipped ", path, ": labelled by svirt for \(vms) (\(labels)); use -F to relabel it")
        case .noDefaultLabel(let path):
            guard verbose else { return }
            line(2, "svirt restorecon: no default label for ", path, " (<<none>> or no matching line); left alone")
        case .failed(let path, let message):
            line(2, "svirt restorecon: ", path, ": \(message)")
        case .conflictingSpecifications(let path, let other, let using):
            // setfiles' words, with both paths as the bytes they are.
            var bytes = Array("svirt restorecon: conflicting specifications for ".utf8)
            bytes += path
            bytes += Array(" and ".utf8)
            bytes += other
            bytes += Array(", using \(using).".utf8)
            out.line(2, bytes)
        }
    }
}

/// Whole lines to stdout or stderr from any thread, and a progress line on stderr that other lines clear.
final class LineWriter: Sendable {
    let state = Mutex<Bool>(false)

    func line(_ fd: Int32, _ bytes: [UInt8]) {
        state.withLock { progressShown in
            if progressShown { LineWriter.write(2, Array("\r\u{1B}[K".utf8)); progressShown = false }
            LineWriter.write(fd, bytes + [0x0A])
        }
    }

    func progress(_ text: String) {
        state.withLock { progressShown in
            LineWriter.write(2, Array("\r\u{1B}[K\(text)".utf8))
            progressShown = true
        }
    }

    func endProgress() {
        state.withLock { progressShown in
            if progressShown { LineWriter.write(2, Array("\r\u{1B}[K".utf8)); progressShown = false }
        }
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}
