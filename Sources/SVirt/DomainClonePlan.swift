/// What `svirt clone` makes of a domain, as virt-clone does: the clone gets a new name, a new UUID and new MAC
/// addresses; each private disk (and UEFI variable store) gets a copy; `<shareable/>` and `<readonly/>` disks,
/// empty drives and network disks keep pointing at the same source, so a shareable image stays one image used
/// by both VMs (the chapter's Shareable_VM-clone).
///
/// A VM with a static SELinux label is refused unless forced: the copy of its image would carry the same label,
/// and two VMs with one static label are not kept apart (one image per static label).
///
/// `plan` only computes: it copies nothing. The caller copies `copies` and then defines `clone`.
public struct DomainClonePlan: Sendable, Hashable {
    /// A file the clone gets a copy of.
    public struct Copy: Sendable, Hashable {
        /// How messages name it: `disk 'vda'`, `<nvram>`.
        public var what: String
        public var source: String
        public var destination: String
        /// A block device copied into a file: the clone's disk becomes `type='file'`.
        public var fromBlockDevice: Bool
    }

    /// A disk the clone shares with the original, and why.
    public struct Kept: Sendable, Hashable {
        public var what: String
        /// The shared path (nil for an empty drive), or a network source's name.
        public var source: String?
        public var reason: String
    }

    public var original: DomainDefinition
    public var clone: DomainDefinition
    public var copies: [Copy]
    public var kept: [Kept]
    /// Old and new MAC addresses, in interface order.
    public var macs: [(old: String, new: String)]
    public var warnings: [String]

    public static func == (a: DomainClonePlan, b: DomainClonePlan) -> Bool {
        a.original == b.original && a.clone == b.clone && a.copies == b.copies && a.kept == b.kept
            && a.macs.map(\.new) == b.macs.map(\.new) && a.warnings == b.warnings
    }

    public func hash(into h: inout Hasher) {
        h.combine(clone)
        h.combine(copies)
    }

