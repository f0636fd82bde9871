import SELinux
/// svirt's record of a path's original label, kept in extended attributes on the path itself, as libvirt's
/// remember-owner scheme does (section 7 of the reference), in svirt's own namespace:
///
/// | attribute | value |
/// |---|---|
/// | `trusted.svirt.security.<model>` | the original label (empty: the file had none) |
/// | `trusted.svirt.security.timestamp_<model>` | the host's boot time, decimal seconds since the epoch |
/// | `trusted.svirt.security.holders_<model>` | the VMs that use the path, one name per line |
/// | `trusted.svirt.security.ref_<model>` | how many VMs use it, decimal (libvirt's refcount) |
///
/// The scheme does not care what a label is: `selinux` records contexts, `dac` records `+uid:+gid` owners.
///
/// **Crash safety.** Every change is one attribute write, in an order that keeps the record meaningful after a
/// crash between any two writes:
/// - a first user writes the original, the timestamp, the holders, then the refcount, and only then changes
///   the label. A record missing any of those (a *partial* record) therefore means the label was never changed,
///   and restore removes the leftovers and leaves the label alone;
/// - a later user adds itself to the holders before raising the refcount; the holders list is the truth;
/// - the last user to leave sets the original label back first, then removes the refcount (which makes the
///   record partial at once), the holders, the timestamp and the original.
/// Running restore again after a crash at any point finishes the job.
public struct RememberedLabels: Sendable {
    public let model: String
    public let labelAttribute: String
    public let refAttribute: String
    public let timestampAttribute: String
    public let holdersAttribute: String
    /// How far a recorded boot time may be from the current one and still count as this boot, in seconds. The
    /// kernel's boot time moves when the clock is stepped.
    public var bootTimeTolerance: Int

    public init(model: String, namespace: String = "trusted.svirt.security", bootTimeTolerance: Int = 60) {
        self.model = model
        labelAttribute = "\(namespace).\(model)"
        refAttribute = "\(namespace).ref_\(model)"
        timestampAttribute = "\(namespace).timestamp_\(model)"
        holdersAttribute = "\(namespace).holders_\(model)"
        self.bootTimeTolerance = bootTimeTolerance
    }

    /// The record as found on a file.
    public struct Record: Sendable, Hashable {
        /// The original label; nil when the file had none.
        public var original: String?
        public var timestamp: Int
        public var holders: [String]?
        public var count: Int
    }

    /// What reading a record gave.
    public enum Found: Sendable, Hashable {
        case none
        /// Some attributes of an unfinished record.
        case partial
        /// A record from another boot.
        case stale(recordedBoot: String)
        case valid(Record)
    }

    /// What `remember` did.
    public enum Remembered: Sendable, Hashable {
        /// This holder is the first: the original was recorded.
        case first
        /// Others hold the path already; the record now counts this holder too.
        case joined(Record)
        /// The filesystem keeps no such attributes; nothing was recorded.
        case unsupported
    }

    /// What `recall` did.
    public enum Recalled: Sendable, Hashable {
        /// This was the last holder: set this original back, then call `forget`. A nil original means the
        /// file had no label (restore the default).
        case restore(original: String?)
        /// Others still use the path; the record now counts `remaining`.
        case stillInUse(remaining: [String]?, count: Int)
        /// The record does not count this holder.
        case notHolder(holders: [String]?)
        case noRecord
        /// A partial record was found and removed: the label was never changed.
        case partialRemoved
        /// A record from another boot was found and removed.
        case staleRemoved(recordedBoot: String)
        case unsupported
    }

    // MARK: Reading

