import Foundation

/// The boots the suite makes, each once per test process, whichever test asks first; the others wait for it.
/// Boots run one after another: each is a TCG machine running QEMU inside, and the host has few cores.
actor GuestBoots {
    enum Mode: String, Sendable, CaseIterable {
        case defaultPolicy = "default"
        case mlsPolicy = "mls"
        /// The mls policy with svirt's policy module (selinux/svirt.cil, svirt-mls.cil) loaded.
        case mlsModule = "mls-module"
        case permissive = "default-permissive"

        var arguments: [String] {
            switch self {
            case .defaultPolicy: ["--policy", "default"]
            case .mlsPolicy: ["--policy", "mls"]
            case .mlsModule: ["--policy", "mls", "--module"]
            case .permissive: ["--policy", "default", "--permissive"]
            }
        }
    }

    static let shared = GuestBoots()

    private var boots: [Mode: Task<GuestRun, any Error>] = [:]
    private var last: Task<GuestRun, any Error>?

    func run(_ mode: Mode) async throws -> GuestRun {
        if let boot = boots[mode] { return try await boot.value }
        let previous = last
        let boot = Task { () throws -> GuestRun in
            _ = try? await previous?.value
            return try Self.boot(mode)
        }
        boots[mode] = boot
        last = boot
        return try await boot.value
    }

    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// With `SVIRT_SELINUX_GUEST_REPLAY=DIR`, the consoles saved in DIR (`default.log`, `mls.log`,
    /// `mls-module.log`, `default-permissive.log`, as a run leaves them in `.build-selinux-guest/logs`) are parsed instead of
    /// booting: for working on the assertions, never for a verdict on svirt.
    private static func boot(_ mode: Mode) throws -> GuestRun {
        if let replay = ProcessInfo.processInfo.environment["SVIRT_SELINUX_GUEST_REPLAY"], !replay.isEmpty {
            let console = try String(contentsOfFile: "\(replay)/\(mode.rawValue).log", encoding: .utf8)
            return GuestRun(console: console, exitStatus: console.contains("SVIRT-GUEST-END") ? 0 : 1)
        }
        return try bootGuest(mode)
    }

    /// Runs the harness and keeps its console (standard output and error, in a file: no pipe to fill) beside
    /// the cache, so a failed assertion can be read against the whole boot.
    private static func bootGuest(_ mode: Mode) throws -> GuestRun {
        let root = repositoryRoot
        let logDirectory = root.appendingPathComponent(".build-selinux-guest/logs")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        let log = logDirectory.appendingPathComponent("\(mode.rawValue).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/selinux-guest")
        // SVIRT_GUEST_SVIRT: the svirt binary to put in the guest (CI gives the static release build the package
        // test made, which runs several times faster under TCG); default: .build/debug/svirt.
        let binary = ProcessInfo.processInfo.environment["SVIRT_GUEST_SVIRT"].flatMap { $0.isEmpty ? nil : $0 }
        process.arguments = mode.arguments + ["--timeout", "1500"] + (binary.map { ["--svirt", $0] } ?? [])
        process.currentDirectoryURL = root
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        let console = String(decoding: try Data(contentsOf: log), as: UTF8.self)
        return GuestRun(console: console, exitStatus: process.terminationStatus)
    }
}

/// The suite runs only as root, with QEMU on the host, and unless `SVIRT_SELINUX_GUEST=0`.
enum GuestGate {
    static var enabled: Bool {
        getuid() == 0 && qemuPresent && ProcessInfo.processInfo.environment["SVIRT_SELINUX_GUEST"] != "0"
    }

    static var qemuPresent: Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/qemu-system-x86_64") }
    }
}