    /// Plans the clone of `original` as `newName`.
    ///
    /// - Parameters:
    ///   - files: the copies' paths (`--file`), one per copied file in the order of the disks (then `<nvram>`);
    ///     empty: each copy goes next to its original (the original name replaced by the new one, else `-clone`
    ///     added).
    ///   - force: clone a VM with a static label anyway.
    ///   - takenMACs: MAC addresses other domains use (lower case); new ones avoid them.
    ///   - exists: whether a path exists (no copy overwrites a file).
    public static func plan(_ original: DomainDefinition, newName: String, files: [String] = [], force: Bool = false,
                            takenMACs: Set<String> = [], exists: (String) -> Bool) throws -> DomainClonePlan {
        try DomainXMLReader.checkName(newName)
        guard newName != original.name else {
            throw SVirtError(.alreadyExists, "the clone needs a name other than '\(original.name)'")
        }
        var warnings: [String] = []
        let sl = original.selinuxSeclabel
        if sl.type == .static {
            let label = sl.label ?? "(no label)"
            guard force else {
                throw SVirtError(.labeling, "'\(original.name)' has a static SELinux label (\(label)): one image per static label: "
                                 + "a clone would run with the same label on a copy of the image, so the two VMs would share "
                                 + "one level and each could open the other's image. Clone it with --force, then give the clone a label of its "
                                 + "own: svirt edit --set-seclabel 'static:CONTEXT' \(newName), or --set-seclabel dynamic")
            }
            warnings.append("'\(newName)' keeps the static label \(label) of '\(original.name)': give it its own label "
                            + "(svirt edit --set-seclabel) before both run, since one static label keeps no VM apart from the other")
        }
        for f in files {
            try DomainXMLReader.checkPath(f, "--file \(f)")
        }

        var tree = original.xml
        var root = tree.root
        var chosen: Set<String> = []
        var remainingFiles = files[...]
        var copies: [Copy] = []
        var kept: [Kept] = []

        func destination(for source: String, what: String) throws -> String {
            if let f = remainingFiles.first {
                remainingFiles = remainingFiles.dropFirst()
                guard f != source else {
                    throw SVirtError(.alreadyExists, "--file \(f) is the source of \(what) itself; name a new file for the copy")
                }
                guard !exists(f), !chosen.contains(f) else {
                    throw SVirtError(.alreadyExists, "--file \(f) already exists (or is named twice); svirt clone never "
                                     + "overwrites a file: name a new one")
                }
                chosen.insert(f)
                return f
            }
            let p = uniquePath(clonePath(source, oldName: original.name, newName: newName)) { exists($0) || chosen.contains($0) || $0 == source }
            chosen.insert(p)
            return p
        }

        // Name and UUID.
        for (i, n) in root.children.enumerated() {
            guard case .element(var e) = n else { continue }
            switch e.name {
            case "name": e.setText(newName)
            case "uuid": e.setText(DomainXMLReader.randomUUID())
            default: continue
            }
            root.children[i] = .element(e)
        }

        // Disks (in document order, as the definition lists them) and interfaces.
        var macs: [(old: String, new: String)] = []
        var usedMACs = takenMACs
        var diskIndex = 0
        for (i, n) in root.children.enumerated() {
            guard case .element(var devices) = n, devices.name == "devices" else { continue }
            for (j, dn) in devices.children.enumerated() {
                guard case .element(var d) = dn else { continue }
                if d.name == "disk" {
                    guard diskIndex < original.disks.count else { continue }
                    let disk = original.disks[diskIndex]
                    let what = disk.displayName(index: diskIndex)
                    diskIndex += 1
                    if disk.shareable {
                        kept.append(Kept(what: what, source: disk.path, reason: "shareable: both VMs use the one image"))
                        continue
                    }
                    if disk.readOnly {
                        kept.append(Kept(what: what, source: disk.path, reason: "read-only: both VMs read the one image"))
                        continue
                    }
                    if let net = disk.network {
                        kept.append(Kept(what: what, source: net.displayName, reason: "a network disk is not copied"))
                        warnings.append("\(what) is a network disk (\(net.displayName)); the clone uses the same one")
                        continue
                    }
                    guard let path = disk.path else {
                        kept.append(Kept(what: what, source: nil, reason: "an empty drive"))
                        continue
                    }
                    switch disk.type {
                    case .file:
                        let dest = try destination(for: path, what: what)
                        copies.append(Copy(what: what, source: path, destination: dest, fromBlockDevice: false))
                        d = setSource(of: d, attribute: "file", to: dest)
                    case .block:
                        guard !remainingFiles.isEmpty else {
                            throw SVirtError(.unsupported, "\(what) of '\(original.name)' is the block device \(path); give "
                                             + "--file PATH for the file its copy goes to, or mark the disk <shareable/>")
                        }
                        let dest = try destination(for: path, what: what)
                        copies.append(Copy(what: what, source: path, destination: dest, fromBlockDevice: true))
                        d.setAttribute("type", "file")
                        d = setSource(of: d, attribute: "file", to: dest, removing: "dev")
                    case .dir, .network:
                        throw SVirtError(.unsupported, "\(what) of '\(original.name)' is a type='\(disk.type.rawValue)' disk, "
                                         + "which svirt clone cannot copy; mark it <shareable/> or <readonly/> to share it")
                    }
                    devices.children[j] = .element(d)
                } else if d.name == "interface" {
                    for (k, cn) in d.children.enumerated() {
                        guard case .element(var mac) = cn, mac.name == "mac", let old = mac[attribute: "address"] else { continue }
                        let new = randomMAC(avoiding: usedMACs)
                        usedMACs.insert(new)
                        macs.append((old, new))
                        mac.setAttribute("address", new)
                        d.children[k] = .element(mac)
                    }
                    devices.children[j] = .element(d)
                }
            }
            root.children[i] = .element(devices)
        }

        // The UEFI variable store is the guest's own, like a private disk.
        if let nvram = original.os.nvram {
            let dest = try destination(for: nvram, what: "<nvram>")
            copies.append(Copy(what: "<nvram>", source: nvram, destination: dest, fromBlockDevice: false))
            for (i, n) in root.children.enumerated() {
                guard case .element(var os) = n, os.name == "os" else { continue }
                for (k, cn) in os.children.enumerated() {
                    guard case .element(var e) = cn, e.name == "nvram" else { continue }
                    e.setText(dest)
                    os.children[k] = .element(e)
                }
                root.children[i] = .element(os)
            }
        }
        if !files.isEmpty, files.count != copies.count {
            let list = copies.map { "\($0.what) (\($0.source))" }.joined(separator: ", ")
            throw SVirtError(.invalidDomain, "\(files.count) --file given, but '\(original.name)' has \(copies.count) private "
                             + "file(s) to copy\(copies.isEmpty ? "" : ": " + list); give one --file per copied file, in this "
                             + "order, or none for paths next to the originals")
        }
        tree.root = root
        let clone = try DomainDefinition(tree: tree, mode: .inactive)
        return DomainClonePlan(original: original, clone: clone, copies: copies, kept: kept, macs: macs, warnings: warnings)
    }

