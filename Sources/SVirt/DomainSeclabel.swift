import SELinux

/// A domain-level `<seclabel>`: how one security model (selinux, dac) labels a VM.
///
/// The fields follow libvirt's model. Labels are kept as text because the dac model's labels are
/// `+uid:+gid`; `selinuxLabel`, `selinuxImageLabel` and `selinuxBaseLabel` give them as contexts.
public struct DomainSeclabel: Sendable, Hashable {
    /// How the label is chosen.
    public enum LabelType: String, Sendable, Hashable, CaseIterable {
        /// svirt picks a fresh level at every start (the default).
        case dynamic
        /// The label written in the XML is used as it is.
        case `static`
        /// No confinement label.
        case none
    }

    /// `selinux`, `dac` or `none`; nil when the XML gives none (then the parser fills in `selinux`).
    public var model: String?
    public var type: LabelType
    /// Whether the VM's resources are relabelled. Defaults: dynamic yes, static and none no.
    public var relabel: Bool
    /// The process label (static, or live XML).
    public var label: String?
    /// The label of the VM's private resources (live XML only).
    public var imageLabel: String?
    /// dynamic only: a context whose type is used for the process label.
    public var baseLabel: String?
    /// True when svirt made this seclabel up because the XML had none for the model.
    public var implicit: Bool

    public init(model: String?, type: LabelType, relabel: Bool, label: String? = nil, imageLabel: String? = nil,
                baseLabel: String? = nil, implicit: Bool = false) {
        self.model = model
        self.type = type
        self.relabel = relabel
        self.label = label
        self.imageLabel = imageLabel
        self.baseLabel = baseLabel
        self.implicit = implicit
    }

    /// The label as a security context (model selinux); nil when there is none or it does not parse.
    public var selinuxLabel: SecurityContext? { label.flatMap { try? SecurityContext(parsing: $0) } }
    public var selinuxImageLabel: SecurityContext? { imageLabel.flatMap { try? SecurityContext(parsing: $0) } }
    public var selinuxBaseLabel: SecurityContext? { baseLabel.flatMap { try? SecurityContext(parsing: $0) } }

    /// The longest label text accepted, as libvirt.
    public static let maxLabelLength = 4096
    /// The longest model name accepted, as libvirt.
    public static let maxModelLength = 256
}

/// A `<seclabel>` inside a disk's or character device's `<source>`: an override for one path.
public struct DeviceSeclabel: Sendable, Hashable {
    /// `selinux` or `dac`. Required: svirt refuses a device seclabel without a model rather than ignore it.
    public var model: String
    /// False (`relabel='no'`): svirt never touches this path.
    public var relabel: Bool
    /// The context to use for this path instead of the VM's image label.
    public var label: String?
    /// Live XML only: labelling was skipped when the VM started.
    public var labelSkip: Bool

    public init(model: String, relabel: Bool = true, label: String? = nil, labelSkip: Bool = false) {
        self.model = model
        self.relabel = relabel
        self.label = label
        self.labelSkip = labelSkip
    }

    /// The label as a security context (model selinux).
    public var selinuxLabel: SecurityContext? { label.flatMap { try? SecurityContext(parsing: $0) } }
}

extension Array where Element == DeviceSeclabel {
    /// The seclabel for `model`, if any.
    public func forModel(_ model: String) -> DeviceSeclabel? { first { $0.model == model } }
}
