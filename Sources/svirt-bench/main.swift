import Foundation

let args = Array(CommandLine.arguments.dropFirst())
let suites = ["mcs", "policy", "fcontext", "lifecycle", "check", "cluster"]
let usage = "usage: svirt-bench <suite>...\nsuites: \(suites.joined(separator: ", ")), or all (every suite, in that order)"
if args.isEmpty || args.contains("-h") || args.contains("--help") {
    print(usage)
    exit(args.isEmpty ? 64 : 0)
}
var chosen: [String] = []
for a in args { chosen += a == "all" ? suites : [a] }
print("# svirt-bench \(chosen.joined(separator: " ")) on \(ProcessInfo.processInfo.hostName), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Date())")
for suite in chosen {
    switch suite {
    case "mcs": MCSBench.run()
    case "policy": PolicyBench.run()
    case "lifecycle": LifecycleBench.run()
    case "cluster": await ClusterBench.run()
    case "fcontext": FContextBench.run()
    case "check": CheckBench.run()
    default:
        FileHandle.standardError.write(Data("svirt-bench: unknown suite '\(suite)'\n\(usage)\n".utf8))
        exit(64)
    }
}
