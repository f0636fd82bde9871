import SELinux

/// Paths the lifecycle code creates for a running VM (its private runtime directory, a swtpm socket), which the
/// plan labels along with the definition's resources.
public struct RuntimeResources: Sendable, Hashable {
    /// Private paths (the VM's runtime directory, its monitor socket directory): image label, remembered.
    public var privatePaths: [String]
    /// The swtpm socket of an emulated TPM: image label, not remembered (swtpm removes it).
    public var tpmEmulatorSocket: String?

    public init(privatePaths: [String] = [], tpmEmulatorSocket: String? = nil) {
        self.privatePaths = privatePaths
        self.tpmEmulatorSocket = tpmEmulatorSocket
    }
}

/// Builds a VM's `LabelPlan` from its definition and label, following section 8 of the reference.
///
/// | resource | label | remembered | restored |
/// |---|---|---|---|
/// | private disk (chain top) | image label | yes | recall |
/// | `<shareable/>` disk | image base verbatim (`svirt_image_t:s0`) | no | left |
/// | `<readonly/>` disk | content label (`virt_content_t:s0`) | no | left |
/// | backing file | content label | no | left |
/// | disk `<seclabel relabel='no'>` | left alone | | |
/// | disk `<seclabel><label>` | that label (whole chain) | top only | top: recall |
/// | network disk, directory disk | left alone | | |
/// | hostdev USB node, legacy-KVM PCI sysfs files | image label | yes | recall |
/// | hostdev VFIO group node | image label | no | default |
/// | input evdev node | image label | yes | recall |
/// | TPM passthrough device and cancel file | image label | no | default |
/// | TPM emulator socket | image label | no | left |
/// | chardev file, dev, pipe (`.in`/`.out` or the path), unix socket | image label or its seclabel | yes | recall |
/// | nvram | image label | yes | recall |
/// | kernel, initrd, dtb | content label | yes | recall |
/// | loader, virtiofs directory | left alone | | |
///
/// A domain with relabel off (static and none labels by default) leaves everything alone.
public struct LabelPlanner: Sendable {
    public var contexts: ContextsConfiguration
    public var host: any HostInspector

    public init(contexts: ContextsConfiguration, host: any HostInspector) {
        self.contexts = contexts
        self.host = host
    }

    /// How strictly the host is consulted.
    public enum Mode: Sendable {
        /// For labelling: a missing image or host device is an error.
        case apply
        /// For restoring: missing things become warnings, so everything else is still given back.
        case restore
    }

    public func plan(for domain: DomainDefinition, label: SecurityLabel, runtime: RuntimeResources = RuntimeResources(),
                     mode: Mode = .apply) throws -> LabelPlan {
        var b = Builder(domain: domain, label: label, contexts: contexts, mode: mode)
        try b.disks(host)
        try b.hostDevices(host)
        b.inputs()
        b.tpms(host, runtime)
        b.characterDevices(host)
        b.firmwareAndBoot()
        b.filesystems()
        b.runtime(runtime)
        return LabelPlan(domain: domain.name, label: label, entries: b.entries, warnings: b.warnings)
    }
}

/// The state of one `plan(for:)` call.
private struct Builder {
    let domain: DomainDefinition
    let label: SecurityLabel
    let contexts: ContextsConfiguration
    let mode: LabelPlanner.Mode
    var entries: [LabelPlan.Entry] = []
    var warnings: [String] = []

    init(domain: DomainDefinition, label: SecurityLabel, contexts: ContextsConfiguration, mode: LabelPlanner.Mode) {
        self.domain = domain
        self.label = label
        self.contexts = contexts
        self.mode = mode
    }

    /// Domain relabel off: every resource is listed, none is touched.
    var relabel: Bool { label.relabel }
    var offNote: String { "relabel='no' on the domain: svirt leaves every resource as it is" }

    mutating func add(_ kind: LabelPlan.Kind, _ resource: String, _ path: String, _ context: SecurityContext?,
                      remember: Bool, restore: LabelPlan.RestoreRule, access: LabelPlan.Access, device: Bool = false,
                      note: String? = nil) {
        if !relabel {
            entries.append(LabelPlan.Entry(kind: kind, resource: resource, path: path, context: nil, remember: false,
                                           restore: .leave, access: access, isDeviceGrant: device, note: note ?? offNote))
            return
        }
        entries.append(LabelPlan.Entry(kind: kind, resource: resource, path: path, context: context,
                                       remember: context == nil ? false : remember,
                                       restore: context == nil ? .leave : restore, access: access, isDeviceGrant: device,
                                       note: note))
    }

    /// Records a problem: an error when labelling, a warning when restoring.
    mutating func problem(_ error: SVirtError) throws {
        if mode == .apply { throw error }
        warnings.append(error.message)
    }

