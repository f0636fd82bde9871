import ArgumentParser
import Foundation
import SVirt
import SVirtLinux

/// `svirt booleans [NAME[=on|off]]`: the virt booleans, their values, and what each changes for the defined VMs.
struct BooleansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "booleans",
        abstract: "List the virt booleans with their values and what each changes for the defined VMs, or set svirt's override of one.",
        discussion: """
            Values come from the kernel (/sys/fs/selinux/booleans) where SELinux is on, and from svirt's own override \
            store where it is off; a boolean without an override has the policy's default. NAME=on|off writes the \
            override (NAME=default removes it); svirt never changes the kernel's booleans.
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: ArgumentHelp("A boolean to show, or NAME=on|off to set svirt's override (NAME=default removes it).", valueName: "NAME[=on|off]"))
    var setting: String?

    /// The name and, for a setting, the value (`.some(nil)`: back to the default).
    func parsed() throws -> (name: String, value: Bool??) {
        guard let setting else { return ("", nil) }
        let parts = setting.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw ValidationError("'\(setting)' is not a boolean name: write NAME or NAME=on|off, e.g. virt_use_execmem=on")
        }
        guard parts.count == 2 else { return (name, nil) }
        switch parts[1].lowercased() {
        case "on", "1", "true": return (name, .some(true))
        case "off", "0", "false": return (name, .some(false))
        case "default": return (name, .some(nil))
        default:
            throw ValidationError("invalid value '\(parts[1])' for \(name): use on or off (or default to remove svirt's setting)")
        }
    }

    func validate() throws { _ = try parsed() }

    func run() async throws {
        try await virsh(nil) { try await show() }
    }

    func show() async throws {
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        let registry = try env.openRegistry()
        let store = try BooleanStore(environment: env, registry: registry)
        let (name, value) = try parsed()
        if let value {
            let outcome = try store.set(name, value)
            if json { try printJSON(outcome); return }
            print(value.map { "\(name) set to \($0 ? "on" : "off") in svirt's boolean store" }
                  ?? "svirt's setting of \(name) removed: the policy's default applies")
            for n in outcome.notes { print("note: \(n)") }
            print("\(name) is now \(outcome.effective ? "on" : "off") for svirt's decisions")
            return
        }
        let all = try store.listForDomains()
        for w in all.warnings { printError("warning: \(w)") }
        var list = all.booleans
        if !name.isEmpty {
            list = list.filter { $0.name == name }
            if list.isEmpty {
                guard store.policy.booleanValue(name) != nil || store.builtIn.booleanValue(name) != nil else {
                    throw SVirtError(.configuration, "'\(name)' is not a boolean of \(store.policySource) or of svirt's built-in sVirt policy; "
                                          + "run 'svirt booleans' for the virt booleans")
                }
                throw SVirtError(.configuration, "'\(name)' is not a virt boolean (its name does not start with virt_); "
                                      + "'svirt policy info --booleans' lists every boolean")
            }
        }
        if json { try printJSON(list); return }
        print(store.selinuxEnabled
              ? "SELinux is on: the kernel's booleans decide (svirt does not change them; use setsebool -P)"
              : "SELinux is off: svirt's boolean store decides (svirt booleans NAME=on|off)")
        print("policy: \(store.policySource)")
        print("")
        print(table(["Boolean", "Value", "Default", "From", "Defined by"], list.map { b in
            [b.name, b.value ? "on" : "off", b.defaultValue ? "on" : "off", b.origin.rawValue,
             b.policy == store.policySource ? "host policy" : "built-in policy"]
        }))
        let affecting = list.filter { !$0.effects.isEmpty }
        print("")
        if affecting.isEmpty {
            print(all.domains.isEmpty ? "no VMs are defined, so no boolean changes anything for them"
                  : "none of these booleans changes anything for the defined VMs")
        }
        for b in affecting {
            print("\(b.name) (\(b.value ? "on" : "off")) affects:")
            for e in b.effects {
                let want = e.needs ? "on" : "off"
                let now = e.needs == b.value ? "allowed now"
                    : "denied now: " + (store.selinuxEnabled ? "setsebool -P \(b.name) \(want)" : "svirt booleans \(b.name)=\(want)")
                print("  \(e.summary); \(now)")
            }
        }
    }
}
