import Foundation

let args = Array(CommandLine.arguments.dropFirst())
let usage = "usage: svirt-bench <suite>...\nsuites: mcs, policy, lifecycle, cluster, fcontext, check"
if args.isEmpty || args.contains("-h") || args.contains("--help") {
    print(usage)
    exit(args.isEmpty ? 64 : 0)
}
for suite in args {
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
