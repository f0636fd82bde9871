import Foundation
import SELinux
import SVirt

extension DomainLifecycle {
    /// A domain as `list` and `dominfo` show it.
    public struct Status: Sendable {
        public var name: String
        public var uuid: String
        /// The domain id while it runs.
        public var id: Int?
        /// `running`, `shut off`, `starting`, `in shutdown` (virsh's words).
        public var state: String
        public var persistent: Bool
        public var running: RunningDomain?
        /// The definition's XML (persistent domains).
        public var definedXML: String?
        /// The process label the kernel reports (SELinux on), else the label svirt started it with.
        public var processLabel: String?
        /// Where `processLabel` came from: `kernel` or `svirt`.
        public var processLabelSource: String?

        public var isActive: Bool { running != nil }
    }

    static func stateName(_ s: RunningDomain.State) -> String {
        switch s {
        case .running: return "running"
        case .starting: return "starting"
        case .stopping: return "in shutdown"
        }
    }

    func status(defined: DomainRecord?, running: RunningDomain?) -> Status? {
        guard let name = defined?.name ?? running?.name, let uuid = running?.uuid ?? defined?.uuid else { return nil }
        var s = Status(name: name, uuid: uuid, id: running?.id, state: running.map { Self.stateName($0.state) } ?? "shut off",
                       persistent: defined != nil, running: running, definedXML: defined?.xml)
        if let r = running, let p = r.process {
            if let k = env.proc.context(of: p.pid) {
                s.processLabel = k
                s.processLabelSource = "kernel"
            } else if let l = r.label {
                s.processLabel = l
                s.processLabelSource = "svirt"
            }
        }
        return s
    }

    /// Every domain, running ones first by id, then the shut-off ones by name (`all`); only active ones otherwise.
    public func statuses(all: Bool) throws -> [Status] {
        let running = try local.runningDomains()
        let defined = try local.definedDomains()
        var byName = Dictionary(defined.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Status] = []
        for r in running.sorted(by: { ($0.id, $0.name) < ($1.id, $1.name) }) {
            if let s = status(defined: byName.removeValue(forKey: r.name), running: r) { out.append(s) }
        }
        if all {
            for d in defined where byName[d.name] != nil {
                if let s = status(defined: d, running: nil) { out.append(s) }
            }
        }
        return out
    }

    /// One domain by name (or id, or UUID, as virsh accepts); `.notFound` ("failed to get domain") otherwise.
    public func status(of key: String) throws -> Status {
        if let r = try local.runningDomain(named: key) {
            if let s = status(defined: try local.definedDomain(named: key), running: r) { return s }
        }
        if let d = try local.definedDomain(named: key), let s = status(defined: d, running: nil) { return s }
        let running = try local.runningDomains()
        if let id = Int(key), let r = running.first(where: { $0.id == id }),
           let s = status(defined: try local.definedDomain(named: r.name), running: r) { return s }
        let lower = key.lowercased()
        if let r = running.first(where: { $0.uuid == lower }),
           let s = status(defined: try local.definedDomain(named: r.name), running: r) { return s }
        if let d = try local.definedDomain(uuid: lower), let s = status(defined: d, running: nil) { return s }
        throw SVirtError(.notFound, "failed to get domain '\(key)'")
    }
}
