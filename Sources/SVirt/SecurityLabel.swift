import SELinux

/// The SELinux labels a VM runs with: its process label and the label of its private resources, which share
/// one range (the VM's MCS level).
public struct SecurityLabel: Sendable, Hashable {
    public var type: DomainSeclabel.LabelType
    /// Whether the VM's resources are relabelled.
    public var relabel: Bool
    /// The emulator's process label; nil for type none.
    public var process: SecurityContext?
    /// The label of the VM's own images and other private resources.
    public var image: SecurityContext
    /// The baselabel the process type came from, as written in the XML.
    public var baseLabel: String?
    /// The VM's range (`s0:c41,c264`): the range of both labels.
    public var range: SecurityRange
    /// The level the registry holds for this VM, when one is held (dynamic levels, and static ones with
    /// categories).
    public var reservedLevel: SecurityLevel?

    public init(type: DomainSeclabel.LabelType, relabel: Bool, process: SecurityContext?, image: SecurityContext,
                baseLabel: String? = nil, range: SecurityRange, reservedLevel: SecurityLevel? = nil) {
        self.type = type
        self.relabel = relabel
        self.process = process
        self.image = image
        self.baseLabel = baseLabel
        self.range = range
        self.reservedLevel = reservedLevel
    }

    /// The level the registry should hold for this label: dynamic labels always, static labels when their range
    /// is one level with categories (a static range such as `s0-s0:c0.c1023` or a bare `s0` isolates nothing,
    /// so it is not reserved).
    public var reservableLevel: SecurityLevel? {
        switch type {
        case .dynamic: return range.low
        case .static: return range.low == range.high && !range.low.categories.isEmpty ? range.low : nil
        case .none: return nil
        }
    }

    /// The live `<seclabel>` for this label, as `dumpxml` shows a running VM.
    public var seclabel: DomainSeclabel {
        DomainSeclabel(model: "selinux", type: type, relabel: relabel, label: process?.description,
                       imageLabel: type == .none ? nil : image.description, baseLabel: baseLabel)
    }
}
