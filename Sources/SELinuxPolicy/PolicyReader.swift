import SELinux

/// Reads a binary kernel policy (SELinux versions 24–33, Xen versions 24 and 30) into `PolicyStorage`,
/// checking every count against the remaining bytes and every index against the tables it points into.
struct PolicyReader {
    static let magic: UInt32 = 0xf97c_ff8c
    // Versions where the format changes.
    static let vPolcap = 22, vPermissive = 23, vBoundary = 24, vFilenameTrans = 25, vRoleTrans = 26
    static let vNewObjectDefaults = 27, vDefaultType = 28, vConstraintNames = 29, vXperms = 30
    static let vInfiniband = 31, vCompFilenameTrans = 33

    var r: PolicyByteReader
    var target: PolicyTarget = .selinux
    var version = 0
    var mls = false

    init(_ base: UnsafeRawBufferPointer) { r = PolicyByteReader(base) }

    static func read(_ bytes: UnsafeRawBufferPointer) throws -> PolicyStorage {
        var reader = PolicyReader(bytes)
        return try reader.readPolicy()
    }

    func fail(_ code: PolicyFormatError.Code, at: Int, _ expected: String, _ found: String) -> PolicyFormatError {
        r.error(code, at: at, expected: expected, found: found)
    }

    // MARK: - Whole policy

