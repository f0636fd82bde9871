import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy
import SVirt
import SVirtLinux

/// `svirt explain`: why each AVC denial in a log happened, and the fix.
struct DenialExplain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain AVC denials from an audit log (FILE, or '-' / nothing for standard input), with the fix.",
        discussion: """
            With --vm NAME, only the denials that concern that VM: AVC records whose scontext or tcontext carries its \
            labels or level, or whose pid is its QEMU's (from /var/log/audit/audit.log when it exists, FILE, or '-' \
            for ausearch output on standard input), and the EACCES refusals svirt recorded from its Landlock-confined \
            QEMU. They are explained with the host's policy and svirt's effective booleans (see svirt booleans).
            """)

    @OptionGroup var options: PolicyOptions
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: ArgumentHelp("An audit log or kernel log; '-' or nothing reads standard input (with --vm: /var/log/audit/audit.log when it exists).", valueName: "FILE"))
    var file: String?

    @Option(help: ArgumentHelp("Only the denials of this VM, with the Landlock refusals svirt recorded for it.", valueName: "NAME"))
    var vm: String?

    struct Explanation: Codable {
        var line: Int
        var permissions: [String]
        var source: String
        var target: String
        var tclass: String
        var object: String?
        var result: String
        var reason: String
        var fixes: [String]
    }

    func run() async throws {
        if let vm {
            try await virsh(nil) { try explainVM(vm) }
            return
        }
        let (policy, source) = try options.load()
        let text: String
        if let file, file != "-" {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read '\(file)': no such file or not readable; give an audit log such as /var/log/audit/audit.log")
            }
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        var out: [Explanation] = []
        var unreadable = 0
        for (n, line) in text.textLines().enumerated() {
            let record: AVCRecord
            do {
                guard let r = try AVCRecord.parse(String(line)), r.denied else { continue }
                record = r
            } catch let e as SELinuxError {
                printError("line \(n + 1): \(e.message)")
                unreadable += 1
                continue
            }
            out.append(Self.explain(record, line: n + 1, policy: policy))
        }
        if json {
            try printJSON(out)
        } else {
            print("policy: \(source)")
            if out.isEmpty { print("no AVC denials found") }
            for e in out {
                print("")
                print("line \(e.line): denied { \(e.permissions.joined(separator: " ")) } scontext=\(e.source) tcontext=\(e.target) tclass=\(e.tclass)")
                print("  \(e.result): \(e.reason)")
                for f in e.fixes { print("  fix: \(f)") }
            }
        }
        if unreadable > 0 { throw ExitCode(2) }
    }

    /// `--vm NAME`: the VM's denials from the audit input and svirt's Landlock records.
    func explainVM(_ name: String) throws {
        let env = try HostEnvironment(stateDirectory: options.global.stateDir, selinuxRoot: options.global.selinuxRoot)
        let store = try BooleanStore(environment: env, registry: try env.openRegistry())
        // The policy (--policy, else the host's) with svirt's effective booleans, then the --bool overrides.
        var policy: PolicyDatabase
        let policySource: String
        if let path = options.policy {
            policy = try PolicyOptions.read(path)
            policySource = path
        } else {
            policy = store.policy
            policySource = store.policySource
        }
        let given = try options.parsedBooleans()
        let values = try store.effectiveBooleans().filter { policy.booleanValue($0.key) != nil }.merging(given) { _, g in g }
        do {
            policy = try policy.settingBooleans(values)
        } catch let e as PolicyFormatError {
            throw ValidationError("\(e.section): \(e.found)")
        }
        let denials = VMDenials(environment: env, registry: store.registry, policy: policy, policySource: policySource)
        let report: VMDenialReport
        switch file {
        case "-"?:
            report = try denials.collect(vm: name, auditText: String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self),
                                         auditSource: "standard input")
        case let path?:
            guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
                throw ValidationError("cannot read '\(path)': no such file or not readable; give an audit log such as "
                                      + "\(VMDenials.auditLog), or '-' for ausearch output on standard input")
            }
            report = try denials.collect(vm: name, auditText: String(decoding: data, as: UTF8.self), auditSource: "audit log \(path)")
        case nil:
            report = try denials.collect(vm: name)
        }
        if json {
            try printJSON(report)
            return
        }
        let id = report.identity
        print("policy: \(report.policy)")
        print("VM '\(name)': labels \(id.contexts.isEmpty ? "none yet" : id.contexts.joined(separator: ", "))"
              + "; QEMU pids \(id.pids.isEmpty ? "none recorded" : id.pids.map(String.init).joined(separator: ", "))")
        print("read: \(report.sources.joined(separator: "; "))")
        for n in report.notes { print("note: \(n)") }
        if report.denials.isEmpty {
            print("")
            print("no denials found for '\(name)'")
        }
        for d in report.denials {
            let e = d.explanation
            print("")
            if d.origin == "audit" {
                print("audit line \(d.line ?? 0)\(d.time.map { " (\($0))" } ?? ""): denied { \(e.permissions.joined(separator: " ")) } "
                      + "scontext=\(e.source) tcontext=\(e.target) tclass=\(e.tclass)")
                print("  \(e.result): \(e.reason)")
            } else {
                print("landlock refusal: \(d.text)")
                if let rule = d.landlockRule { print("  Landlock: \(rule)") }
                print("  SELinux would decide \(e.result) for { \(e.permissions.joined(separator: " ")) } on \(e.target.isEmpty ? "it" : e.target):\(e.tclass): \(e.reason)")
            }
            for f in e.fixes { print("  fix: \(f)") }
        }
    }

    /// The reason and the fixes for one denial, with its line number.
    static func explain(_ r: AVCRecord, line: Int, policy: PolicyDatabase) -> Explanation {
        let e = policy.explain(denial: r)
        return Explanation(line: line, permissions: e.permissions, source: e.source, target: e.target, tclass: e.tclass,
                           object: e.object, result: e.result, reason: e.reason, fixes: e.fixes)
    }
}