    // MARK: Disks (rows 1 and 9, section 8.1)

    mutating func disks(_ host: any HostInspector) throws {
        for (i, disk) in domain.disks.enumerated() {
            let name = disk.displayName(index: i)
            let access: LabelPlan.Access = disk.readOnly ? .read : .readWrite
            if disk.type == .network {
                add(.disk, name, disk.network?.displayName ?? "network", nil, remember: false, restore: .leave,
                    access: access, note: "network disk: nothing on this host to label")
                continue
            }
            guard let path = disk.path else { continue }  // an empty cdrom or floppy
            if disk.type == .dir {
                warnings.append("\(name): \(path) is a directory; svirt does not relabel directory trees, so label it "
                                + "yourself if the VM needs it")
                add(.disk, name, path, nil, remember: false, restore: .leave, access: access,
                    note: "directory disk: svirt does not relabel directory trees")
                continue
            }
            let seclabel = disk.seclabels.forModel("selinux")
            if let s = seclabel, !s.relabel {
                add(.disk, name, path, nil, remember: false, restore: .leave, access: access,
                    note: "<seclabel relabel='no'>: left as it is")
                continue
            }
            let override = seclabel?.selinuxLabel
            let context: SecurityContext
            var restore: LabelPlan.RestoreRule = .recall
            var remember = true
            if let override {
                context = override
                remember = !disk.readOnly && !disk.shareable
            } else if disk.shareable {
                context = contexts.imageBase.context
                remember = false
            } else if disk.readOnly {
                context = contexts.contentLabel.context
                remember = false
            } else {
                context = label.image
            }
            if !remember { restore = .leave }
            // labelskip (live XML): labelling was skipped at start, so restore only when there is a chain.
            let chain = try backingChain(disk, path: path, name: name, host)
            if seclabel?.labelSkip == true, chain.isEmpty { restore = .leave }
            add(.disk, name, path, context, remember: remember, restore: restore, access: access,
                note: disk.shareable ? "shareable: any VM may use it" : disk.readOnly ? "read-only: any VM may read it" : nil)
            for (depth, b) in chain.enumerated() {
                let resource = "\(name) backing #\(depth + 1)"
                guard let bp = b.path else {
                    add(.backingImage, resource, b.network?.displayName ?? "network", nil, remember: false, restore: .leave,
                        access: .read, note: "network backing image: nothing on this host to label")
                    continue
                }
                add(.backingImage, resource, bp, override ?? contexts.contentLabel.context, remember: false,
                    restore: .leave, access: .read, note: "backing image: shared read-only content")
            }
        }
    }

    mutating func backingChain(_ disk: Disk, path: String, name: String, _ host: any HostInspector) throws -> [Disk.BackingImage] {
        switch disk.backingStore {
        case .none: return []
        case .chain(let c): return c
        case .unspecified:
            guard disk.format == .qcow2 else { return [] }
            do {
                return try BackingChain.resolve(top: path, format: disk.format, reader: host, disk: name)
            } catch let e as SVirtError {
                try problem(e)
                return []
            }
        }
    }

    // MARK: Host devices (row 2, section 8.2)

    mutating func hostDevices(_ host: any HostInspector) throws {
        for h in domain.hostDevices where !h.missing {
            switch h.source {
            case .usb(let bus, let device):
                let path = "/dev/bus/usb/" + Self.pad3(bus) + "/" + Self.pad3(device)
                add(.hostDevice, h.displayName, path, label.image, remember: true, restore: .recall, access: .readWrite,
                    device: true)
            case .pci(let address, let backend):
                do {
                    switch backend {
                    case .vfio:
                        let group = try host.iommuGroup(of: address)
                        add(.hostDevice, h.displayName, "/dev/vfio/\(group)", label.image, remember: false,
                            restore: .defaultLabel, access: .readWrite, device: true,
                            note: "VFIO group node: shared by the IOMMU group, so not remembered")
                    case .kvm:
                        for f in try host.pciSysfsFiles(of: address) {
                            add(.hostDevice, h.displayName, f, label.image, remember: true, restore: .recall,
                                access: .readWrite, device: true)
                        }
                    }
                } catch let e as SVirtError {
                    try problem(e)
                }
            }
        }
    }

    static func pad3(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }

    // MARK: Inputs (row 3), TPM (row 5)

    mutating func inputs() {
        for (i, input) in domain.inputs.enumerated() {
            guard let p = input.evdev else { continue }
            add(.input, "input #\(i) (\(input.type))", p, label.image, remember: true, restore: .recall,
                access: .readWrite, device: true)
        }
    }

