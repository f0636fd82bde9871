import Foundation

/// Runs the built `svirt` executable (it sits next to the test bundle) and captures its output.
struct CommandRunner {
    struct Output {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("svirt")
    }

    static var available: Bool { FileManager.default.isExecutableFile(atPath: executable.path) }

    /// Runs svirt with `arguments`; stdin, stdout and stderr go through files, so no pipe can fill up.
    static func run(_ arguments: [String], stdin: [UInt8]? = nil) throws -> Output {
        let dir = try TemporaryDirectory()
        let inPath = "\(dir.path)/stdin", outPath = "\(dir.path)/stdout", errPath = "\(dir.path)/stderr"
        _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin ?? []))
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try p.run()
        p.waitUntilExit()
        let out = FileManager.default.contents(atPath: outPath) ?? Data()
        let err = FileManager.default.contents(atPath: errPath) ?? Data()
        return Output(status: p.terminationStatus, stdout: Array(out), stderr: String(decoding: err, as: UTF8.self))
    }
}

/// A temporary directory that is removed when the value is dropped.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "svirt-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let p = "\(path)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
