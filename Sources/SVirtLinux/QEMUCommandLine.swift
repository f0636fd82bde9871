import Foundation
import SVirt

/// The QEMU command line for a `QEMUConfiguration`, in the shape libvirt gives it: no user config, no default
/// devices, no display, `-blockdev` nodes with devices on top, a QMP monitor on a socket svirt creates.
///
/// Server sockets (QMP, a unix-socket serial) are not created by QEMU: svirt's spawn creates them in the child,
/// after writing the socket-create context, and QEMU receives them as descriptors (`fd=3`, `fd=4`). The
/// kernel resets the socket-create context at exec, so a socket QEMU made itself would not carry it.
public struct QEMUCommandLine: Sendable, Hashable {
    /// The descriptor the QMP listening socket gets in QEMU.
    public static let monitorDescriptor: Int32 = 3
    /// The descriptor a unix-socket serial gets in QEMU.
    public static let serialDescriptor: Int32 = 4

    public var emulator: String
    /// The arguments after `argv[0]`.
    public var arguments: [String]
    /// Sockets the spawn creates for QEMU.
    public var listeningSockets: [LaunchDescription.ListeningSocket]

    public init(_ c: QEMUConfiguration, emulator: QEMUEmulator) throws {
        try Self.validate(c)
        self.emulator = emulator.path
        var a: [String] = []
        a += ["-name", "guest=\(Self.escape(c.name)),debug-threads=on"]
        a += ["-no-user-config", "-nodefaults"]
        a += ["-machine", "\(c.machine),accel=\(c.accelerator.rawValue)"]
        if let cpu = c.cpu { a += ["-cpu", cpu] }
        a += ["-m", "\(c.memoryMiB)"]
        a += ["-smp", "\(c.vcpus)"]
        a += ["-display", "none"]
        if c.sandbox && emulator.supportsSandbox {
            a += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
        }
        var sockets = [LaunchDescription.ListeningSocket(path: c.qmpSocket, descriptor: Self.monitorDescriptor)]
        a += ["-chardev", "socket,id=charmonitor,fd=\(Self.monitorDescriptor),server=on,wait=off"]
        a += ["-mon", "chardev=charmonitor,id=monitor,mode=control"]
        if let k = c.kernel { a += ["-kernel", k] }
        if let i = c.initrd { a += ["-initrd", i] }
        if let cmd = c.kernelCommandLine { a += ["-append", cmd] }
        let pcLike = c.machine.hasPrefix("pc") || c.machine.hasPrefix("q35")
        for (i, disk) in c.disks.enumerated() {
            let storage = Self.storageNode(i), format = Self.formatNode(i)
            var filename = disk.path
            if !disk.descriptors.isEmpty {
                // The file svirt opened, checked and labelled: QEMU takes it from a descriptor set.
                let set = i + 1
                for fd in disk.descriptors { a += ["-add-fd", "fd=\(fd),set=\(set),opaque=\(Self.escape(storage))"] }
                filename = "/dev/fdset/\(set)"
            }
            a += ["-blockdev", Self.json([
                "driver": "file", "filename": filename, "node-name": storage, "read-only": disk.readOnly,
                "discard": "unmap",
            ])]
            a += ["-blockdev", Self.json([
                "driver": disk.format.rawValue, "file": storage, "node-name": format, "read-only": disk.readOnly,
            ])]
            var device: String
            if disk.device == .cdrom && pcLike {
                device = "ide-cd,drive=\(format),id=cdrom\(i)"
            } else {
                device = "virtio-blk-pci,drive=\(format),id=disk\(i)"
            }
            if disk.shareable { device += ",share-rw=on" }
            a += ["-device", device]
        }
        switch c.serial {
        case .file(let p):
            a += ["-chardev", "file,id=charserial0,path=\(Self.escape(p)),append=on"]
        case .pty:
            a += ["-chardev", "pty,id=charserial0"]
        case .unixSocket(let p):
            sockets.append(.init(path: p, descriptor: Self.serialDescriptor))
            a += ["-chardev", "socket,id=charserial0,fd=\(Self.serialDescriptor),server=on,wait=off"]
        case nil:
            break
        }
        if c.serial != nil { a += ["-serial", "chardev:charserial0"] }
        if c.startPaused { a.append("-S") }
        a += c.extraArguments
        arguments = a
        listeningSockets = sockets
    }

    /// The node name of disk `i`'s file.
    public static func storageNode(_ i: Int) -> String { "svirt-\(i)-storage" }
    /// The node name of disk `i`'s format layer (what devices attach to).
    public static func formatNode(_ i: Int) -> String { "svirt-\(i)-format" }

    /// A launch description that runs this command line with the minimal environment; the caller adds
    /// confinement, credentials and where stderr goes.
    public func launchDescription() -> LaunchDescription {
        var d = LaunchDescription(executable: emulator, arguments: arguments,
                                  environment: LaunchDescription.minimalEnvironment)
        d.listeningSockets = listeningSockets
        return d
    }

    /// Doubles commas, QEMU's escape inside `key=value,...` options.
    public static func escape(_ s: String) -> String { s.replacingOccurrences(of: ",", with: ",,") }

    static func json(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func validate(_ c: QEMUConfiguration) throws {
        func bad(_ what: String) -> SVirtError { SVirtError(.invalidDomain, "guest '\(c.name)': \(what)") }
        guard !c.name.isEmpty else { throw SVirtError(.invalidDomain, "a guest needs a name") }
        guard c.machine.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }), !c.machine.isEmpty else {
            throw bad("machine type '\(c.machine)' has characters QEMU does not use in machine names")
        }
        guard c.memoryMiB > 0 else { throw bad("memory must be at least 1 MiB") }
        guard c.vcpus > 0 else { throw bad("vcpus must be at least 1") }
        for d in c.disks where !d.path.hasPrefix("/") {
            throw bad("disk path '\(d.path)' is not absolute; give the full path")
        }
        guard c.qmpSocket.hasPrefix("/") else { throw bad("the QMP socket path '\(c.qmpSocket)' is not absolute") }
        for s in [c.name, c.kernelCommandLine ?? ""] + c.disks.map(\.path) where s.utf8.contains(0) {
            throw bad("a value contains a NUL byte")
        }
    }
}
