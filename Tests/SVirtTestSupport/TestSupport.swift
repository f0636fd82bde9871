import Foundation
@_exported import struct SVirt.SeededGenerator

// What several test targets share: the repository's location, fixture reading, scratch directories and a
// seeded generator. A library target (not a test target), so each test target can depend on it.

/// The repository root, found from this file's path (Tests/SVirtTestSupport/TestSupport.swift).
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()   // SVirtTestSupport
    url.deleteLastPathComponent()   // Tests
    url.deleteLastPathComponent()
    return url.path
}()

/// The bytes of a file; a missing file is a thrown error naming the path.
public func readBytes(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else {
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
    }
    return [UInt8](d)
}

/// A fresh directory under the temporary directory, named after the suite that asked for it.
public func temporaryDirectory(prefix: String = "svirt-tests") throws -> String {
    let dir = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The library's seeded SplitMix64, so a failing seed can be replayed.
public typealias SeededRandom = SeededGenerator
