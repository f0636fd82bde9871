import Dispatch
import Foundation

/// The process entry of the `svirt` executable.
public enum SVirtEntry {
    /// Runs svirt. The stand-in guest (`svirt __guest`) runs synchronously on the main thread and never starts
    /// Swift concurrency: on Linux its Dispatch worker pool watches its threads through /proc/self/task, which a
    /// guest confined by Landlock cannot read (Dispatch then traps). Every other command runs the async
    /// command tree.
    public static func main() -> Never {
        let args = CommandLine.arguments
        if args.count > 1, args[1] == GuestStandIn.configuration.commandName {
            GuestStandIn.main(Array(args.dropFirst(2)))
            exit(0)
        }
        Task {
            await SVirtCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}
