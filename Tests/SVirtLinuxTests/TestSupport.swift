import Foundation
import Glibc

/// A fresh directory under /tmp, removed by `cleanup()`.
struct TempDir {
    let path: String

    init(_ prefix: String = "svirt-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: p)
    }

    func file(_ name: String, _ text: String) throws -> String {
        let full = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
        return full
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A scratch directory removed when the value goes away.
final class ScratchDirectory {
    let path: String

    init(_ prefix: String = "svirt-test", in parent: String = NSTemporaryDirectory()) throws {
        path = try Self.make(prefix, in: parent)
    }

    /// Makes a fresh directory `<parent>/<prefix>.XXXXXX` and returns its path.
    static func make(_ prefix: String, in parent: String) throws -> String {
        let template = (parent.hasSuffix("/") ? parent : parent + "/") + "\(prefix).XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String, _ contents: String = "") throws -> String {
        let p = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: p, atomically: false, encoding: .utf8)
        return p
    }
}

/// Runs a program and returns its exit status and output.
@discardableResult
func run(_ program: String, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

let isRoot = getuid() == 0