    mutating func tpms(_ host: any HostInspector, _ runtime: RuntimeResources) {
        for tpm in domain.tpms {
            switch tpm.backend {
            case .passthrough(let path):
                add(.tpm, "tpm passthrough", path, label.image, remember: false, restore: .defaultLabel,
                    access: .readWrite, device: true, note: "TPM device: not remembered")
                let cancel = host.tpmCancelPath(forDevice: path)
                if cancel == "/dev/null" {
                    // libvirt labels /dev/null here; svirt never relabels a node every process on the host uses.
                    add(.tpm, "tpm cancel file", cancel, nil, remember: false, restore: .leave, access: .readWrite,
                        note: "no sysfs cancel file: QEMU writes to /dev/null, which svirt never relabels")
                } else {
                    add(.tpm, "tpm cancel file", cancel, label.image, remember: false, restore: .defaultLabel,
                        access: .readWrite, device: true, note: "TPM cancel file: not remembered")
                }
            case .emulator:
                if let socket = runtime.tpmEmulatorSocket {
                    add(.tpm, "tpm emulator socket", socket, label.image, remember: false, restore: .leave,
                        access: .readWrite, note: "swtpm socket: removed by swtpm when the VM stops")
                }
            }
        }
    }

    // MARK: Character devices (row 6, section 8.3)

    mutating func characterDevices(_ host: any HostInspector) {
        let hasSerial = domain.characterDevices.contains { $0.kind == .serial }
        for c in domain.characterDevices {
            // Console 0 of an HVM guest with a serial target is serial 0 again.
            if c.kind == .console, c.index == 0, hasSerial, c.targetType == nil || c.targetType == "serial" { continue }
            guard let path = c.path else { continue }
            let seclabel = c.seclabels.forModel("selinux")
            let context = seclabel?.selinuxLabel ?? label.image
            switch c.sourceType {
            case .file, .dev:
                if let s = seclabel, !s.relabel {
                    add(.characterDevice, c.displayName, path, nil, remember: false, restore: .leave, access: .readWrite,
                        note: "<seclabel relabel='no'>: left as it is")
                } else {
                    add(.characterDevice, c.displayName, path, context, remember: true, restore: .recall, access: .readWrite)
                }
            case .unix:
                if let s = seclabel, !s.relabel {
                    add(.characterDevice, c.displayName, path, nil, remember: false, restore: .leave, access: .readWrite,
                        note: "<seclabel relabel='no'>: left as it is")
                } else if c.connects || host.exists(path) {
                    add(.characterDevice, c.displayName, path, context, remember: true, restore: .recall, access: .readWrite)
                } else {
                    add(.characterDevice, c.displayName, path, nil, remember: false, restore: .leave, access: .readWrite,
                        note: "listening socket not created yet: QEMU creates it with the VM's label")
                }
            case .pipe:
                let pair = [path + ".in", path + ".out"]
                let paths = pair.allSatisfy(host.exists) ? pair : [path]
                for p in paths {
                    if let s = seclabel, !s.relabel {
                        add(.characterDevice, c.displayName, p, nil, remember: false, restore: .leave, access: .readWrite,
                            note: "<seclabel relabel='no'>: left as it is")
                    } else {
                        add(.characterDevice, c.displayName, p, context, remember: true, restore: .recall, access: .readWrite)
                    }
                }
            case .pty, .other:
                continue
            }
        }
    }

    // MARK: NVRAM, kernel, initrd, dtb (rows 9 and 10), loader

    mutating func firmwareAndBoot() {
        let os = domain.os
        if let loader = os.loader {
            add(.loader, "loader", loader, nil, remember: false, restore: .leave, access: .read,
                note: "firmware code: shared by every guest, never relabelled")
        }
        if let nvram = os.nvram {
            add(.nvram, "nvram", nvram, label.image, remember: true, restore: .recall, access: .readWrite)
        }
        for (kind, path) in [(LabelPlan.Kind.kernel, os.kernel), (.initrd, os.initrd), (.dtb, os.dtb)] {
            guard let path else { continue }
            add(kind, kind.rawValue, path, contexts.contentLabel.context, remember: true, restore: .recall, access: .read)
        }
    }

    mutating func filesystems() {
        for (i, fs) in domain.filesystems.enumerated() {
            guard let dir = fs.sourceDirectory else { continue }
            add(.filesystem, "filesystem #\(i) (\(fs.target ?? "no tag"))", dir, nil, remember: false, restore: .leave,
                access: fs.readOnly ? .read : .readWrite,
                note: "shared directory: svirt does not relabel directory trees; label it for the VM yourself")
        }
    }

    mutating func runtime(_ runtime: RuntimeResources) {
        for p in runtime.privatePaths {
            add(.runtime, "runtime path", p, label.image, remember: true, restore: .recall, access: .readWrite)
        }
    }
}
