import Foundation
import Glibc
import SVirt
@testable import SVirtLinux

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "svirt-test") throws {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> Bool in
            guard let base = buf.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard made else { throw SystemCallError(call: "mkdtemp", path: "/tmp/\(label)", errno: errno) }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: false, encoding: .utf8)
        return p
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Reads a whole text file ("" when missing).
func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Waits for a child and returns its exit status (128 + signal when killed).
func waitExit(_ pid: Int32) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR { return -1 }
    }
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
}

/// Kills and reaps a child.
func killAndReap(_ pid: Int32) {
    kill(pid, SIGKILL)
    _ = waitExit(pid)
}

/// A description that runs `/bin/sh -c script` with stdout and stderr in files of `dir`.
func shell(_ script: String, in dir: TemporaryDirectory, _ args: String...) -> LaunchDescription {
    var d = LaunchDescription(executable: "/bin/sh", arguments: ["-c", script, "sh"] + args,
                              environment: LaunchDescription.minimalEnvironment)
    d.standardOutput = .file(dir.file("stdout"))
    d.standardError = .file(dir.file("stderr"))
    return d
}