    static func setSource(of disk: XMLTree.Element, attribute: String, to path: String, removing: String? = nil) -> XMLTree.Element {
        var d = disk
        for (k, cn) in d.children.enumerated() {
            guard case .element(var s) = cn, s.name == "source" else { continue }
            if let removing { s.setAttribute(removing, nil) }
            s.setAttribute(attribute, path)
            d.children[k] = .element(s)
        }
        return d
    }

    /// Where a copy goes by default: the same directory, the original domain's name in the file name replaced by
    /// the new one (`Shareable_VM.img` → `Shareable_VM-clone.img`), else `-clone` before the extension.
    public static func clonePath(_ source: String, oldName: String, newName: String) -> String {
        let (dir, base) = split(source)
        if !oldName.isEmpty, base.contains(oldName) {
            return dir + base.replacing(oldName, with: newName, maxReplacements: 1)
        }
        let (stem, ext) = splitExtension(base)
        return dir + stem + "-clone" + ext
    }

    /// `path`, or `stem-N.ext` for the first N that is not taken.
    static func uniquePath(_ path: String, taken: (String) -> Bool) -> String {
        guard taken(path) else { return path }
        let (dir, base) = split(path)
        let (stem, ext) = splitExtension(base)
        var n = 1
        while true {
            let p = "\(dir)\(stem)-\(n)\(ext)"
            if !taken(p) { return p }
            n += 1
        }
    }

    static func split(_ path: String) -> (dir: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    static func splitExtension(_ base: String) -> (stem: String, ext: String) {
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return (base, "") }
        return (String(base[..<dot]), String(base[dot...]))
    }

    /// A random MAC address with QEMU's prefix 52:54:00, not in `taken`.
    public static func randomMAC(avoiding taken: Set<String>) -> String {
        var rng = SystemRandomNumberGenerator()
        while true {
            let tail = (0..<3).map { _ -> String in
                let b = UInt8.random(in: 0...255, using: &rng)
                return (b < 16 ? "0" : "") + String(b, radix: 16)
            }
            let mac = "52:54:00:" + tail.joined(separator: ":")
            if !taken.contains(mac) { return mac }
        }
    }

    /// The MAC addresses in a domain's XML (`<interface><mac address=.../>`), lower case.
    public static func macAddresses(in domain: DomainDefinition) -> [String] {
        var out: [String] = []
        for devices in domain.xml.root.elements(named: "devices") {
            for i in devices.elements(named: "interface") {
                for m in i.elements(named: "mac") {
                    if let a = m[attribute: "address"] { out.append(a.lowercased()) }
                }
            }
        }
        return out
    }
}