    mutating func readPolicy() throws -> PolicyStorage {
        r.section = "header"
        let m = try r.u32("the magic number")
        guard m == Self.magic else {
            throw fail(.badMagic, at: 0, "the SELinux policy magic 0xf97cff8c",
                       "0x" + String(m, radix: 16) + (m == 0xf97c_ff8d ? " (a policy module, not a kernel policy)" : ""))
        }
        let lenAt = r.offset
        let len = Int(try r.u32("the length of the target string"))
        guard len == 8 else { throw fail(.badMagic, at: lenAt, "a target string of 8 bytes", "length \(len)") }
        let name = try r.string(length: 8, "target string")
        switch name {
        case "SE Linux": target = .selinux
        case "XenFlask": target = .xen
        default: throw fail(.badMagic, at: lenAt + 4, "'SE Linux' or 'XenFlask'", "'\(name)'")
        }
        let verAt = r.offset
        version = Int(try r.u32("the policy version"))
        guard target.supportedVersions.contains(version) else {
            let list = target == .selinux ? "24 to 33" : "24 or 30"
            throw fail(.unsupportedVersion, at: verAt, "version \(list) for target \(target)", "version \(version)")
        }
        let configAt = r.offset
        let config = try r.u32("the policy configuration flags")
        mls = config & 1 != 0
        let handle: HandleUnknown
        switch config & 6 {
        case 0: handle = .deny
        case 2: handle = .reject
        case 4: handle = .allow
        default: throw fail(.malformed, at: configAt, "one handle_unknown setting", "flags 0x\(String(config, radix: 16))")
        }
        let symAt = r.offset
        let symNum = try r.u32("the number of symbol tables")
        let oconNum = Int(try r.u32("the number of object context tables"))
        guard symNum == 8 else { throw fail(.malformed, at: symAt, "8 symbol tables", "\(symNum)") }
        let expectedOcon: Int
        switch target {
        case .selinux: expectedOcon = version >= Self.vInfiniband ? 9 : 7
        case .xen: expectedOcon = version >= 30 ? 6 : 5
        }
        guard oconNum == expectedOcon else {
            throw fail(.malformed, at: symAt + 4, "\(expectedOcon) object context tables for version \(version)", "\(oconNum)")
        }

        r.section = "policy capabilities"
        let polcaps = try r.ebitmap("the policy capabilities", limit: 1024)
        r.section = "permissive types"
        let permissive = try r.ebitmap("the permissive types", limit: 1 << 16 + 64)

        // Symbol tables.
        r.section = "commons"
        let (commonsNprim, commonsRaw) = try symtabHeader("commons", minItem: 16)
        var commons: [CommonDatum] = []
        commons.reserveCapacity(commonsRaw)
        for _ in 0..<commonsRaw { commons.append(try readCommon()) }
        let commonsSorted = try arrangeByValue(commons.map { ($0.value, $0.name) }, nprim: commonsNprim, what: "common")
        commons = commonsSorted.map { commons[$0] }

        r.section = "classes"
        let (classNprim, classNel) = try symtabHeader("classes", minItem: 24)
        var classes: [ClassDatum] = []
        classes.reserveCapacity(classNel)
        for _ in 0..<classNel { classes.append(try readClass(commons: commons)) }
        let classOrder = try arrangeByValue(classes.map { ($0.value, $0.name) }, nprim: classNprim, what: "class")
        classes = classOrder.map { classes[$0] }
        guard classes.count <= Int(UInt16.max) else {
            throw fail(.tooLarge, at: r.offset, "at most 65535 classes", "\(classes.count)")
        }

        r.section = "roles"
        let (roleNprim, roleNel) = try symtabHeader("roles", minItem: 12)
        var roles: [RoleDatum] = []
        roles.reserveCapacity(roleNel)
        for _ in 0..<roleNel { roles.append(try readRole()) }
        let roleOrder = try arrangeByValue(roles.map { ($0.value, $0.name) }, nprim: roleNprim, what: "role")
        roles = roleOrder.map { roles[$0] }
        guard let first = roles.first, first.name == "object_r" else {
            throw fail(.malformed, at: r.offset, "role object_r with value 1", roles.first.map { "role \($0.name)" } ?? "no roles")
        }

        r.section = "types"
        let (typeNprim, typeNel) = try symtabHeader("types", minItem: 16)
        var typeEntries: [TypeDatum] = []
        typeEntries.reserveCapacity(typeNel)
        for _ in 0..<typeNel { typeEntries.append(try readType()) }
        guard typeNprim <= Int(UInt16.max) else {
            throw fail(.tooLarge, at: r.offset, "at most 65535 types", "\(typeNprim)")
        }
        let primaries = typeEntries.indices.filter { typeEntries[$0].isPrimary }
        let typeOrder = try arrangeByValue(primaries.map { (typeEntries[$0].value, typeEntries[$0].name) },
                                           nprim: typeNprim, what: "type")
        let types = typeOrder.map { typeEntries[primaries[$0]] }
        var aliases: [(name: String, value: UInt32)] = []
        for t in typeEntries where !t.isPrimary {
            guard t.value >= 1, Int(t.value) <= typeNprim else {
                throw fail(.outOfRange, at: t.offset, "an alias of a type 1...\(typeNprim)", "type alias \(t.name) = \(t.value)")
            }
            aliases.append((t.name, t.value))
        }

        r.section = "users"
        let (userNprim, userNel) = try symtabHeader("users", minItem: 16)
        var users: [UserDatum] = []
        users.reserveCapacity(userNel)
        for _ in 0..<userNel { users.append(try readUser()) }
        let userOrder = try arrangeByValue(users.map { ($0.value, $0.name) }, nprim: userNprim, what: "user")
        users = userOrder.map { users[$0] }

        r.section = "booleans"
        let (boolNprim, boolNel) = try symtabHeader("booleans", minItem: 12)
        var booleans: [BooleanDatum] = []
        booleans.reserveCapacity(boolNel)
        for _ in 0..<boolNel { booleans.append(try readBoolean()) }
        let boolOrder = try arrangeByValue(booleans.map { ($0.value, $0.name) }, nprim: boolNprim, what: "boolean")
        booleans = boolOrder.map { booleans[$0] }

        r.section = "sensitivities"
        let (sensNprim, sensNel) = try symtabHeader("sensitivities", minItem: 20)
        var sens: [SensitivityDatum] = []
        for _ in 0..<sensNel { sens.append(try readSensitivity()) }
        let sensPrimaries = sens.indices.filter { !sens[$0].isAlias }
        // Aliases may be counted in the table's size, so the primary names must cover 1...count of primaries.
        guard sensPrimaries.count <= sensNprim else {
            throw fail(.malformed, at: r.offset, "at most \(sensNprim) sensitivities", "\(sensPrimaries.count)")
        }
        let sensOrder = try arrangeByValue(sensPrimaries.map { (sens[$0].level.sens, sens[$0].name) },
                                           nprim: sensPrimaries.count, what: "sensitivity")
        let sensByValue = sensOrder.map { sensPrimaries[$0] }
        for s in sens where s.isAlias {
            guard s.level.sens >= 1, Int(s.level.sens) <= sensPrimaries.count else {
                throw fail(.outOfRange, at: s.offset, "an alias of a sensitivity 1...\(sensPrimaries.count)",
                           "\(s.name) = \(s.level.sens)")
            }
        }

        r.section = "categories"
        let (catNprim, catNel) = try symtabHeader("categories", minItem: 16)
        var cats: [CategoryDatum] = []
        cats.reserveCapacity(catNel)
        for _ in 0..<catNel { cats.append(try readCategory()) }
        let catPrimaries = cats.indices.filter { !cats[$0].isAlias }
        guard catPrimaries.count <= catNprim else {
            throw fail(.malformed, at: r.offset, "at most \(catNprim) categories", "\(catPrimaries.count)")
        }
        let catOrder = try arrangeByValue(catPrimaries.map { (cats[$0].value, cats[$0].name) },
                                          nprim: catPrimaries.count, what: "category")
        let catByValue = catOrder.map { catPrimaries[$0] }
        for c in cats where c.isAlias {
            guard c.value >= 1, Int(c.value) <= catPrimaries.count else {
                throw fail(.outOfRange, at: r.offset, "an alias of a category 1...\(catPrimaries.count)", "\(c.name) = \(c.value)")
            }
        }

        var counts = SymbolCounts(classes: classes.count, roles: roles.count, types: types.count, users: users.count,
                                  booleans: booleans.count, sensitivities: sensPrimaries.count,
                                  categories: catPrimaries.count)
        counts.classPermissionMasks = classes.map { c in
            var m: UInt32 = 0
            for (b, p) in c.permissions.enumerated() where p != nil { m |= 1 << UInt32(b) }
            return m
        }
        counts.isAttribute = types.map(\.isAttribute)
        counts.sensitivityCats = sensByValue.map { sens[$0].level.cats }
        counts.roleTypes = roles.map(\.types)
        counts.userRoles = users.map(\.roles)
        counts.userRanges = users.map(\.range)
        let check = Checker(counts: counts, mls: mls)

        // Post-checks of the symbol tables, now that every count is known.
        try validateSymbols(check: check, classes: classes, roles: roles, types: types, users: users, sens: sens)

        r.section = "access vector table"
        let avCount = try r.count("access vector rules", minimumItemSize: 12)
        var avtab: [AVEntry] = []
        avtab.reserveCapacity(avCount)
        var xperms: [XpermsDatum] = []
        for _ in 0..<avCount { avtab.append(try readAVEntry(check: check, xperms: &xperms)) }

        r.section = "conditional rules"
        let nodeCount = try r.count("conditional nodes", minimumItemSize: 16)
        var condNodes: [CondNode] = []
        var condEntries: [AVEntry] = []
        var condEntryNode: [Int32] = []
        var condEntryBranch: [Bool] = []
        for n in 0..<nodeCount {
            let state = try r.u32("a conditional's state")
            let exprAt = r.offset
            let exprLen = try r.count("conditional expression items", minimumItemSize: 8)
            var expr: [CondExprItem] = []
            expr.reserveCapacity(exprLen)
            var depth = 0
            for _ in 0..<exprLen {
                let itemAt = r.offset
                let kind = try r.u32("a conditional operator")
                let b = try r.u32("a conditional boolean")
                switch kind {
                case 1:
                    guard b >= 1, Int(b) <= booleans.count else {
                        throw fail(.outOfRange, at: itemAt, "a boolean 1...\(booleans.count)", "boolean \(b)")
                    }
                    depth += 1
                case 2:
                    guard depth >= 1 else { throw fail(.malformed, at: itemAt, "an operand before 'not'", "an empty stack") }
                case 3...7:
                    guard depth >= 2 else { throw fail(.malformed, at: itemAt, "two operands before a binary operator", "\(depth)") }
                    depth -= 1
                default:
                    throw fail(.malformed, at: itemAt, "a conditional operator 1...7", "\(kind)")
                }
                guard depth <= 10 else { throw fail(.malformed, at: itemAt, "a conditional at most 10 deep", "deeper") }
                expr.append(CondExprItem(kind: kind, boolean: b))
            }
            guard depth == 1 else {
                throw fail(.malformed, at: exprAt, "a conditional expression that leaves one value", "\(depth) values")
            }
            let tStart = condEntries.count
            let tCount = try r.count("rules in a conditional's true list", minimumItemSize: 12)
            for _ in 0..<tCount {
                condEntries.append(try readAVEntry(check: check, xperms: &xperms))
                condEntryNode.append(Int32(n))
                condEntryBranch.append(true)
            }
            let fStart = condEntries.count
            let fCount = try r.count("rules in a conditional's false list", minimumItemSize: 12)
            for _ in 0..<fCount {
                condEntries.append(try readAVEntry(check: check, xperms: &xperms))
                condEntryNode.append(Int32(n))
                condEntryBranch.append(false)
            }
            condNodes.append(CondNode(initialState: state, expr: expr, trueList: tStart..<fStart,
                                      falseList: fStart..<condEntries.count))
        }

        r.section = "role transitions"
        let rtCount = try r.count("role transitions", minimumItemSize: version >= Self.vRoleTrans ? 16 : 12)
        var roleTransitions: [RoleTransition] = []
        roleTransitions.reserveCapacity(rtCount)
        // Before version 26 a role transition names no class: libsepol takes the process class, which is
        // "domain" for a Xen policy.
        let processClassName = target == .xen ? "domain" : "process"
        let processClassValue = classes.first { $0.name == processClassName }?.value ?? 0
        for _ in 0..<rtCount {
            let at = r.offset
            let role = try r.u32("a role"), type = try r.u32("a type"), newRole = try r.u32("a new role")
            let tclass = version >= Self.vRoleTrans ? try r.u32("a class") : processClassValue
            try check.role(role, at: at, self); try check.type(type, at: at, self); try check.role(newRole, at: at, self)
            try check.tclass(tclass, at: at, self)
            roleTransitions.append(RoleTransition(role: role, type: type, newRole: newRole, tclass: tclass))
        }
        r.section = "role allow rules"
        let raCount = try r.count("role allow rules", minimumItemSize: 8)
        var roleAllows: [RoleAllow] = []
        roleAllows.reserveCapacity(raCount)
        for _ in 0..<raCount {
            let at = r.offset
            let role = try r.u32("a role"), newRole = try r.u32("a new role")
            try check.role(role, at: at, self); try check.role(newRole, at: at, self)
            roleAllows.append(RoleAllow(role: role, newRole: newRole))
        }

        var filenameTransitions: [FilenameTransition] = []
        if version >= Self.vFilenameTrans {
            r.section = "filename transitions"
            let n = try r.count("filename transitions", minimumItemSize: version >= Self.vCompFilenameTrans ? 16 : 20)
            for _ in 0..<n {
                let at = r.offset
                let len = Int(try r.u32("the length of a file name"))
                let name = try r.string(length: len, "file name")
                if version >= Self.vCompFilenameTrans {
                    let ttype = try r.u32("a target type"), tclass = try r.u32("a class")
                    try check.type(ttype, at: at, self); try check.tclass(tclass, at: at, self)
                    let nd = try r.count("filename transition sources", minimumItemSize: 16)
                    for _ in 0..<nd {
                        let sat = r.offset
                        let stypes = try r.ebitmap("the source types of a filename transition", limit: 1 << 16)
                        let otype = try r.u32("the new type")
                        try check.typeBits(stypes, at: sat, self)
                        try check.type(otype, at: sat, self)
                        for b in stypes {
                            filenameTransitions.append(FilenameTransition(name: name, sourceType: UInt32(b + 1),
                                                                          targetType: ttype, tclass: tclass, newType: otype))
                        }
                    }
                } else {
                    let stype = try r.u32("a source type"), ttype = try r.u32("a target type")
                    let tclass = try r.u32("a class"), otype = try r.u32("a new type")
                    try check.type(stype, at: at, self); try check.type(ttype, at: at, self)
                    try check.tclass(tclass, at: at, self); try check.type(otype, at: at, self)
                    filenameTransitions.append(FilenameTransition(name: name, sourceType: stype, targetType: ttype,
                                                                  tclass: tclass, newType: otype))
                }
            }
        }

        r.section = "object contexts"
        var ocons: [RawObjectContext] = []
        for kind in 0..<oconNum {
            let n = try r.count("object contexts of kind \(kind)", minimumItemSize: 16)
            for _ in 0..<n { ocons.append(try readObjectContext(kind: kind, check: check)) }
        }

        r.section = "genfscon"
        var genfs: [RawObjectContext] = []
        let fsCount = try r.count("genfscon file systems", minimumItemSize: 12)
        for _ in 0..<fsCount {
            let len = Int(try r.u32("the length of a file system name"))
            let fstype = try r.string(length: len, "file system name")
            let n = try r.count("genfscon entries", minimumItemSize: 24)
            for _ in 0..<n {
                let at = r.offset
                let plen = Int(try r.u32("the length of a path"))
                let path = try r.string(length: plen, "genfscon path")
                let sclass = try r.u32("a genfscon class")
                if sclass != 0 { try check.tclass(sclass, at: at, self) }
                let ctx = try readContext(check: check)
                genfs.append(RawObjectContext(kind: 100, name: path, tclass: sclass, fstype: fstype, contexts: [ctx],
                                              offset: at))
            }
        }

        var rangeTransitions: [RangeTransition] = []
        r.section = "range transitions"
        let rtn = try r.count("range transitions", minimumItemSize: 24)
        for _ in 0..<rtn {
            let at = r.offset
            let s = try r.u32("a source type"), t = try r.u32("a target type"), c = try r.u32("a class")
            try check.type(s, at: at, self); try check.type(t, at: at, self); try check.tclass(c, at: at, self)
            let range = try readRange("a range transition")
            if mls { try check.range(range, at: at, self) }
            rangeTransitions.append(RangeTransition(sourceType: s, targetType: t, tclass: c, range: range))
        }

        r.section = "type attribute map"
        var typeAttr: [CategorySet] = []
        typeAttr.reserveCapacity(types.count)
        for i in 0..<types.count {
            let at = r.offset
            var m = try r.ebitmap("the attributes of type \(types[i].name)", limit: 1 << 16)
            if let mx = m.max, mx >= types.count {
                throw fail(.outOfRange, at: at, "attribute bits below \(types.count)", "bit \(mx) for type \(types[i].name)")
            }
            m.insert(i)
            typeAttr.append(m)
        }
        guard r.remaining == 0 else {
            r.section = "end of policy"
            throw fail(.malformed, at: r.offset, "the end of the policy", "\(r.remaining) more bytes")
        }

        return PolicyStorage(
            target: target, version: version, mls: mls, handleUnknown: handle, policyCapabilities: polcaps,
            permissiveTypes: permissive, commons: commons, classes: classes, roles: roles, types: types,
            typeAliases: aliases, users: users, booleans: booleans, sensitivities: sens, sensitivityByValue: sensByValue,
            categories: cats, categoryByValue: catByValue, avtab: avtab, condEntries: condEntries,
            condEntryNode: condEntryNode, condEntryBranch: condEntryBranch, xperms: xperms, condNodes: condNodes,
            roleTransitions: roleTransitions, roleAllows: roleAllows, filenameTransitions: filenameTransitions,
            objectContexts: ocons, genfs: genfs, rangeTransitions: rangeTransitions, typeAttributeMap: typeAttr)
    }

