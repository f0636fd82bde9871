import ArgumentParser
import Foundation
import Glibc
import SELinux
import SVirtLinux

/// `svirt fcontext`: the default labels file_contexts gives paths.
struct FContext: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcontext",
        abstract: "Look up the default labels the policy's file_contexts gives paths.",
        subcommands: [FContextLookup.self])
}

/// Where the file_contexts comes from, shared by `fcontext lookup` and `restorecon`.
struct FileContextsOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp(
        "Read this file_contexts (and its .homedirs, .local, .subs_dist and .subs) instead of the host policy's.",
        valueName: "FILE_CONTEXTS"))
    var file: String?

    @Flag(name: .long, help: "Skip bad file_contexts lines (each is reported on stderr) instead of failing.")
    var ignoreErrors = false

    func load() throws -> FileContexts {
        let fc: FileContexts
        do {
            if let file {
                fc = try FileContexts.load(path: file, ignoreErrors: ignoreErrors)
            } else {
                fc = try FileContexts.loadHost(root: HostSELinuxConfiguration.resolveRoot(global.selinuxRoot),
                                               ignoreErrors: ignoreErrors)
            }
        } catch let e as SELinuxError {
            throw ValidationError(e.message + (ignoreErrors || e.line == nil ? "" : " (or pass --ignore-errors to skip bad lines)"))
        }
        for e in fc.skipped { printError("svirt: skipped \(e.message)") }
        return fc
    }
}

/// A file type as the commands accept it: a file_contexts field, `0` (any type), or a word.
struct FileTypeArgument: ExpressibleByArgument {
    var type: FileType?
    var token: String

    static let accepted = "-- -d -l -p -s -c -b, 0 (any), or file, dir, link, pipe, socket, char, block"

    init?(argument: String) {
        token = argument
        switch argument {
        case "0", "any": type = nil
        case "file", "regular": type = .regular
        case "dir", "directory": type = .directory
        case "link", "symlink": type = .symbolicLink
        case "pipe", "fifo": type = .namedPipe
        case "socket": type = .socket
        case "char": type = .characterDevice
        case "block": type = .blockDevice
        default:
            guard let t = FileType(field: argument) else { return nil }
            type = t
        }
    }

    /// The token printed in the MODE column.
    var modeColumn: String { type?.field ?? "0" }
}

struct FContextLookup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Print the default context of each path, as libselinux's selabel_lookup_raw gives it.",
        discussion: """
            Output lines are CONTEXT<TAB>PATH<TAB>MODE, with <<none>> when the path gets no label. With --batch, \
            each input line is PATH [MODE], MODE being one of -- -d -l -p -s -c -b or 0 (any type).
            """)

    @OptionGroup var source: FileContextsOptions

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "The file type to look up: \(FileTypeArgument.accepted). Default: any type.", valueName: "TYPE"))
    var mode: FileTypeArgument?

    @Option(name: .long, help: ArgumentHelp("Read PATH [MODE] lines from FILE, or from stdin with '-'.",
                                            valueName: "FILE"))
    var batch: String?

    @Flag(name: .long, help: "Also print the file and line that decided, and its expression.")
    var explain = false

    @Flag(help: "Print JSON.") var json = false

    @Argument(help: ArgumentHelp("Paths to look up.", valueName: "PATH"))
    var paths: [String] = []

    func validate() throws {
        if batch == nil && paths.isEmpty { throw ValidationError("give at least one PATH, or --batch FILE|-") }
        if batch != nil && !paths.isEmpty { throw ValidationError("give PATHs or --batch, not both") }
        if batch != nil && json { throw ValidationError("--json works with PATH arguments, not with --batch") }
    }

    struct Row: Encodable {
        var path: String
        var mode: String
        var context: String
        var file: String?
        var line: Int?
        var regex: String?
    }

    func run() async throws {
        let fc = try source.load()
        if let batch {
            try runBatch(fc, batch)
            return
        }
        let matcher = fc.makeMatcher()
        var rows: [Row] = []
        for p in paths {
            let m = matcher.lookup(p, fileType: mode?.type)
            let s = m.specification
            rows.append(Row(path: p, mode: mode?.modeColumn ?? "0", context: m.rawContext, file: s?.file,
                            line: s?.line, regex: s?.regex))
        }
        if json { try printJSON(rows); return }
        for r in rows {
            var line = "\(r.context)\t\(r.path)\t\(r.mode)"
            if explain {
                if let f = r.file, let l = r.line, let x = r.regex { line += "\t\(f):\(l)\t\(x)" } else { line += "\t-\t-" }
            }
            print(line)
        }
    }

    /// Reads `PATH [MODE]` lines (paths as raw bytes) and writes `CONTEXT<TAB>PATH<TAB>MODE` lines.
    func runBatch(_ fc: FileContexts, _ input: String) throws {
        let data: [UInt8]
        if input == "-" {
            data = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let d = try FileContexts.readHostFile(input) else {
                throw ValidationError("cannot read --batch file '\(input)': it does not exist")
            }
            data = d
        }
        let matcher = fc.makeMatcher()
        var out: [UInt8] = []
        out.reserveCapacity(data.count * 2)
        let defaultMode = mode?.modeColumn ?? "0"
        var lineNumber = 0
        var start = 0
        let writer = OutputBuffer()
        while start < data.count {
            var end = start
            while end < data.count, data[end] != 0x0A { end += 1 }
            lineNumber += 1
            var line = data[start..<end]
            start = end + 1
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty { continue }
            var path = line
            var modeToken = defaultMode
            var type = mode?.type
            if let space = line.lastIndex(of: 0x20) {
                let token = String(decoding: line[(space + 1)...], as: UTF8.self)
                if let t = FileTypeArgument(argument: token), token == "0" || FileType(field: token) != nil {
                    path = line[line.startIndex..<space]
                    modeToken = token
                    type = t.type
                }
            }
            let m = path.withUnsafeBufferPointer { matcher.lookup(bytes: $0, fileType: type) }
            out.append(contentsOf: m.rawContext.utf8)
            out.append(0x09)
            out.append(contentsOf: path)
            out.append(0x09)
            out.append(contentsOf: modeToken.utf8)
            out.append(0x0A)
            if out.count > 1 << 20 { writer.write(out); out.removeAll(keepingCapacity: true) }
        }
        writer.write(out)
    }
}

/// Writes bytes to stdout, unbuffered by Foundation.
final class OutputBuffer {
    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}
