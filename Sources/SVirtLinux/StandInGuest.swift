import Foundation
import Glibc
import SVirt

/// The stand-in guest: what `svirt __guest` runs where QEMU is missing. It opens its disks as QEMU would
/// (read-write, or read-only), holds them, and answers enough QMP on the listening socket it is given
/// (`--monitor-fd`) for the same launcher, confinement and QMP code to drive it: the greeting,
/// `qmp_capabilities`, `query-status`, `query-version`, `blockdev-add` (which really opens the file and fails
/// with QEMU's words, e.g. "Could not open '/x.img': Permission denied"), `blockdev-del`,
/// `query-named-block-nodes`, `system_powerdown` and `quit`.
public enum StandInGuest {
    public struct Disk: Sendable, Hashable {
        public var path: String
        public var readOnly: Bool
        public init(path: String, readOnly: Bool) {
            self.path = path
            self.readOnly = readOnly
        }
    }

    /// The stand-in's arguments for a configuration: the same disks and monitor as QEMU would get.
    public static func arguments(for c: QEMUConfiguration) -> [String] {
        var a = ["__guest", "--name", c.name, "--monitor-fd", String(QEMUCommandLine.monitorDescriptor)]
        for d in c.disks { a += [d.readOnly ? "--readonly-disk" : "--disk", d.path] }
        return a
    }

    /// A launch description that runs `svirtExecutable` as the stand-in for `c`.
    public static func launchDescription(for c: QEMUConfiguration, svirtExecutable: String) -> LaunchDescription {
        var d = LaunchDescription(executable: svirtExecutable, arguments: arguments(for: c),
                                  environment: LaunchDescription.minimalEnvironment)
        d.argument0 = "svirt-guest"
        d.listeningSockets = [.init(path: c.qmpSocket, descriptor: QEMUCommandLine.monitorDescriptor)]
        return d
    }

    /// The path of the running svirt executable.
    public static func currentExecutable() -> String { canonical("/proc/self/exe") }

    /// A line on stderr, written directly (no Foundation machinery in the guest).
    private static func log(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    private struct Node {
        var fd: Int32
        var filename: String
        var readOnly: Bool
    }

    /// Runs the guest until `system_powerdown` or `quit` (returns 0) or until a disk cannot be opened (prints
    /// QEMU's kind of message and returns 1).
    public static func run(name: String, monitorFD: Int32, disks: [Disk]) -> Int32 {
        var nodes: [String: Node] = [:]
        for (i, disk) in disks.enumerated() {
            let fd = open(disk.path, (disk.readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
            if fd < 0 {
                let e = String(cString: strerror(errno))
                log("svirt-guest: Could not open '\(disk.path)': \(e)")
                return 1
            }
            nodes["disk\(i)"] = Node(fd: fd, filename: disk.path, readOnly: disk.readOnly)
        }
        log("svirt-guest: \(name) running with \(disks.count) disk(s)")
        while true {
            let client = accept(monitorFD, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                log("svirt-guest: monitor accept: \(String(cString: strerror(errno)))")
                return 1
            }
            if serve(client, nodes: &nodes) {
                close(client)
                return 0
            }
            close(client)
        }
    }

    /// Serves one monitor connection; true when the guest is to exit.
    private static func serve(_ fd: Int32, nodes: inout [String: Node]) -> Bool {
        func send(_ v: JSONValue) { try? UnixSocket.writeAll(fd, Array((v.json + "\r\n").utf8), until: .now + .seconds(5)) }
        func event(_ name: String, _ data: JSONValue) {
            var tv = timeval()
            gettimeofday(&tv, nil)
            send(["event": .string(name), "data": data,
                  "timestamp": ["seconds": .integer(Int64(tv.tv_sec)), "microseconds": .integer(Int64(tv.tv_usec))]])
        }
        send(["QMP": ["version": ["qemu": ["major": 0, "minor": 0, "micro": 0], "package": "svirt stand-in guest"],
                      "capabilities": []]])
        var negotiated = false
        var splitter = JSONStreamSplitter()
        while true {
            guard let chunk = try? UnixSocket.readSome(fd, until: .now + .seconds(86400 * 365)), !chunk.isEmpty,
                  let frames = try? splitter.append(chunk) else { return false }
            for frame in frames {
                guard let message = try? JSONValue.parse(frame) else {
                    send(["error": ["class": "GenericError", "desc": "JSON parse error"]])
                    continue
                }
                let id = message["id"]
                func reply(_ r: JSONValue) {
                    var o: [String: JSONValue] = ["return": r]
                    if let id { o["id"] = id }
                    send(.object(o))
                }
                func fail(_ cls: String, _ desc: String) {
                    var o: [String: JSONValue] = ["error": ["class": .string(cls), "desc": .string(desc)]]
                    if let id { o["id"] = id }
                    send(.object(o))
                }
                guard let command = message["execute"]?.stringValue else {
                    fail("GenericError", "QMP input lacks member 'execute'")
                    continue
                }
                let args = message["arguments"] ?? [:]
                if !negotiated && command != "qmp_capabilities" {
                    fail("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
                    continue
                }
                switch command {
                case "qmp_capabilities":
                    negotiated = true
                    reply([:])
                case "query-status":
                    reply(["status": "running", "singlestep": false, "running": true])
                case "query-version":
                    reply(["qemu": ["major": 0, "minor": 0, "micro": 0], "package": "svirt stand-in guest"])
                case "blockdev-add":
                    // QEMU's shapes: {driver: file, filename} or {driver: raw|qcow2, file: {driver: file, filename}}.
                    let fileNode = args["file"]?.objectValue != nil ? args["file"] : args
                    guard let name = args["node-name"]?.stringValue else {
                        fail("GenericError", "A block device must be given a node-name")
                        continue
                    }
                    guard let filename = fileNode?["filename"]?.stringValue else {
                        fail("GenericError", "Parameter 'filename' is missing")
                        continue
                    }
                    if nodes[name] != nil {
                        fail("GenericError", "Duplicate nodes with node-name='\(name)'")
                        continue
                    }
                    let readOnly = args["read-only"]?.boolValue ?? fileNode?["read-only"]?.boolValue ?? false
                    let nfd = open(filename, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
                    if nfd < 0 {
                        fail("GenericError", "Could not open '\(filename)': \(String(cString: strerror(errno)))")
                        continue
                    }
                    nodes[name] = Node(fd: nfd, filename: filename, readOnly: readOnly)
                    reply([:])
                case "blockdev-del":
                    guard let name = args["node-name"]?.stringValue, let n = nodes.removeValue(forKey: name) else {
                        fail("GenericError", "Failed to find node with node-name='\(args["node-name"]?.stringValue ?? "")'")
                        continue
                    }
                    close(n.fd)
                    reply([:])
                case "query-named-block-nodes":
                    reply(.array(nodes.sorted { $0.key < $1.key }.map { key, n in
                        ["node-name": .string(key), "file": .string(n.filename), "ro": .bool(n.readOnly), "drv": "file"]
                    }))
                case "system_powerdown":
                    reply([:])
                    event("POWERDOWN", [:])
                    event("SHUTDOWN", ["guest": true, "reason": "guest-shutdown"])
                    return true
                case "quit":
                    event("SHUTDOWN", ["guest": false, "reason": "host-qmp-quit"])
                    reply([:])
                    return true
                default:
                    fail("CommandNotFound", "The command \(command) has not been found")
                }
            }
        }
    }
}
