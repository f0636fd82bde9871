import SELinux
@testable import SVirt

/// Domain XML for tests: the chapter's VMs and variations.
enum Fixtures {
    static func domain(name: String, type: String = "kvm", devices: String = "", seclabel: String = "",
                       os: String = "<type arch='x86_64' machine='pc'>hvm</type>") -> String {
        """
        <domain type='\(type)'>
          <name>\(name)</name>
          <memory unit='MiB'>256</memory>
          <vcpu>1</vcpu>
          <os>\(os)</os>
          <devices>
            \(devices)
          </devices>
          \(seclabel)
        </domain>
        """
    }

    static func fileDisk(_ path: String, target: String = "vda", format: String = "raw", extra: String = "",
                         source: String = "") -> String {
        """
        <disk type='file' device='disk'>
          <driver name='qemu' type='\(format)'/>
          <source file='\(path)'>\(source)</source>
          <target dev='\(target)' bus='virtio'/>
          \(extra)
        </disk>
        """
    }

    static func parse(_ xml: String, mode: DomainDefinition.ParseMode = .inactive) throws -> DomainDefinition {
        try DomainDefinition(xml: xml, mode: mode)
    }

    /// The error message a definition gives, or nil when it parses.
    static func error(_ xml: String, mode: DomainDefinition.ParseMode = .inactive) -> String? {
        do {
            _ = try DomainDefinition(xml: xml, mode: mode)
            return nil
        } catch let e as SVirtError {
            return e.message
        } catch {
            return "unexpected \(error)"
        }
    }

    static func context(_ s: String) -> SecurityContext {
        // Test literals are valid contexts.
        (try? SecurityContext(parsing: s)) ?? SecurityContext(user: "invalid", role: "invalid", type: "invalid")
    }

    static func level(_ s: String) -> SecurityLevel {
        (try? SecurityLevel(parsing: s)) ?? SecurityLevel(sensitivity: 99)
    }

    /// The host contexts of the Debian policy: one line in virtual_domain_context, so no TCG type.
    static let debianContexts: ContextsConfiguration = {
        var c = ContextsConfiguration.builtIn(reason: "test")
        c.tcgProcessBase = nil
        c.processBase.source = .file(path: "/etc/selinux/default/contexts/virtual_domain_context", line: 1)
        return c
    }()

    /// Contexts with a TCG line, as Fedora's policy has.
    static let fedoraContexts = ContextsConfiguration.builtIn(reason: "test")

    static let manager = context("system_u:system_r:virtd_t:s0-s0:c0.c1023")

    static func generator(_ contexts: ContextsConfiguration = debianContexts,
                          manager: SecurityContext = manager) throws -> LabelGenerator {
        LabelGenerator(contexts: contexts, manager: manager, pool: try CategoryPool(level: level("s0:c0.c1023")))
    }
}
