import Foundation

/// Threads of the console's own for the lifecycle's blocking steps (SQLite, xattrs, waiting for a guest to power
/// off for up to the shutdown timeout), so that they never hold Swift's cooperative threads, of which a small
/// host has only as many as cores: two slow shutdowns would otherwise stop every other request.
final class ConsoleWorkers: TaskExecutor, @unchecked Sendable {
    static let shared = ConsoleWorkers(threads: 8)

    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for i in 0..<threads {
            let t = Thread { [unowned self] in self.work() }
            t.name = "svirt-console-\(i)"
            t.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
