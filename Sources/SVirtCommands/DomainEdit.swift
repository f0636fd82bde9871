import ArgumentParser
import Foundation
import Glibc
import SVirt
import SVirtLinux

/// `svirt edit NAME`: `virsh edit`, checked on save by the reader `svirt define` uses and by the host's policy.
struct DomainEdit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Edit a domain's definition in $VISUAL or $EDITOR (else vi); the XML is checked on save, as virsh edit does.",
        discussion: """
            A file that does not read as domain XML, or a <seclabel> whose user, role, type or level the host's policy \
            rejects, re-opens the editor with the reason in a comment at the top; saving the same text again gives \
            up and keeps the old definition. --set-seclabel changes the label without an editor: \
            static:CONTEXT, dynamic, dynamic:BASELABEL or none.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The domain.", valueName: "NAME"))
    var name: String

    @Option(name: .customLong("set-seclabel"), help: ArgumentHelp(
        "Set the SELinux <seclabel> without an editor: static:CONTEXT, dynamic, dynamic:BASELABEL or none.", valueName: "SPEC"))
    var setSeclabel: String?

    @Option(help: ArgumentHelp("With --set-seclabel: whether svirt relabels the images (default: yes for dynamic, no for static).",
                               valueName: "yes|no"))
    var relabel: String?

    func validate() throws {
        if relabel != nil && setSeclabel == nil { throw ValidationError("--relabel goes with --set-seclabel") }
        if let r = relabel, r != "yes", r != "no" { throw ValidationError("--relabel \(r): write yes or no") }
    }

    /// The first line of a re-opened file: svirt's comment with the reason the last save failed.
    static let marker = "<!-- svirt edit: "

    func run() async throws {
        try await virsh(nil) {
            try await DomainContext.with(global) { ctx in
                if let spec = setSeclabel {
                    let seclabel = try DomainDefinition.seclabel(spec: spec, relabel: relabel.map { $0 == "yes" })
                    report(try ctx.lifecycle.setSeclabel(of: name, seclabel), ctx.lifecycle)
                    return
                }
                try edit(ctx.lifecycle)
            }
        }
    }

    func report(_ outcome: DomainLifecycle.EditOutcome, _ lifecycle: DomainLifecycle) {
        switch outcome {
        case .unchanged:
            print("Domain '\(name)' XML configuration not changed.")
        case .defined(let d, _):
            print(d.name == name ? "Domain '\(name)' XML configuration edited."
                                 : "Domain '\(d.name)' defined from the edited XML of '\(name)'.")
            if (try? lifecycle.local.runningDomain(named: d.name)) != nil {
                printError("note: '\(d.name)' is running; the edited definition takes effect at its next start")
            }
        }
    }

    func edit(_ lifecycle: DomainLifecycle) throws {
        let original = try lifecycle.editableXML(of: name)
        let file = try Self.temporaryFile(for: name)
        defer { unlink(file) }
        var shown = original
        var lastFailure: (text: String, message: String)?
        var failures = 0
        while true {
            try Self.write(shown, to: file)
            try Self.runEditor(on: file)
            var st = stat()
            if stat(file, &st) == 0, st.st_size > off_t(XMLLimits.domain.maxBytes) {
                throw SVirtError(.invalidDomain, "the edited file is \(st.st_size) bytes, more than the \(XMLLimits.domain.maxBytes) "
                                 + "bytes svirt reads; the definition of '\(name)' is unchanged")
            }
            guard let data = FileManager.default.contents(atPath: file),
                  let saved = String(data: data, encoding: .utf8) else {
                throw SVirtError(.invalidDomain, "cannot read \(file) back as UTF-8 text; the definition of '\(name)' is unchanged")
            }
            let text = Self.strippingMarker(saved)
            if let last = lastFailure, Self.same(text, last.text) {
                throw SVirtError(.invalidDomain, "\(last.message)\nThe file was saved unchanged after the error: giving up; "
                                 + "the definition of '\(name)' is unchanged")
            }
            do {
                report(try lifecycle.saveEdit(of: name, original: original, edited: text), lifecycle)
                return
            } catch let e as SVirtError {
                printError("error: \(virshReason(e))")
                if isatty(0) == 1 && isatty(2) == 1 {
                    // A person at a terminal is asked, as virsh asks.
                    FileHandle.standardError.write(Data("Failed. Try again? [y,n]: ".utf8))
                    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? "n"
                    guard answer == "y" || answer == "yes" else {
                        throw SVirtError(.invalidDomain, "the definition of '\(name)' is unchanged")
                    }
                } else {
                    printError("Failed. Re-opening the editor with the error at the top; save the file unchanged to give up.")
                }
                lastFailure = (text, e.message)
                failures += 1
                if failures >= Self.maxFailures {
                    throw SVirtError(.invalidDomain, "\(failures) saves in a row failed: giving up; the definition of "
                                     + "'\(name)' is unchanged")
                }
                shown = Self.marker + Self.commentSafe(e.message) + " -->\n" + text
            }
        }
    }

    /// Failed saves after which `svirt edit` gives up (an editor that keeps writing a different bad file).
    static let maxFailures = 10

    /// The text without the comment svirt put on top (and the blank lines an editor left in its place).
    static func strippingMarker(_ text: String) -> String {
        guard text.hasPrefix(marker), let end = text.range(of: "-->") else { return text }
        return String(text[end.upperBound...].drop { $0.isNewline })
    }

    /// The same XML but for leading and trailing white space.
    static func same(_ a: String, _ b: String) -> Bool {
        a.trimmingCharacters(in: .whitespacesAndNewlines) == b.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `--` may not appear in an XML comment.
    static func commentSafe(_ text: String) -> String {
        var s = text.replacingOccurrences(of: "\n", with: " ")
        while s.contains("--") { s = s.replacingOccurrences(of: "--", with: "- -") }
        return s.hasSuffix("-") ? s + " " : s
    }

    static func temporaryFile(for name: String) throws -> String {
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }.prefix(64))
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/svirt-edit-\(safe)-XXXXXX.xml".utf8CString)
        let fd = mkstemps(&template, 4)
        guard fd >= 0 else {
            throw SVirtError(.invalidDomain, "cannot create a temporary file in \(dir) for the editor: \(String(cString: strerror(errno)))")
        }
        close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func write(_ text: String, to file: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        } catch {
            throw SVirtError(.invalidDomain, "cannot write \(file) for the editor: \(error.localizedDescription)")
        }
    }

    /// Runs `$VISUAL`, else `$EDITOR`, else `vi` on `file` through the shell (an editor may carry arguments), on
    /// this terminal, and waits.
    static func runEditor(on file: String) throws {
        let env = ProcessInfo.processInfo.environment
        let editor = [env["VISUAL"], env["EDITOR"]].compactMap { $0 }.first { !$0.isEmpty } ?? "vi"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "\(editor) \"$1\"", "svirt-edit", file]
        do {
            try p.run()
        } catch {
            throw SVirtError(.invalidDomain, "cannot run the editor '\(editor)': \(error.localizedDescription); set VISUAL or EDITOR")
        }
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw SVirtError(.invalidDomain, "the editor '\(editor)' failed (\(p.terminationReason == .exit ? "exit status" : "signal") "
                             + "\(p.terminationStatus)); the definition is unchanged")
        }
    }
}
