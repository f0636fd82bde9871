import SELinux

/// A type enforcement rule of the access vector table, as sesearch lists it.
public struct TERule: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case allow, auditallow, dontaudit
        case typeTransition = "type_transition", typeMember = "type_member", typeChange = "type_change"
        case allowxperm, auditallowxperm, dontauditxperm
    }
    public var kind: Kind
    public var source: String
    public var target: String
    public var tclass: String
    /// The permissions (access vector rules), empty for type rules.
    public var permissions: [String]
    /// The new type (type rules).
    public var defaultType: String?
    /// The conditional expression that guards the rule, in policy text (`virt_use_execmem`), and the branch.
    public var condition: String?
    public var conditionBranch: Bool?
}

/// Counts per kind, as seinfo prints them.
public struct PolicyStatistics: Sendable, Hashable, Codable {
    public var classes = 0, permissions = 0, commons = 0
    public var sensitivities = 0, categories = 0
    public var types = 0, attributes = 0, typeAliases = 0
    public var users = 0, roles = 0, booleans = 0, conditionals = 0
    public var allow = 0, auditallow = 0, dontaudit = 0
    public var typeTransitions = 0, typeChanges = 0, typeMembers = 0
    public var allowxperm = 0, auditallowxperm = 0, dontauditxperm = 0
    public var rangeTransitions = 0, roleAllows = 0, roleTransitions = 0, filenameTransitions = 0
    public var constraints = 0, validatetrans = 0, mlsConstraints = 0, mlsValidatetrans = 0
    public var permissiveTypes = 0, policyCapabilities = 0, typeBounds = 0, defaults = 0
    public var initialSIDs = 0, fsUse = 0, genfscon = 0, portcon = 0, netifcon = 0, nodecon = 0
    public var ibpkeycon = 0, ibendportcon = 0
    public var pirqcon = 0, ioportcon = 0, iomemcon = 0, pcidevicecon = 0, devicetreecon = 0
}

extension PolicyDatabase {
    /// Every class, by value.
    public var classes: [PolicyClass] { storage.classes.map { publicClass($0.value) } }

    /// Every type and attribute, by value.
    public var types: [PolicyType] {
        var aliases: [UInt32: [String]] = [:]
        for a in storage.typeAliases { aliases[a.value, default: []].append(a.name) }
        return storage.types.map {
            PolicyType(name: $0.name, value: Int($0.value), isAttribute: $0.isAttribute, aliases: aliases[$0.value] ?? [],
                       bounds: $0.bounds == 0 ? nil : storage.typeName($0.bounds))
        }
    }

    /// A type or attribute by name (aliases resolve to their type).
    public func type(named name: String) -> PolicyType? {
        guard let v = storage.typeByName[name] else { return nil }
        return types[Int(v) - 1]
    }

    /// The types an attribute holds (for a type: itself).
    public func members(of name: String) -> [String] {
        guard let v = storage.typeByName[name] else { return [] }
        let idx = storage.index
        if idx.memberOffsets[Int(v)] < 0 { return storage.types[Int(v) - 1].isAttribute ? [] : [storage.typeName(v)] }
        var out: [String] = []
        for t in 1...storage.types.count where idx.covers(UInt16(v), UInt32(t)) && !storage.types[t - 1].isAttribute {
            out.append(storage.typeName(UInt32(t)))
        }
        return out
    }

    /// The attributes of a type (its `type_attr_map`, without itself).
    public func attributes(of name: String) -> [String] {
        guard let v = storage.typeByName[name] else { return [] }
        return storage.typeAttributeMap[Int(v) - 1].filter { $0 != Int(v) - 1 }.map { storage.typeName(UInt32($0 + 1)) }
    }

    public var roles: [PolicyRole] {
        storage.roles.map { r in
            PolicyRole(name: r.name, value: Int(r.value), types: r.types.map { storage.typeName(UInt32($0 + 1)) },
                       dominates: r.dominates.map { storage.roleName(UInt32($0 + 1)) })
        }
    }

    public var users: [PolicyUser] {
        storage.users.map { u in
            var range: SecurityRange?
            var level: SecurityLevel?
            if storage.mls {
                let lo = securityLevel(u.range.low), hi = securityLevel(u.range.high)
                range = (try? SecurityRange(low: lo, high: hi)) ?? SecurityRange(lo)
                level = securityLevel(u.defaultLevel)
            }
            return PolicyUser(name: u.name, value: Int(u.value), roles: u.roles.map { storage.roleName(UInt32($0 + 1)) },
                              range: range, defaultLevel: level)
        }
    }

    public var booleans: [PolicyBoolean] {
        storage.booleans.map { PolicyBoolean(name: $0.name, value: Int($0.value), defaultValue: $0.state) }
    }