    // MARK: - Symbol tables

    mutating func symtabHeader(_ what: String, minItem: Int) throws -> (Int, Int) {
        let at = r.offset
        let nprim = Int(try r.u32("the number of \(what)"))
        let nel = try r.count(what, minimumItemSize: minItem)
        guard nprim <= nel || what == "roles" else {
            throw fail(.malformed, at: at, "at most \(nel) distinct \(what) values", "\(nprim)")
        }
        guard nprim <= 1 << 20 else { throw fail(.tooLarge, at: at, "at most 1048576 \(what)", "\(nprim)") }
        return (nprim, nel)
    }

    /// Orders entries by value, checking that the values are exactly 1...nprim, each once.
    func arrangeByValue(_ entries: [(UInt32, String)], nprim: Int, what: String) throws -> [Int] {
        var slot = [Int](repeating: -1, count: nprim)
        for (i, e) in entries.enumerated() {
            guard e.0 >= 1, Int(e.0) <= nprim else {
                throw fail(.outOfRange, at: r.offset, "\(what) values 1...\(nprim)", "\(what) \(e.1) with value \(e.0)")
            }
            guard slot[Int(e.0) - 1] < 0 else {
                throw fail(.malformed, at: r.offset, "one \(what) per value", "value \(e.0) used twice (\(e.1))")
            }
            slot[Int(e.0) - 1] = i
        }
        if let missing = slot.firstIndex(of: -1) {
            throw fail(.malformed, at: r.offset, "a \(what) for every value 1...\(nprim)", "no \(what) with value \(missing + 1)")
        }
        return slot
    }

