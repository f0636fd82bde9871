import SELinux
import SELinuxPolicy

extension DomainDefinition {
    /// A `<seclabel>` label that a policy rejects.
    public struct SeclabelProblem: Sendable, Hashable, CustomStringConvertible {
        /// Which element: `<seclabel model='selinux'> <label>`, `disk 'vda' <source> <seclabel> <label>`.
        public var element: String
        public var label: String
        /// The policy engine's reason.
        public var reason: String

        public var description: String { "\(element) \(label): \(reason)" }
    }

    /// Every SELinux label the definition writes (the static process label, the base label, the image label and
    /// the per-device labels) that `policy` rejects: an unknown user, role, type, sensitivity or category, a
    /// role the user may not have, a type the role may not have, a level outside the user's range. Empty when
    /// the policy accepts them all.
    public func seclabelProblems(in policy: PolicyDatabase) -> [SeclabelProblem] {
        var out: [SeclabelProblem] = []
        func check(_ text: String?, _ element: String) {
            guard let text else { return }
            let context: SecurityContext
            do {
                context = try SecurityContext(parsing: text, limits: policy.parseLimits)
            } catch let e as SELinuxError {
                out.append(SeclabelProblem(element: element, label: text, reason: e.message))
                return
            } catch {
                out.append(SeclabelProblem(element: element, label: text, reason: "\(error)"))
                return
            }
            if let p = policy.validity(of: context) {
                out.append(SeclabelProblem(element: element, label: text, reason: p.description))
            }
        }
        for s in seclabels where s.model == "selinux" {
            check(s.label, "<seclabel type='\(s.type.rawValue)' model='selinux'> <label>")
            check(s.imageLabel, "<seclabel type='\(s.type.rawValue)' model='selinux'> <imagelabel>")
            check(s.baseLabel, "<seclabel type='\(s.type.rawValue)' model='selinux'> <baselabel>")
        }
        for (i, d) in disks.enumerated() {
            for s in d.seclabels where s.model == "selinux" {
                check(s.label, "\(d.displayName(index: i)) <source> <seclabel> <label>")
            }
        }
        for c in characterDevices {
            for s in c.seclabels where s.model == "selinux" {
                check(s.label, "<\(c.kind.rawValue)> <source> <seclabel> <label>")
            }
        }
        return out
    }
}