    public var sensitivities: [PolicySensitivity] {
        storage.sensitivityByValue.enumerated().map { i, idx in
            let s = storage.sensitivities[idx]
            let aliases = storage.sensitivities.filter { $0.isAlias && $0.level.sens == UInt32(i + 1) }.map(\.name)
            var l = s.level
            l.sens = UInt32(i + 1)
            return PolicySensitivity(name: s.name, value: i + 1, aliases: aliases, allowedCategories: levelText(l))
        }
    }

    public var categories: [PolicyCategory] {
        storage.categoryByValue.enumerated().map { i, idx in
            let aliases = storage.categories.filter { $0.isAlias && $0.value == UInt32(i + 1) }.map(\.name)
            return PolicyCategory(name: storage.categories[idx].name, value: i + 1, aliases: aliases)
        }
    }

    /// The policy capabilities by name (`network_peer_controls`, ...), or `polcapN` for unknown numbers.
    public var policyCapabilities: [String] {
        let names = ["network_peer_controls", "open_perms", "extended_socket_class", "always_check_network",
                     "cgroup_seclabel", "nnp_nosuid_transition", "genfs_seclabel_symlinks", "ioctl_skip_cloexec",
                     "userspace_initial_context", "netlink_xperm", "netif_wildcard", "genfs_seclabel_wildcard"]
        return storage.policyCapabilities.map { $0 < names.count ? names[$0] : "polcap\($0)" }
    }

    /// The permissive types.
    public var permissiveTypes: [String] {
        storage.permissiveTypes.filter { $0 >= 1 && $0 <= storage.types.count }.map { storage.typeName(UInt32($0)) }
    }

    /// A conditional expression in policy text.
    func conditionText(_ node: Int) -> String {
        var stack: [String] = []
        for item in storage.condNodes[node].expr {
            switch item.kind {
            case 1: stack.append(storage.booleanName(item.boolean))
            case 2: stack.append("! " + (stack.popLast() ?? "?"))
            default:
                let b = stack.popLast() ?? "?", a = stack.popLast() ?? "?"
                let op = ["", "", "", "||", "&&", "^", "==", "!="][Int(min(item.kind, 7))]
                stack.append("(\(a) \(op) \(b))")
            }
        }
        return stack.last ?? ""
    }

    /// Every rule of the access vector table, unconditional first, then conditional.
    public var rules: [TERule] {
        var out: [TERule] = []
        out.reserveCapacity(storage.avtab.count + storage.condEntries.count)
        func make(_ e: AVEntry, _ cond: String?, _ branch: Bool?) -> TERule {
            let kind: TERule.Kind
            switch e.specified {
            case AVSpec.allowed: kind = .allow
            case AVSpec.auditAllow: kind = .auditallow
            case AVSpec.auditDeny: kind = .dontaudit
            case AVSpec.transition: kind = .typeTransition
            case AVSpec.member: kind = .typeMember
            case AVSpec.change: kind = .typeChange
            case AVSpec.xpermsAllowed: kind = .allowxperm
            case AVSpec.xpermsAuditAllow: kind = .auditallowxperm
            default: kind = .dontauditxperm
            }
            let data = kind == .dontaudit ? ~e.data : e.data
            let perms = e.specified & AVSpec.av != 0 ? storage.permissionNames(UInt32(e.tclass), data) : []
            return TERule(kind: kind, source: storage.typeName(UInt32(e.source)), target: storage.typeName(UInt32(e.target)),
                          tclass: storage.className(UInt32(e.tclass)), permissions: perms,
                          defaultType: e.specified & AVSpec.type != 0 ? storage.typeName(e.data) : nil,
                          condition: cond, conditionBranch: branch)
        }
        for e in storage.avtab { out.append(make(e, nil, nil)) }
        var texts: [String] = []
        for n in storage.condNodes.indices { texts.append(conditionText(n)) }
        for (i, e) in storage.condEntries.enumerated() {
            out.append(make(e, texts[Int(storage.condEntryNode[i])], storage.condEntryBranch[i]))
        }
        return out
    }

