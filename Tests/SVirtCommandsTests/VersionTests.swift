import Foundation
import Testing
@testable import SVirtCommands

@Suite("svirt --version") struct VersionTests {
    @Test("the commit is read from share/svirt/commit beside the executable's bin directory, else unknown")
    func commit() throws {
        let dir = NSTemporaryDirectory() + "svirt-version-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/share/svirt", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: "\(dir)/bin/svirt", contents: Data()))
        // /proc/self/exe is a symbolic link to the executable; so is this.
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/exe", withDestinationPath: "\(dir)/bin/svirt")
        #expect(SVirtVersion.commit(executable: "\(dir)/exe") == nil)
        try "0123456789abcdef0123456789abcdef01234567-dirty\n".write(toFile: "\(dir)/share/svirt/commit", atomically: true, encoding: .utf8)
        #expect(SVirtVersion.commit(executable: "\(dir)/exe") == "0123456789abcdef0123456789abcdef01234567-dirty")
        try "not a commit; rm -rf /\n".write(toFile: "\(dir)/share/svirt/commit", atomically: true, encoding: .utf8)
        #expect(SVirtVersion.commit(executable: "\(dir)/exe") == nil)
    }

    @Test("--version prints the number and the commit")
    func description() {
        #expect(SVirtCommand.configuration.version.hasPrefix(SVirtVersion.number + " (commit "))
        #expect(SVirtVersion.description.hasSuffix(")"))
    }
}
