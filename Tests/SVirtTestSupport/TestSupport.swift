import Foundation

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

/// SplitMix64: a small deterministic generator, so a failing seed can be replayed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