    /// The object contexts: initial SIDs, fs_use, genfscon, ports, netifs, nodes, InfiniBand, and for a Xen
    /// policy pirq, ioport, iomem, pcidevice and devicetree.
    public var objectContexts: [ObjectContext] {
        var out: [ObjectContext] = []
        for o in storage.objectContexts {
            let ctx = securityContext(o.contexts[0])
            if storage.target == .xen {
                switch o.kind {
                case 0: out.append(.initialSID(sid: Int(o.sid), name: InitialSIDNames.name(o.sid, target: .xen), context: ctx))
                case 1: out.append(.xenPIRQ(irq: Int(o.low), context: ctx))
                case 2: out.append(.xenIOPort(low: Int(o.low), high: Int(o.high), context: ctx))
                case 3: out.append(.xenIOMemory(low: o.low, high: o.high, context: ctx))
                case 4: out.append(.xenPCIDevice(device: Int(o.low), context: ctx))
                default: out.append(.xenDeviceTree(path: o.name, context: ctx))
                }
                continue
            }
            switch o.kind {
            case 0: out.append(.initialSID(sid: Int(o.sid), name: InitialSIDNames.name(o.sid, target: .selinux), context: ctx))
            case 1: out.append(.fileSystem(name: o.name, context: ctx, fileContext: securityContext(o.contexts[1])))
            case 2: out.append(.port(protocol: Int(o.proto), low: Int(o.low), high: Int(o.high), context: ctx))
            case 3: out.append(.networkInterface(name: o.name, context: ctx, messageContext: securityContext(o.contexts[1])))
            case 4: out.append(.node(address: o.address.map(String.init).joined(separator: "."),
                                     mask: o.mask.map(String.init).joined(separator: "."), context: ctx))
            case 5: out.append(.fsUse(behavior: Int(o.behavior), fileSystem: o.name, context: ctx))
            case 6: out.append(.node(address: ipv6(o.address), mask: ipv6(o.mask), context: ctx))
            case 7: out.append(.infinibandPartitionKey(subnetPrefix: ipv6(o.address + [UInt8](repeating: 0, count: 8)),
                                                       low: Int(o.low), high: Int(o.high), context: ctx))
            default: out.append(.infinibandEndPort(device: o.name, port: Int(o.low), context: ctx))
            }
        }
        for g in storage.genfs {
            out.append(.genfs(fileSystem: g.fstype, path: g.name, tclass: g.tclass == 0 ? nil : storage.className(g.tclass),
                              context: securityContext(g.contexts[0])))
        }
        return out
    }

    func ipv6(_ b: [UInt8]) -> String {
        stride(from: 0, to: min(16, b.count), by: 2).map { String(UInt16(b[$0]) << 8 | UInt16(b[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    /// Counts per kind, like seinfo.
    public var statistics: PolicyStatistics {
        var s = PolicyStatistics()
        s.classes = storage.classes.count
        s.commons = storage.commons.count
        s.permissions = storage.classes.reduce(0) { $0 + $1.ownPermissionCount } + storage.commons.reduce(0) {
            $0 + $1.permissions.compactMap { $0 }.count
        }
        s.sensitivities = storage.sensitivityByValue.count
        s.categories = storage.categoryByValue.count
        s.attributes = storage.types.filter(\.isAttribute).count
        s.types = storage.types.count - s.attributes
        s.typeAliases = storage.typeAliases.count
        s.users = storage.users.count
        s.roles = storage.roles.count
        s.booleans = storage.booleans.count
        s.conditionals = storage.condNodes.count
        for e in storage.avtab + storage.condEntries {
            switch e.specified {
            case AVSpec.allowed: s.allow += 1
            case AVSpec.auditAllow: s.auditallow += 1
            case AVSpec.auditDeny: s.dontaudit += 1
            case AVSpec.transition: s.typeTransitions += 1
            case AVSpec.member: s.typeMembers += 1
            case AVSpec.change: s.typeChanges += 1
            case AVSpec.xpermsAllowed: s.allowxperm += 1
            case AVSpec.xpermsAuditAllow: s.auditallowxperm += 1
            default: s.dontauditxperm += 1
            }
        }
        s.rangeTransitions = storage.rangeTransitions.count
        s.roleAllows = storage.roleAllows.count
        s.roleTransitions = storage.roleTransitions.count
        s.filenameTransitions = storage.filenameTransitions.count
        for c in storage.classes {
            for con in c.constraints { if isMLS(con) { s.mlsConstraints += 1 } else { s.constraints += 1 } }
            for con in c.validatetrans { if isMLS(con) { s.mlsValidatetrans += 1 } else { s.validatetrans += 1 } }
            if c.defaultUser != 0 || c.defaultRole != 0 || c.defaultRange != 0 || c.defaultType != 0 { s.defaults += 1 }
        }
        s.permissiveTypes = permissiveTypes.count
        s.policyCapabilities = storage.policyCapabilities.count
        s.typeBounds = storage.types.filter { $0.bounds != 0 }.count
        s.genfscon = storage.genfs.count
        for o in storage.objectContexts {
            if storage.target == .xen {
                switch o.kind {
                case 0: s.initialSIDs += 1
                case 1: s.pirqcon += 1
                case 2: s.ioportcon += 1
                case 3: s.iomemcon += 1
                case 4: s.pcidevicecon += 1
                default: s.devicetreecon += 1
                }
                continue
            }
            switch o.kind {
            case 0: s.initialSIDs += 1
            case 1: break
            case 2: s.portcon += 1
            case 3: s.netifcon += 1
            case 4, 6: s.nodecon += 1
            case 5: s.fsUse += 1
            case 7: s.ibpkeycon += 1
            default: s.ibendportcon += 1
            }
        }
        return s
    }
}
