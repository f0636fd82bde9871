import ArgumentParser
import Foundation
import SELinux
import SVirt
import SVirtCluster
import SVirtLinux

/// The host, the registries and the lifecycle a domain command works with, reconciled: every VM whose QEMU is
/// gone has been shut off (labels and owners restored, level released, the reason logged) before the command
/// looks at anything. Levels go to the configured level registry (local, or etcd, which refuses rather than
/// fall back); a release etcd cannot take at stop is queued, and the labels are restored all the same.
struct DomainContext {
    let env: HostEnvironment
    let opened: OpenedRegistry
    let lifecycle: DomainLifecycle

    var local: SQLiteRegistry { lifecycle.local }

    /// Opens everything, reconciles (each VM found shut off is reported on stderr), runs `body`, and closes the
    /// registries.
    static func with<T>(_ global: GlobalOptions, quiet: Bool = false, _ body: (DomainContext) async throws -> T) async throws -> T {
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        let opened = try await global.openRegistry(env)
        do {
            let lifecycle = try makeLifecycle(env, opened)
            for r in await lifecycle.reconcile() where !quiet {
                printError("note: domain '\(r.name)' is shut off: \(r.reason); its labels were restored and its level released")
                for f in r.stopped.failures { printError("warning: \(f)") }
            }
            let result = try await body(DomainContext(env: env, opened: opened, lifecycle: lifecycle))
            await opened.close()
            return result
        } catch {
            await opened.close()
            throw error
        }
    }
}

/// The lifecycle over opened registries: levels in the configured registry, releases queued when etcd is away.
func makeLifecycle(_ env: HostEnvironment, _ opened: OpenedRegistry) throws -> DomainLifecycle {
    let lifecycle = try DomainLifecycle(environment: env, local: opened.local, levels: opened.levels)
    if let etcd = opened.etcd {
        lifecycle.releaseLater = { level in
            switch try? await etcd.releaseLevelOrQueue(level) {
            case .released?: return "released on a second try"
            case .queued(let reason)?: return "its release is queued until etcd answers again (\(reason))"
            case nil: return nil
            }
        }
    }
    return lifecycle
}

/// Reconciles the running VMs before a command that is not a domain command (every command reconciles first).
func reconcileDomains(_ env: HostEnvironment, _ opened: OpenedRegistry) async {
    guard let lifecycle = try? makeLifecycle(env, opened) else { return }
    for r in await lifecycle.reconcile() {
        printError("note: domain '\(r.name)' is shut off: \(r.reason); its labels were restored and its level released")
    }
}

/// Runs a domain command the way virsh reports failures: `error: <what failed>` then `error: <why>` on stderr,
/// exit status 1. A domain that does not exist gives virsh's one line, `error: failed to get domain 'NAME'`.
func virsh(_ failure: String?, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as SVirtError {
        if e.code == .notFound, e.message.hasPrefix("failed to get domain") {
            printError("error: \(e.message)")
        } else {
            if let failure { printError("error: \(failure)") }
            printError("error: \(virshReason(e))")
        }
        throw ExitCode.failure
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch {
        if let failure { printError("error: \(failure)") }
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

/// The second virsh line for an error: libvirt's words for state errors.
func virshReason(_ e: SVirtError) -> String {
    switch e.code {
    case .state where e.message.hasPrefix("domain is"):
        return "Requested operation is not valid: \(e.message)"
    case .notFound where e.message == "domain is not running":
        return "Requested operation is not valid: domain is not running"
    default:
        return e.message
    }
}

/// Reads a domain XML file ('-': standard input), with errors that name the file.
func readDomainXML(_ file: String, mode: DomainDefinition.ParseMode = .inactive) throws -> DomainDefinition {
    let data: Data
    if file == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        guard let d = FileManager.default.contents(atPath: file) else {
            let why = FileManager.default.fileExists(atPath: file) ? "it is not readable" : "it does not exist"
            throw SVirtError(.notFound, "cannot read the domain XML \(file): \(why)")
        }
        data = d
    }
    guard data.count <= XMLLimits.domain.maxBytes else {
        throw SVirtError(.invalidDomain, "\(file) is \(data.count) bytes, more than the \(XMLLimits.domain.maxBytes) bytes svirt reads")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw SVirtError(.invalidDomain, "\(file) is not UTF-8 text; save the domain XML as UTF-8")
    }
    let domain = try DomainDefinition(xml: text, mode: mode, source: file == "-" ? "standard input" : file)
    for w in domain.parseWarnings { printError("warning: \(file == "-" ? "standard input" : file): \(w)") }
    return domain
}

/// A process's `ps -eZ` line: label, pid, tty, cpu time, command.
func psLine(label: String, pid: Int32, proc: ProcFS = ProcFS()) -> String {
    let statText = (try? String(contentsOfFile: "\(proc.root)/\(pid)/stat", encoding: .utf8)) ?? ""
    var command = "?"
    var time = "00:00:00"
    if let open = statText.firstIndex(of: "("), let close = statText.lastIndex(of: ")") {
        command = String(statText[statText.index(after: open)..<close])
        let fields = statText[statText.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15 of stat; here they follow state (3) at offsets 11 and 12.
        if fields.count > 12, let u = UInt64(fields[11]), let s = UInt64(fields[12]) {
            let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
            let secs = (u + s) / ticks
            time = String(format: "%02llu:%02llu:%02llu", secs / 3600, secs / 60 % 60, secs % 60)
        }
    }
    return "\(label) \(pid) ? \(time) \(command)"
}

