import Foundation

/// One benchmark figure, printed as `<figure> <value> <unit> [ratio=<x> baseline=<name>]`.
struct Figure {
    var name: String
    var value: Double
    var unit: String
    var baseline: (name: String, value: Double)?

    func line() -> String {
        var s = "\(name) \(format(value)) \(unit)"
        if let b = baseline, b.value > 0 { s += " ratio=\(format(value / b.value)) baseline=\(b.name)" }
        return s
    }

    func print() { Swift.print(line()) }
}

func format(_ v: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 100 { return String(format: "%.0f", v) }
    if abs(v) >= 1 { return String(format: "%.2f", v) }
    return String(format: "%.4g", v)
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU seconds used by the calling thread. Benchmarks on a busy machine compare CPU time, which other
/// processes do not inflate.
func threadCPU() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