    public func read(_ file: any LabeledFile, bootTime: Int) throws -> Found {
        let label = try file.attribute(labelAttribute)
        let stamp = try file.attribute(timestampAttribute)
        let ref = try file.attribute(refAttribute)
        let holders = try file.attribute(holdersAttribute)
        if label == nil, stamp == nil, ref == nil, holders == nil { return .none }
        guard let label, let stamp, let ref else { return .partial }
        let stampText = text(stamp)
        guard let t = Int(stampText) else { return .stale(recordedBoot: stampText) }
        let (diff, overflow) = t.subtractingReportingOverflow(bootTime)
        guard !overflow, diff.magnitude <= UInt(bootTimeTolerance) else { return .stale(recordedBoot: stampText) }
        let refText = text(ref)
        guard let count = Int(refText), count >= 0 else {
            throw SVirtError(.labeling, "malformed refcount '\(refText)' in \(refAttribute) on \(file.path); "
                             + "remove svirt's records with 'setfattr -x \(refAttribute) \(file.path)' and restore the label by hand")
        }
        let original = text(label)
        if !original.isEmpty, let why = problem(with: original) {
            let shown = String(original.unicodeScalars.prefix(120).map { $0.properties.isWhitespace && $0 != " " || $0.value < 0x20
                ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())
            throw SVirtError(.labeling, "the original label svirt remembered in \(labelAttribute) on \(file.path) is '\(shown)', "
                             + "\(why): it was changed by something other than svirt, so svirt will not set it, and the file "
                             + "keeps the label it has. Give it its label by hand (restorecon \(file.path), or chcon), then "
                             + "remove svirt's records: setfattr -x \(refAttribute) \(file.path); setfattr -x \(labelAttribute) "
                             + "\(file.path); setfattr -x \(timestampAttribute) \(file.path); setfattr -x \(holdersAttribute) \(file.path)")
        }
        return .valid(Record(original: original.isEmpty ? nil : original, timestamp: t,
                             holders: holders.map { text($0).split(separator: "\n").map(String.init) }, count: count))
    }

    /// Why a remembered original is not one this model records; nil when it could be. An SELinux original must be
    /// a context (a hand-edited record must never become a file's label).
    func problem(with original: String) -> String? {
        switch model {
        case "selinux": return (try? SecurityContext(parsing: original)) == nil ? "which is not a valid SELinux context" : nil
        default: return nil
        }
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }

    // MARK: Writing

    /// Records `original` (the label the file has now; nil when it has none) for `holder`.
    public func remember(original: String?, holder: String, on file: any LabeledFile, bootTime: Int) throws -> Remembered {
        let found: Found
        do {
            found = try read(file, bootTime: bootTime)
        } catch let e as SVirtError where e.code == .unsupported {
            return .unsupported
        }
        switch found {
        case .valid(var r):
            var holders = r.holders ?? []
            if r.holders != nil, holders.contains(holder) { return .joined(r) }
            holders.append(holder)
            if r.holders != nil { try file.setAttribute(holdersAttribute, encode(holders)) }
            r.count = r.holders != nil ? holders.count : r.count + 1
            try file.setAttribute(refAttribute, Array(String(r.count).utf8))
            r.holders = r.holders != nil ? holders : nil
            return .joined(r)
        case .partial, .stale:
            try forget(file)
        case .none:
            break
        }
        do {
            try file.setAttribute(labelAttribute, Array((original ?? "").utf8))
            try file.setAttribute(timestampAttribute, Array(String(bootTime).utf8))
            try file.setAttribute(holdersAttribute, encode([holder]))
            try file.setAttribute(refAttribute, Array("1".utf8))
        } catch let e as SVirtError where e.code == .unsupported {
            try? forget(file)
            return .unsupported
        }
        return .first
    }

    /// Takes `holder` off the record. See `Recalled` for what the caller does next.
    public func recall(holder: String, on file: any LabeledFile, bootTime: Int) throws -> Recalled {
        let found: Found
        do {
            found = try read(file, bootTime: bootTime)
        } catch let e as SVirtError where e.code == .unsupported {
            return .unsupported
        }
        switch found {
        case .none:
            return .noRecord
        case .partial:
            try forget(file)
            return .partialRemoved
        case .stale(let boot):
            try forget(file)
            return .staleRemoved(recordedBoot: boot)
        case .valid(let r):
            if var holders = r.holders {
                guard let at = holders.firstIndex(of: holder) else { return .notHolder(holders: holders) }
                holders.remove(at: at)
                if holders.isEmpty { return .restore(original: r.original) }
                try file.setAttribute(holdersAttribute, encode(holders))
                try file.setAttribute(refAttribute, Array(String(holders.count).utf8))
                return .stillInUse(remaining: holders, count: holders.count)
            }
            // A record without holders (written by a refcount-only tool): count down.
            if r.count <= 1 { return .restore(original: r.original) }
            try file.setAttribute(refAttribute, Array(String(r.count - 1).utf8))
            return .stillInUse(remaining: nil, count: r.count - 1)
        }
    }

    /// Removes the record: the refcount first, so that what is left is a partial record at every step.
    public func forget(_ file: any LabeledFile) throws {
        try file.removeAttribute(refAttribute)
        try file.removeAttribute(holdersAttribute)
        try file.removeAttribute(timestampAttribute)
        try file.removeAttribute(labelAttribute)
    }

    func encode(_ holders: [String]) -> [UInt8] { Array(holders.joined(separator: "\n").utf8) }
}
