import SVirt

extension QEMUConfiguration {
    /// The configuration of a domain: machine type, accelerator, memory and vcpus, disks (format, readonly,
    /// shareable, cdrom), direct kernel boot, one serial port (file, pty or a unix socket QEMU listens on), and
    /// the monitor at `qmpSocket`.
    ///
    /// `kvm` says whether `/dev/kvm` is usable: a `type='kvm'` domain needs it (svirt does not quietly fall back to
    /// TCG, which is many times slower), a `type='qemu'` domain runs on TCG. Devices svirt cannot run yet
    /// (host devices, TPMs, input devices, shared filesystems, firmware loaders, network disks) are refused with
    /// their element named, before anything is labelled.
    public init(domain d: DomainDefinition, qmpSocket: String, kvm: (usable: Bool, reason: String)) throws {
        func unsupported(_ what: String) -> SVirtError {
            SVirtError(.unsupported, "domain '\(d.name)': \(what) is not supported by svirt start yet; remove it from the XML")
        }
        let accelerator: Accelerator
        switch d.virtType {
        case .kvm:
            guard kvm.usable else {
                throw SVirtError(.unsupported, "domain '\(d.name)' is type='kvm', but KVM is not usable here (\(kvm.reason)); "
                                 + "use <domain type='qemu'> to run it on TCG")
            }
            accelerator = .kvm
        case .qemu:
            accelerator = .tcg
        }
        let mib = d.memoryKiB / 1024 + (d.memoryKiB % 1024 == 0 ? 0 : 1)
        guard let vcpus = UInt32(exactly: d.vcpus), vcpus > 0 else {
            throw SVirtError(.invalidDomain, "domain '\(d.name)': <vcpu> \(d.vcpus) is not a usable number of vcpus")
        }
        self.init(name: d.name, machine: d.os.machine ?? "q35", accelerator: accelerator, memoryMiB: mib, vcpus: vcpus,
                  qmpSocket: qmpSocket)
        if !d.hostDevices.isEmpty { throw unsupported("<hostdev>") }
        if !d.tpms.isEmpty { throw unsupported("<tpm>") }
        if !d.inputs.isEmpty { throw unsupported("<input>") }
        if !d.filesystems.isEmpty { throw unsupported("<filesystem>") }
        if d.os.loader != nil || d.os.nvram != nil { throw unsupported("<loader>/<nvram> (UEFI firmware)") }
        if d.os.dtb != nil { throw unsupported("<dtb>") }
        for (i, disk) in d.disks.enumerated() {
            let name = disk.displayName(index: i)
            switch disk.type {
            case .network: throw unsupported("\(name): a network disk")
            case .dir: throw unsupported("\(name): a directory disk")
            case .file, .block: break
            }
            let device: DiskDevice
            switch disk.device {
            case .disk: device = .disk
            case .cdrom: device = .cdrom
            case .floppy, .lun: throw unsupported("\(name): device='\(disk.device.rawValue)'")
            }
            guard let path = disk.path else {
                if disk.device == .cdrom { continue }  // an empty drive
                throw SVirtError(.invalidDomain, "domain '\(d.name)': \(name) has no <source>")
            }
            let format: DiskFormat = disk.format == .qcow2 ? .qcow2 : .raw
            disks.append(Disk(path: path, format: format, device: device, readOnly: disk.readOnly,
                              shareable: disk.shareable, target: disk.target))
        }
        kernel = d.os.kernel
        initrd = d.os.initrd
        kernelCommandLine = d.os.cmdline
        let serials = d.characterDevices.filter { $0.kind == .serial || ($0.kind == .console && $0.targetType == "serial") }
        var seen: CharacterDevice?
        for c in serials {
            // A console that mirrors the serial port is the same device.
            if let s = seen, s.sourceType == c.sourceType, s.path == c.path { continue }
            if seen != nil { throw unsupported("more than one serial port") }
            seen = c
            switch c.sourceType {
            case .file:
                guard let p = c.path else { throw SVirtError(.invalidDomain, "domain '\(d.name)': serial type='file' needs <source path=...>") }
                serial = .file(p)
            case .pty:
                serial = .pty
            case .unix:
                guard let p = c.path else { throw SVirtError(.invalidDomain, "domain '\(d.name)': serial type='unix' needs <source path=...>") }
                if c.connects { throw unsupported("a serial port that connects to a unix socket (mode='connect')") }
                serial = .unixSocket(p)
            default:
                throw unsupported("serial type='\(c.sourceType.name)'")
            }
        }
        if d.characterDevices.contains(where: { $0.kind == .channel || $0.kind == .parallel }) {
            throw unsupported("<channel>/<parallel>")
        }
    }
}
