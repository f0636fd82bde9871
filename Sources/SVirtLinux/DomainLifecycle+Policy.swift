import SELinux
import SVirt

extension DomainLifecycle {
    /// What the policy says about starting a guest with a label, where SELinux is off.
    struct TransitionDecision {
        /// The label's type is an unconfined domain.
        var unconfined: Bool
        /// The policy that decided.
        var policySource: String
        var notes: [String]
        var warnings: [String]
    }

    /// May the managing process's context transition to `process`? The kernel asks this at exec where SELinux is
    /// on; where it is off, svirt asks its policy engine, with svirt's own boolean settings applied.
    ///
    /// When the host's policy refuses and lacks a boolean that svirt's built-in sVirt policy has (Debian's policy
    /// has no `virt_transition_userdomain`), the built-in policy decides: the start is allowed when the built-in
    /// policy allows it only because of booleans the store turns on, and the refusal names those booleans
    /// otherwise. The output says which policy decided.
    func checkTransition(domain: String, to process: SecurityContext, checker: any AccessChecker) throws -> TransitionDecision {
        let manager = env.managerContext().context
        let settings = try local.booleanSettings()
        var notes: [String] = [], warnings: [String] = []
        var inspector = checker as? any PolicyInspector
        var source = inspector?.policySource ?? "the host's policy"
        var effective: any AccessChecker = checker
        if let i = inspector {
            let known = try settings.filter { try i.definesBoolean($0.key) }
            if !known.isEmpty {
                let set = try i.settingBooleans(known)
                inspector = set
                effective = set
            }
        } else if !settings.isEmpty {
            warnings.append("svirt's boolean settings (\(settings.keys.sorted().joined(separator: ", "))) were not applied: "
                            + "the policy checker in use cannot set booleans")
        }
        func check(_ c: any AccessChecker) throws -> AccessDecision {
            do {
                return try c.check(source: manager, target: process, objectClass: "process", permissions: ["transition"])
            } catch {
                throw SVirtError(.policy, "cannot decide whether \(manager) may start '\(domain)' as \(process): \(error)")
            }
        }
        var decision = try check(effective)
        if case .denied = decision, let makeBuiltIn = builtInPolicy, let host = inspector {
            let builtIn = try makeBuiltIn()
            // Booleans the built-in policy has and the host's lacks: the built-in policy decides those.
            let extra = try settings.filter { try builtIn.definesBoolean($0.key) && !(try host.definesBoolean($0.key)) }
            let inBuiltIn = try settings.filter { try builtIn.definesBoolean($0.key) }
            let withSettings = try builtIn.settingBooleans(inBuiltIn)
            let answer = try check(withSettings)
            switch answer {
            case .allowed where extra.contains(where: \.value):
                let off = try builtIn.settingBooleans(inBuiltIn.merging(extra.mapValues { _ in false }, uniquingKeysWith: { _, b in b }))
                if case .denied = try check(off) {
                    let names = extra.filter(\.value).keys.sorted()
                    notes.append("\(host.policySource) has no boolean \(names.joined(separator: ", ")); svirt decided whether "
                                 + "\(manager.type) may start \(process.type) with \(builtIn.policySource), which has it, and "
                                 + "\(names.joined(separator: ", ")) is on in svirt's boolean store")
                    decision = .allowed
                    inspector = withSettings
                    source = builtIn.policySource
                }
            case .denied(let d) where try d.kind == .boolean && d.booleans.contains(where: { !(try host.definesBoolean($0)) }):
                decision = .denied(Denial(kind: .boolean, detail: "\(host.policySource) has no such boolean", booleans: d.booleans))
                source = builtIn.policySource
            default:
                break
            }
        }
        switch decision {
        case .allowed:
            break
        case .unknown(let why):
            warnings.append("whether \(manager.type) may start '\(domain)' as \(process.type) was not checked: \(why)")
        case .denied(let d):
            var why: String
            switch d.kind {
            case .boolean:
                why = "only while the boolean\(d.booleans.count == 1 ? "" : "s") \(d.booleans.joined(separator: ", ")) "
                    + "\(d.booleans.count == 1 ? "is" : "are") on"
                    + (d.detail.isEmpty ? "" : " (\(d.detail))")
                    + "; svirt's boolean store decides where SELinux is off"
            case .typeEnforcement:
                why = "no rule allows it (\(d.detail.isEmpty ? "allow \(manager.type) \(process.type):process transition;" : d.detail))"
            case .constraint:
                why = "the MCS/MLS constraint on process transitions forbids it (the managing range must dominate the VM's level)"
            default:
                why = "\(d.kind.rawValue): \(d.detail)"
            }
            throw SVirtError(.policy, "'\(domain)' cannot start as \(process): the policy (\(source)) lets \(manager) "
                             + "start a process in \(process.type) \(d.kind == .boolean ? why : "never: " + why)")
        }
        let unconfined = try process.type == "unconfined_t" || (inspector?.isUnconfinedDomain(process.type) ?? false)
        return TransitionDecision(unconfined: unconfined, policySource: source, notes: notes, warnings: warnings)
    }
}