    mutating func readPermissions(_ n: Int, into perms: inout [String?], limit: Int, owner: String) throws -> Int {
        var count = 0
        for _ in 0..<n {
            let at = r.offset
            let len = Int(try r.u32("the length of a permission name"))
            let value = try r.u32("a permission value")
            let name = try r.string(length: len, "permission name")
            guard value >= 1, value <= 32, Int(value) <= limit else {
                throw fail(.outOfRange, at: at, "a permission value 1...\(min(32, limit)) in \(owner)", "\(name) = \(value)")
            }
            guard perms[Int(value) - 1] == nil else {
                throw fail(.malformed, at: at, "one permission per bit in \(owner)", "\(name) reuses bit \(value - 1)")
            }
            perms[Int(value) - 1] = name
            count += 1
        }
        return count
    }

    mutating func readCommon() throws -> CommonDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a common name"))
        let value = try r.u32("a common value")
        let nprim = Int(try r.u32("the number of permissions"))
        let nel = try r.count("common permissions", minimumItemSize: 8)
        let name = try r.string(length: len, "common name")
        guard nprim <= 32, nel <= nprim else {
            throw fail(.outOfRange, at: at, "at most 32 permissions in common \(name)", "\(nprim) (\(nel) listed)")
        }
        var perms = [String?](repeating: nil, count: 32)
        _ = try readPermissions(nel, into: &perms, limit: nprim, owner: "common \(name)")
        return CommonDatum(name: name, value: value, permissions: perms)
    }

    mutating func readClass(commons: [CommonDatum]) throws -> ClassDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a class name"))
        let len2 = Int(try r.u32("the length of a common name"))
        let value = try r.u32("a class value")
        let nprim = Int(try r.u32("the number of permissions"))
        let nel = try r.count("class permissions", minimumItemSize: 8)
        let ncons = try r.count("constraints", minimumItemSize: 8)
        let name = try r.string(length: len, "class name")
        guard nprim <= 32 else { throw fail(.outOfRange, at: at, "at most 32 permissions in class \(name)", "\(nprim)") }
        var perms = [String?](repeating: nil, count: 32)
        var common: Int?
        var commonName: String?
        if len2 > 0 {
            let cn = try r.string(length: len2, "common name")
            guard let ci = commons.firstIndex(where: { $0.name == cn }) else {
                throw fail(.unknownName, at: at, "a common defined before class \(name)", "common \(cn)")
            }
            common = ci
            commonName = cn
            perms = commons[ci].permissions
        }
        let own = try readPermissions(nel, into: &perms, limit: nprim, owner: "class \(name)")
        var constraints: [ConstraintDatum] = []
        for _ in 0..<ncons { constraints.append(try readConstraint(allowXTarget: false, owner: name)) }
        var vt: [ConstraintDatum] = []
        let nvt = try r.count("validatetrans rules", minimumItemSize: 8)
        for _ in 0..<nvt { vt.append(try readConstraint(allowXTarget: true, owner: name)) }
        var c = ClassDatum(name: name, value: value, common: common, commonName: commonName, permissions: perms,
                           ownPermissionCount: own, constraints: constraints, validatetrans: vt, offset: at)
        if version >= Self.vNewObjectDefaults {
            let dat = r.offset
            c.defaultUser = try r.u32("default_user"); c.defaultRole = try r.u32("default_role")
            c.defaultRange = try r.u32("default_range")
            guard c.defaultUser <= 2, c.defaultRole <= 2, c.defaultRange <= 7 else {
                throw fail(.outOfRange, at: dat, "default_user/role 0...2 and default_range 0...7 in class \(name)",
                           "\(c.defaultUser), \(c.defaultRole), \(c.defaultRange)")
            }
        }
        if version >= Self.vDefaultType {
            let dat = r.offset
            c.defaultType = try r.u32("default_type")
            guard c.defaultType <= 2 else { throw fail(.outOfRange, at: dat, "default_type 0...2 in class \(name)", "\(c.defaultType)") }
        }
        return c
    }

    mutating func readConstraint(allowXTarget: Bool, owner: String) throws -> ConstraintDatum {
        let at = r.offset
        let perms = try r.u32("constraint permissions")
        let n = try r.count("constraint expression items", minimumItemSize: 12)
        var expr: [ConstraintExpr] = []
        expr.reserveCapacity(n)
        var depth = 0
        for _ in 0..<n {
            let eat = r.offset
            let kind = try r.u32("a constraint expression type")
            let attr = try r.u32("a constraint attribute")
            let op = try r.u32("a constraint operator")
            var e = ConstraintExpr(kind: kind, attr: attr, op: op, names: CategorySet())
            switch kind {
            case 1:
                guard depth >= 1 else { throw fail(.malformed, at: eat, "an operand before 'not' in \(owner)", "an empty stack") }
            case 2, 3:
                guard depth >= 2 else { throw fail(.malformed, at: eat, "two operands before and/or in \(owner)", "\(depth)") }
                depth -= 1
            case 4:
                depth += 1
                let valid: Bool
                switch attr {
                case 1, 4: valid = op == 1 || op == 2
                case 2: valid = (1...5).contains(op)
                case 32, 64, 128, 256, 512, 1024: valid = (1...5).contains(op)
                default: valid = false
                }
                guard valid else {
                    throw fail(.malformed, at: eat, "a known attribute and operator in a constraint of \(owner)",
                               "attribute \(attr) operator \(op)")
                }
            case 5:
                depth += 1
                let base = attr & ~UInt32(8 | 16)
                guard base == 1 || base == 2 || base == 4, op == 1 || op == 2,
                      !(attr & 8 != 0 && attr & 16 != 0), allowXTarget || attr & 16 == 0 else {
                    throw fail(.malformed, at: eat, "a name test on u, r or t with == or != in \(owner)",
                               "attribute \(attr) operator \(op)")
                }
                e.names = try r.ebitmap("constraint names", limit: 1 << 16)
                if version >= Self.vConstraintNames {
                    e.typeNames = try r.ebitmap("constraint type names", limit: 1 << 16)
                    e.typeNamesNegated = try r.ebitmap("constraint negated type names", limit: 1 << 16)
                    _ = try r.u32("constraint type set flags")
                }
            default:
                throw fail(.malformed, at: eat, "a constraint expression type 1...5 in \(owner)", "\(kind)")
            }
            guard depth <= 5 else { throw fail(.malformed, at: eat, "a constraint at most 5 deep in \(owner)", "deeper") }
            expr.append(e)
        }
        guard depth == 1 else {
            throw fail(.malformed, at: at, "a constraint expression that leaves one value in \(owner)", "\(depth) values")
        }
        return ConstraintDatum(permissions: perms, expr: expr, offset: at)
    }

    mutating func readRole() throws -> RoleDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a role name"))
        let value = try r.u32("a role value")
        let bounds = try r.u32("a role's bounds")
        let name = try r.string(length: len, "role name")
        let dom = try r.ebitmap("the roles role \(name) dominates", limit: 1 << 16)
        let types = try r.ebitmap("the types of role \(name)", limit: 1 << 16)
        return RoleDatum(name: name, value: value, bounds: bounds, dominates: dom, types: types, offset: at)
    }

    mutating func readType() throws -> TypeDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a type name"))
        let value = try r.u32("a type value")
        let props = try r.u32("type properties")
        let bounds = try r.u32("a type's bounds")
        let name = try r.string(length: len, "type name")
        return TypeDatum(name: name, value: value, isPrimary: props & 1 != 0, isAttribute: props & 2 != 0,
                         bounds: bounds, offset: at)
    }

    mutating func readLevel(_ what: String) throws -> Level {
        let sens = try r.u32("the sensitivity of \(what)")
        let cats = try r.ebitmap("the categories of \(what)")
        return Level(sens: sens, cats: cats)
    }

    mutating func readRange(_ what: String) throws -> LevelRange {
        let at = r.offset
        let items = try r.u32("the number of levels in \(what)")
        guard items == 1 || items == 2 else { throw fail(.malformed, at: at, "1 or 2 levels in \(what)", "\(items)") }
        let lowSens = try r.u32("the low sensitivity of \(what)")
        let highSens = items == 2 ? try r.u32("the high sensitivity of \(what)") : lowSens
        let lowCats = try r.ebitmap("the low categories of \(what)")
        let highCats = items == 2 ? try r.ebitmap("the high categories of \(what)") : lowCats
        return LevelRange(low: Level(sens: lowSens, cats: lowCats), high: Level(sens: highSens, cats: highCats))
    }

    mutating func readUser() throws -> UserDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a user name"))
        let value = try r.u32("a user value")
        let bounds = try r.u32("a user's bounds")
        let name = try r.string(length: len, "user name")
        let roles = try r.ebitmap("the roles of user \(name)", limit: 1 << 16)
        let range = try readRange("the range of user \(name)")
        let dflt = try readLevel("the default level of user \(name)")
        return UserDatum(name: name, value: value, bounds: bounds, roles: roles, range: range, defaultLevel: dflt, offset: at)
    }

    mutating func readBoolean() throws -> BooleanDatum {
        let at = r.offset
        let value = try r.u32("a boolean value")
        let state = try r.u32("a boolean state")
        let len = Int(try r.u32("the length of a boolean name"))
        let name = try r.string(length: len, "boolean name")
        guard state <= 1 else { throw fail(.outOfRange, at: at, "state 0 or 1 for boolean \(name)", "\(state)") }
        return BooleanDatum(name: name, value: value, state: state == 1)
    }

    mutating func readSensitivity() throws -> SensitivityDatum {
        let at = r.offset
        let len = Int(try r.u32("the length of a sensitivity name"))
        let isAlias = try r.u32("the alias flag")
        let name = try r.string(length: len, "sensitivity name")
        let level = try readLevel("sensitivity \(name)")
        return SensitivityDatum(name: name, isAlias: isAlias != 0, level: level, offset: at)
    }

    mutating func readCategory() throws -> CategoryDatum {
        let len = Int(try r.u32("the length of a category name"))
        let value = try r.u32("a category value")
        let isAlias = try r.u32("the alias flag")
        let name = try r.string(length: len, "category name")
        return CategoryDatum(name: name, value: value, isAlias: isAlias != 0)
    }

    func validateSymbols(check: Checker, classes: [ClassDatum], roles: [RoleDatum], types: [TypeDatum],
                         users: [UserDatum], sens: [SensitivityDatum]) throws {
        for c in classes {
            let mask = check.counts.classPermissionMasks[Int(c.value) - 1]
            for con in c.constraints + c.validatetrans {
                guard con.permissions & ~mask == 0 || c.validatetrans.contains(where: { $0.offset == con.offset }) else {
                    throw fail(.outOfRange, at: con.offset, "constraint permissions defined in class \(c.name)",
                               "mask 0x\(String(con.permissions, radix: 16))")
                }
                for e in con.expr where e.kind == 5 {
                    let base = e.attr & 7
                    let limit = base == 1 ? check.counts.users : base == 2 ? check.counts.roles : check.counts.types
                    if let mx = e.names.max, mx >= limit {
                        throw fail(.outOfRange, at: con.offset, "names below \(limit) in a constraint of \(c.name)", "bit \(mx)")
                    }
                    for set in [e.typeNames, e.typeNamesNegated] {
                        if let s = set, let mx = s.max, mx >= check.counts.types {
                            throw fail(.outOfRange, at: con.offset, "type names below \(check.counts.types)", "bit \(mx)")
                        }
                    }
                }
            }
        }
        for role in roles {
            if let mx = role.dominates.max, mx >= roles.count {
                throw fail(.outOfRange, at: role.offset, "dominated roles below \(roles.count) for \(role.name)", "bit \(mx)")
            }
            if let mx = role.types.max, mx >= types.count {
                throw fail(.outOfRange, at: role.offset, "types below \(types.count) for role \(role.name)", "bit \(mx)")
            }
            guard Int(role.bounds) <= roles.count else {
                throw fail(.outOfRange, at: role.offset, "a bounding role 0...\(roles.count)", "\(role.bounds)")
            }
        }
        for t in types {
            guard Int(t.bounds) <= types.count else {
                throw fail(.outOfRange, at: t.offset, "a bounding type 0...\(types.count) for \(t.name)", "\(t.bounds)")
            }
        }
        // Type bounds must not loop, or the bounds check would never end.
        for t in types where t.bounds != 0 {
            var seen = 0
            var cur = t.bounds
            while cur != 0 {
                seen += 1
                guard seen <= types.count else {
                    throw fail(.malformed, at: t.offset, "typebounds without a cycle", "a cycle through \(t.name)")
                }
                cur = types[Int(cur) - 1].bounds
            }
        }
        for u in users {
            if let mx = u.roles.max, mx >= roles.count {
                throw fail(.outOfRange, at: u.offset, "roles below \(roles.count) for user \(u.name)", "bit \(mx)")
            }
            guard Int(u.bounds) <= users.count else {
                throw fail(.outOfRange, at: u.offset, "a bounding user 0...\(users.count)", "\(u.bounds)")
            }
            if mls {
                try check.range(u.range, at: u.offset, self, what: "the range of user \(u.name)")
                try check.level(u.defaultLevel, at: u.offset, self, what: "the default level of user \(u.name)")
            }
        }
        for s in sens {
            guard s.level.sens >= 1, Int(s.level.sens) <= check.counts.sensitivities else {
                throw fail(.outOfRange, at: s.offset, "a sensitivity 1...\(check.counts.sensitivities)", "\(s.name) = \(s.level.sens)")
            }
            if let mx = s.level.cats.max, mx >= check.counts.categories {
                throw fail(.outOfRange, at: s.offset, "categories below \(check.counts.categories) for \(s.name)", "bit \(mx)")
            }
        }
    }

    // MARK: - Rules

    mutating func readAVEntry(check: Checker, xperms: inout [XpermsDatum]) throws -> AVEntry {
        let at = r.offset
        let s = try r.u16("a source type"), t = try r.u16("a target type"), c = try r.u16("a class")
        let specRaw = try r.u16("a rule kind")
        let spec = specRaw & ~AVSpec.enabled
        guard spec != 0, spec & (spec - 1) == 0, spec & (AVSpec.av | AVSpec.type | AVSpec.xperms) != 0 else {
            throw fail(.malformed, at: at + 6, "exactly one rule kind", "0x" + String(specRaw, radix: 16))
        }
        try check.type(UInt32(s), at: at, self)
        try check.type(UInt32(t), at: at + 2, self)
        try check.tclass(UInt32(c), at: at + 4, self)
        if spec & AVSpec.xperms != 0 {
            guard version >= Self.vXperms else {
                throw fail(.malformed, at: at + 6, "no extended permissions before version 30", "an xperm rule")
            }
            let sp = try r.u8("the extended permission kind")
            let driver = try r.u8("the ioctl driver")
            guard sp == 1 || sp == 2 else { throw fail(.malformed, at: at + 8, "xperm kind 1 or 2", "\(sp)") }
            var words: [UInt32] = []
            words.reserveCapacity(8)
            for _ in 0..<8 { words.append(try r.u32("extended permission bits")) }
            xperms.append(XpermsDatum(specified: sp, driver: driver, perms: words))
            return AVEntry(source: s, target: t, tclass: c, specified: spec, data: 0, xperm: Int32(xperms.count - 1))
        }
        let data = try r.u32("the rule's data")
        if spec & AVSpec.type != 0 {
            try check.type(data, at: at + 8, self)
            guard !check.counts.isAttribute[Int(data) - 1] else {
                throw fail(.malformed, at: at + 8, "a type (not an attribute) as the result of a type rule", "attribute \(data)")
            }
        }
        return AVEntry(source: s, target: t, tclass: c, specified: spec, data: data, xperm: -1)
    }

    mutating func readContext(check: Checker) throws -> ContextValues {
        let at = r.offset
        let user = try r.u32("a context user"), role = try r.u32("a context role"), type = try r.u32("a context type")
        var range = try readRange("a context range")
        if !mls { range = LevelRange(low: Level(sens: 0, cats: CategorySet()), high: Level(sens: 0, cats: CategorySet())) }
        let c = ContextValues(user: user, role: role, type: type, range: range)
        if let why = check.contextProblem(c) {
            throw fail(.outOfRange, at: at, "a valid security context", why)
        }
        return c
    }

    mutating func readObjectContext(kind: Int, check: Checker) throws -> RawObjectContext {
        let at = r.offset
        var o = RawObjectContext(kind: kind, contexts: [], offset: at)
        if target == .xen {
            switch kind {
            case 0: o.sid = try r.u32("an initial SID")
            case 1: o.low = UInt64(try r.u32("a pirq")); o.high = o.low
            case 2:
                o.low = UInt64(try r.u32("an I/O port")); o.high = UInt64(try r.u32("an I/O port"))
                guard o.low <= o.high else { throw fail(.malformed, at: at, "low port <= high port", "\(o.low)-\(o.high)") }
            case 3:
                if version >= 30 {
                    o.low = try r.u64("an I/O memory frame"); o.high = try r.u64("an I/O memory frame")
                } else {
                    o.low = UInt64(try r.u32("an I/O memory frame")); o.high = UInt64(try r.u32("an I/O memory frame"))
                }
                guard o.low <= o.high else { throw fail(.malformed, at: at, "low frame <= high frame", "\(o.low)-\(o.high)") }
            case 4: o.low = UInt64(try r.u32("a PCI device")); o.high = o.low
            case 5:
                let len = Int(try r.u32("the length of a device tree path"))
                o.name = try r.string(length: len, "device tree path")
            default: throw fail(.malformed, at: at, "a known Xen object context kind", "\(kind)")
            }
            o.contexts = [try readContext(check: check)]
            return o
        }
        switch kind {
        case 0:
            o.sid = try r.u32("an initial SID")
            o.contexts = [try readContext(check: check)]
        case 1, 3:
            let len = Int(try r.u32("the length of a name"))
            o.name = try r.string(length: len, kind == 1 ? "file system name" : "network interface name")
            o.contexts = [try readContext(check: check), try readContext(check: check)]
        case 2:
            o.proto = try r.u32("a protocol"); o.low = UInt64(try r.u32("a port")); o.high = UInt64(try r.u32("a port"))
            guard o.low <= o.high, o.high <= 65535 else { throw fail(.malformed, at: at, "ports low <= high <= 65535", "\(o.low)-\(o.high)") }
            o.contexts = [try readContext(check: check)]
        case 4:
            o.address = try r.bytes(4, "an IPv4 address"); o.mask = try r.bytes(4, "an IPv4 mask")
            o.contexts = [try readContext(check: check)]
        case 5:
            o.behavior = try r.u32("an fs_use behavior")
            let len = Int(try r.u32("the length of a file system name"))
            o.name = try r.string(length: len, "file system name")
            guard (1...3).contains(o.behavior) else { throw fail(.outOfRange, at: at, "fs_use behavior 1...3", "\(o.behavior)") }
            o.contexts = [try readContext(check: check)]
        case 6:
            o.address = try r.bytes(16, "an IPv6 address"); o.mask = try r.bytes(16, "an IPv6 mask")
            o.contexts = [try readContext(check: check)]
        case 7:
            let prefix = try r.bytes(8, "a subnet prefix")
            o.address = prefix
            o.low = UInt64(try r.u32("a partition key")); o.high = UInt64(try r.u32("a partition key"))
            guard o.low <= o.high, o.high <= 0xffff else { throw fail(.malformed, at: at, "pkeys low <= high <= 0xffff", "\(o.low)-\(o.high)") }
            o.contexts = [try readContext(check: check)]
        case 8:
            let len = Int(try r.u32("the length of a device name"))
            o.low = UInt64(try r.u32("a port number")); o.high = o.low
            o.name = try r.string(length: len, "InfiniBand device name")
            guard o.low >= 1, o.low <= 255 else { throw fail(.outOfRange, at: at, "an end port 1...255", "\(o.low)") }
            o.contexts = [try readContext(check: check)]
        default:
            throw fail(.malformed, at: at, "a known object context kind", "\(kind)")
        }
        return o
    }
}

