import ArgumentParser
import Foundation
import Glibc
import SELinuxPolicy
import SVirt
import SVirtLinux

/// `svirt check`: proves (or refutes) that the VMs on this host are kept apart, from the policy's own decisions.
struct IsolationCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check from the policy that the VMs are kept apart: who can touch which VM's files and processes.",
        discussion: """
            Every VM's process label is checked against every resource of every VM (running VMs with the labels of \
            their live XML, defined ones with the labels a start would give them; a defined dynamic VM gets the \
            lowest free level of the pool, in name order) and against the other VMs' processes, one permission at a \
            time, with the policy's reason for each refusal. FAIL: a VM can read, write, execute, map or setattr \
            another VM's private resource, or signal or ptrace its process; a VM lacks what it needs on its own \
            resource; a VM's level dominates (or equals) another's. INFO: a shared resource several VMs can reach. \
            Without NAME every VM is checked. --html and --svg draw the matrix, with the permissions and reasons on \
            hover and no script. Exit status: 0 no FAIL, 1 a FAIL, 2 bad input (an unknown VM, a bad --bool, an \
            unreadable policy), 3 the check could not be made (the registry or the policy failed).
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The VMs to check (default: every defined or running VM).", valueName: "NAME"))
    var names: [String] = []

    @Flag(help: "Check every defined or running VM (the default when no NAME is given).") var all = false

    @Option(help: ArgumentHelp("A binary policy file (default: the host's policy, else svirt's built-in policy).", valueName: "PATH"))
    var policy: String?

    @Option(name: .customLong("bool"), help: ArgumentHelp("Set a boolean for this check, e.g. virt_use_nfs=1 (repeatable).", valueName: "NAME=0|1"))
    var booleans: [String] = []

    @Flag(help: "Print JSON.") var json = false

    @Option(help: ArgumentHelp("Write the matrix as an HTML page to FILE.", valueName: "FILE")) var html: String?

    @Option(help: ArgumentHelp("Write the matrix as an SVG image to FILE.", valueName: "FILE")) var svg: String?

    @Option(help: ArgumentHelp("Write each cell's questions to FILE, one permission per line, with svirt's answer: "
                               + "ALLOW|DENY<TAB>SCON TCON CLASS PERM. Another decider (the kernel through selinuxfs "
                               + "access, libsepol, svirt policy check --batch) can answer the same lines.", valueName: "FILE"))
    var queries: String?

    @Flag(help: ArgumentHelp("Keep every cell and print the grid whatever the number of VMs (above \(IsolationMatrix.Detail.automaticLimit) VMs the text leaves the grid out and keeps only the cells the findings come from; --json, --html, --svg and --queries always keep every cell)."))
    var full = false

    /// Every cell is kept: asked for, or needed by an output.
    var wholeMatrix: Bool { full || json || html != nil || svg != nil || queries != nil }

    /// Exit status for bad input.
    static let badInput = ExitCode(2)
    /// Exit status when the check could not be made (a registry or policy failure).
    static let notChecked = ExitCode(3)

    func run() async throws {
        if all && !names.isEmpty { try fail("give VM names or --all, not both") }
        let overrides: [String: Bool]
        do {
            overrides = try PolicyOptions.parseBooleans(booleans)
        } catch let e as ValidationError {
            try fail(e.message)
        }
        let checker: PolicyAccessChecker
        do {
            if let path = policy {
                checker = PolicyAccessChecker(policy: try PolicyOptions.read(path), source: path)
            } else {
                let root = HostSELinuxConfiguration.resolveRoot(global.selinuxRoot)
                checker = try HostSELinuxConfiguration.load(root: root).accessChecker()
            }
        } catch let e as ValidationError {
            try fail(e.message)
        } catch {
            try fail("cannot read the host's SELinux policy: \(error); give one with --policy PATH")
        }
        for name in overrides.keys.sorted() where !(try checker.definesBoolean(name)) {
            try fail("--bool \(name): \(checker.source) defines no boolean '\(name)'; list its booleans with "
                     + "'svirt policy info --booleans\(policy.map { " --policy \($0)" } ?? "")' or leave it out")
        }
        let matrix: IsolationMatrix
        do {
            matrix = try await DomainContext.with(global, quiet: json) { ctx in
                try await ctx.lifecycle.isolationMatrix(names: names, policy: checker, overrides: overrides,
                                                        detail: wholeMatrix ? .full : .automatic)
            }
        } catch let e as SVirtError where e.code == .notFound && e.message.hasPrefix("failed to get domain") {
            try fail(e.message)
        } catch let e as SVirtError {
            printError("error: \(e.message)")
            throw Self.notChecked
        } catch {
            printError("error: the check could not be made: \(error)")
            throw Self.notChecked
        }
        if let path = html { try write(matrix.html(), to: path) }
        if let path = svg { try write(matrix.svg(), to: path) }
        if let path = queries { try write(Self.queryLines(matrix).map { $0 + "\n" }.joined(), to: path) }
        if json {
            try printJSON(matrix)
        } else {
            print(matrix.text())
        }
        if matrix.failed { throw ExitCode.failure }
    }

    /// Every cell as policy questions, one per permission, each with the matrix's answer.
    static func queryLines(_ matrix: IsolationMatrix) -> [String] {
        var process: [String: String] = [:]
        for m in matrix.machines { if let p = m.process { process[m.name] = p } }
        var context: [String: String] = [:]
        for r in matrix.resources { context[r.id] = r.context }
        var lines: [String] = []
        for c in matrix.cells {
            guard let source = process[c.vm] else { continue }
            let target = c.target.hasPrefix("process:") ? process[String(c.target.dropFirst("process:".count))] : context[c.target]
            guard let target else { continue }
            for p in c.permissions where !(p.reason ?? "").hasPrefix("not checked") {
                lines.append("\(p.allowed ? "ALLOW" : "DENY")\t\(source) \(target) \(c.objectClass) \(p.name)")
            }
        }
        return lines
    }

    /// Writes a report where the caller asked. svirt runs as root and the path is often in a directory others
    /// may write (/tmp): a symbolic link planted there is not followed, and only a regular file is truncated.
    func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP {
                try fail("'\(path)' is a symbolic link; svirt writes reports only to a regular file: remove the link or choose another path")
            }
            try fail("cannot write '\(path)': \(String(cString: strerror(e))); check that its directory exists and is writable")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            try fail("'\(path)' is not a regular file; choose another path for the report")
        }
        let bytes = Array(text.utf8)
        var done = 0
        guard ftruncate(fd, 0) == 0 else { try fail("cannot truncate '\(path)': \(String(cString: strerror(errno)))") }
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { try fail("cannot write '\(path)': \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Reports bad input and exits with status 2.
    func fail(_ message: String) throws -> Never {
        printError("error: \(message)")
        throw Self.badInput
    }
}
