import SELinux

extension DomainDefinition {
    /// The definition with its `<seclabel model='selinux'>` replaced by `seclabel` (other models' seclabels are
    /// kept), read back as a definition so the result is checked like any other XML.
    public func settingSelinuxSeclabel(_ seclabel: DomainSeclabel) throws -> DomainDefinition {
        var s = seclabel
        s.model = "selinux"
        var labels = seclabels.filter { $0.model != "selinux" && !$0.implicit }
        labels.insert(s, at: 0)
        var tree = xml
        tree.root = Self.replacingSeclabels(in: tree.root, with: labels)
        return try DomainDefinition(tree: tree, mode: .inactive)
    }

    /// Reads `--set-seclabel` text: `static:CONTEXT`, `dynamic`, `dynamic:BASELABEL` or `none`. `relabel` is
    /// `--relabel yes|no` (nil: libvirt's default, yes for dynamic and no for static).
    public static func seclabel(spec: String, relabel: Bool?) throws -> DomainSeclabel {
        let (kind, rest): (Substring, Substring?) = {
            guard let colon = spec.firstIndex(of: ":") else { return (spec[...], nil) }
            return (spec[..<colon], spec[spec.index(after: colon)...])
        }()
        func context(_ text: Substring?, _ what: String) throws -> String {
            guard let text, !text.isEmpty else {
                throw SVirtError(.invalidDomain, "--set-seclabel '\(spec)': \(what) needs a context, e.g. "
                                 + "static:system_u:system_r:svirt_t:s0:c1022,c1023")
            }
            do {
                return try SecurityContext(parsing: String(text)).description
            } catch let e as SELinuxError {
                throw SVirtError(.invalidDomain, "--set-seclabel '\(spec)': \(e.message)")
            }
        }
        switch kind {
        case "static":
            return DomainSeclabel(model: "selinux", type: .static, relabel: relabel ?? false, label: try context(rest, "static"))
        case "dynamic":
            if relabel == false {
                throw SVirtError(.invalidDomain, "--set-seclabel dynamic with --relabel no: a dynamic label is fresh at every "
                                 + "start, so the images must be relabelled; drop --relabel no")
            }
            return DomainSeclabel(model: "selinux", type: .dynamic, relabel: true,
                                  baseLabel: rest == nil ? nil : try context(rest, "dynamic:BASELABEL"))
        case "none":
            guard rest == nil else { throw SVirtError(.invalidDomain, "--set-seclabel none takes no context") }
            return DomainSeclabel(model: "selinux", type: .none, relabel: false)
        default:
            throw SVirtError(.invalidDomain, "--set-seclabel '\(spec)': '\(kind)' is not a label type; write static:CONTEXT, "
                             + "dynamic, dynamic:BASELABEL or none")
        }
    }
}
