import ArgumentParser
import Foundation
import SVirtXen

/// `svirt xen matrix FILE.cfg...`: which domains can reach which, through grants, event channels, memory and Argo.
struct XenMatrix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "The isolation matrix over a set of xl configs: grant maps, event channels, foreign memory, Argo.",
        discussion: """
            Each domain runs under its running label; a stub device model is a domain of its own (NAME-dm) that acts \
            on its guest through its _target label. --html writes a page that needs no JavaScript: each cell's checks \
            and reasons show on hover. Exits 0 when every pair is isolated (Argo aside), 1 otherwise.
            """)

    @OptionGroup var options: XenPolicyOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print an HTML page.") var html = false
    @Flag(help: "Also print every check of every pair.") var verbose = false
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE"))
    var output: String?
    @Argument(help: ArgumentHelp("xl domain configuration files.", valueName: "FILE.cfg")) var files: [String]

    func validate() throws {
        if files.count < 2 { throw ValidationError("give at least two xl.cfg files") }
        if json && html { throw ValidationError("choose --json or --html") }
    }

    func run() async throws {
        let (policy, source) = try options.load()
        let matrix: XenIsolationMatrix = try await reportingXenErrors("matrix") {
            let builds = try readXenConfigurations(files).map { try XenDomainBuild($0, policy: policy, iommu: options.iommu) }
            return try XenIsolationMatrix(builds: builds, policy: policy)
        }
        let text: String
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            text = String(decoding: try enc.encode(matrix.report(policy: source)), as: UTF8.self) + "\n"
        } else if html {
            text = matrix.html(policy: source)
        } else {
            text = matrix.text(policy: source, verbose: verbose) + "\n"
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                throw ValidationError("cannot write '\(output)'")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        if !matrix.openPairs.isEmpty { throw ExitCode(1) }
    }
}