/// The counts and tables that checks need once the symbol tables are read.
struct SymbolCounts {
    var classes: Int, roles: Int, types: Int, users: Int, booleans: Int, sensitivities: Int, categories: Int
    var classPermissionMasks: [UInt32] = []
    var isAttribute: [Bool] = []
    var sensitivityCats: [CategorySet] = []
    var roleTypes: [CategorySet] = []
    var userRoles: [CategorySet] = []
    var userRanges: [LevelRange] = []
}

/// Range checks against the symbol tables, throwing errors that name the offset.
struct Checker {
    let counts: SymbolCounts
    let mls: Bool

    func type(_ v: UInt32, at: Int, _ p: PolicyReader) throws {
        guard v >= 1, Int(v) <= counts.types else {
            throw p.fail(.outOfRange, at: at, "a type 1...\(counts.types)", "type \(v)")
        }
    }
    func typeBits(_ s: CategorySet, at: Int, _ p: PolicyReader) throws {
        if let mx = s.max, mx >= counts.types { throw p.fail(.outOfRange, at: at, "type bits below \(counts.types)", "bit \(mx)") }
    }
    func role(_ v: UInt32, at: Int, _ p: PolicyReader) throws {
        guard v >= 1, Int(v) <= counts.roles else { throw p.fail(.outOfRange, at: at, "a role 1...\(counts.roles)", "role \(v)") }
    }
    func tclass(_ v: UInt32, at: Int, _ p: PolicyReader) throws {
        guard v >= 1, Int(v) <= counts.classes else {
            throw p.fail(.outOfRange, at: at, "a class 1...\(counts.classes)", "class \(v)")
        }
    }
    func levelProblem(_ l: Level) -> String? {
        guard l.sens >= 1, Int(l.sens) <= counts.sensitivities else { return "sensitivity \(l.sens)" }
        if !l.cats.isSubset(of: counts.sensitivityCats[Int(l.sens) - 1]) { return "categories not allowed at sensitivity \(l.sens)" }
        return nil
    }
    func level(_ l: Level, at: Int, _ p: PolicyReader, what: String) throws {
        if let why = levelProblem(l) { throw p.fail(.outOfRange, at: at, "a valid level for \(what)", why) }
    }
    func rangeProblem(_ r: LevelRange) -> String? {
        if let w = levelProblem(r.low) { return w }
        if let w = levelProblem(r.high) { return w }
        return r.high.dominates(r.low) ? nil : "a high level that does not dominate the low level"
    }
    func range(_ r: LevelRange, at: Int, _ p: PolicyReader, what: String = "a range") throws {
        if let why = rangeProblem(r) { throw p.fail(.outOfRange, at: at, "a valid MLS range for \(what)", why) }
    }
    /// Why a context read from the policy is not valid, as libsepol's `policydb_context_isvalid` judges it.
    func contextProblem(_ c: ContextValues) -> String? {
        guard c.role >= 1, Int(c.role) <= counts.roles else { return "role \(c.role)" }
        guard c.user >= 1, Int(c.user) <= counts.users else { return "user \(c.user)" }
        guard c.type >= 1, Int(c.type) <= counts.types else { return "type \(c.type)" }
        if c.role != 1 {
            guard counts.roleTypes[Int(c.role) - 1].contains(Int(c.type) - 1) else { return "role \(c.role) without type \(c.type)" }
            guard counts.userRoles[Int(c.user) - 1].contains(Int(c.role) - 1) else { return "user \(c.user) without role \(c.role)" }
        }
        if mls {
            if let w = rangeProblem(c.range) { return w }
            if c.role != 1 {
                let ur = counts.userRanges[Int(c.user) - 1]
                guard c.range.low.dominates(ur.low), ur.high.dominates(c.range.high) else { return "a range outside user \(c.user)'s range" }
            }
        }
        return nil
    }
}
