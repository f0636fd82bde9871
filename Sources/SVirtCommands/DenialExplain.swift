import ArgumentParser
import Foundation
import SELinux
import SELinuxPolicy

/// `svirt explain`: why each AVC denial in a log happened, and the fix.
struct DenialExplain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain AVC denials from an audit log (FILE, or '-' / nothing for standard input), with the fix.")

    @OptionGroup var options: PolicyOptions
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: ArgumentHelp("An audit log or kernel log; '-' or nothing reads standard input.", valueName: "FILE"))
    var file: String?

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
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
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

    /// The reason and the fixes for one denial.
    static func explain(_ r: AVCRecord, line: Int, policy: PolicyDatabase) -> Explanation {
        var e = Explanation(line: line, permissions: r.permissions, source: r.source.description, target: r.target.description,
                            tclass: r.tclass, object: r.objectName, result: "", reason: "", fixes: [])
        let s: PolicyContext, t: PolicyContext
        do {
            s = try policy.resolve(r.source)
            t = try policy.resolve(r.target)
        } catch let err as PolicyFormatError {
            e.result = "INVALID"
            e.reason = "\(err.section): \(err.found); this policy is not the one that logged the denial"
            return e
        } catch {
            e.result = "INVALID"
            e.reason = "\(error)"
            return e
        }
        let c = policy.check(source: s, target: t, class: r.tclass, permissions: r.permissions)
        e.result = c.result.rawValue
        let file = r.objectName ?? "FILE"
        let denied = c.permissions.filter { !$0.allowed }.map(\.permission)
        switch c.result {
        case .allow:
            e.reason = "this policy allows it now; the denial came from another policy or other boolean values"
        case .boolean:
            e.reason = "no allow rule grants it now, but a boolean enables one"
            e.fixes = c.booleans.map { "setsebool -P \($0.name) \($0.value ? "on" : "off")" }
        case .teRule, .dontaudit:
            e.reason = "no allow rule grants \(r.source.type) { \(denied.joined(separator: " ")) } on \(r.target.type):\(r.tclass)"
                + (c.result == .dontaudit ? " (a dontaudit rule hides it from the log)" : "")
            if r.target.role == "object_r", let better = relabelTarget(c, s: s, t: t, policy: policy) {
                e.fixes = ["chcon -t \(better) \(file)"]
            } else {
                e.fixes = ["the policy needs: allow \(r.source.type) \(r.target.type):\(r.tclass) { \(denied.joined(separator: " ")) };"]
            }
        case .constraint:
            let mls = c.constraints.contains(where: \.isMLS)
            if mls, let sl = r.source.range, let tl = r.target.range, !sl.high.dominates(tl.low) || !sl.high.dominates(tl.high) {
                e.reason = "the MCS categories differ: this process may not touch another VM's files "
                    + "(\(sl) does not dominate \(tl))"
                e.fixes = ["give the file the VM's own level (\(sl.low)) if it belongs to this VM, or share it read-only with "
                           + "virt_content_t:s0; never give one VM another VM's categories"]
            } else {
                e.reason = "a constraint forbids it"
            }
            e.fixes += c.constraints.map { "constraint: \($0.text)" + ($0.failedTerms.isEmpty ? "" : " (false: \($0.failedTerms.joined(separator: ", ")))") }
        case .rbac:
            e.reason = "role \(r.source.role) may not change to role \(r.target.role)"
            e.fixes = ["the policy needs: allow \(r.source.role) \(r.target.role);"]
        case .bounds:
            e.reason = "the type's typebounds parent lacks these permissions"
            for v in c.permissions {
                if case .bounds(let b) = v.reason { e.fixes = ["grant them to the bounding type \(b) first"]; break }
            }
        }
        return e
    }

    /// A type for the object that would allow the whole request, preferring the sVirt image types.
    static func relabelTarget(_ c: AccessCheck, s: PolicyContext, t: PolicyContext, policy: PolicyDatabase) -> String? {
        let preferred = ["svirt_image_t", "virt_content_t", "svirt_tmp_t", "svirt_home_t"]
        let others = policy.types.filter { !$0.isAttribute }.map(\.name).sorted()
        let perms = c.permissions.map(\.permission)
        for name in preferred + others where name != t.context.type {
            guard let alt = try? policy.resolve(t.context.with(type: name)) else { continue }
            if policy.check(source: s, target: alt, class: c.tclass, permissions: perms).allowed { return name }
        }
        return nil
    }
}
