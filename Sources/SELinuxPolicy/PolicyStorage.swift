import SELinux

// Internal representation of a binary policy. Values are the policy's own numbers (1-based); bitmaps use
// bit (value - 1), as the binary format does. `CategorySet` serves as the general bitmap.

/// An MLS level inside the engine: a sensitivity value and a category bitmap (bit = category value - 1).
struct Level: Hashable, Sendable {
    var sens: UInt32
    var cats: CategorySet

    @inline(__always) func dominates(_ o: Level) -> Bool { sens >= o.sens && cats.isSuperset(of: o.cats) }
}

/// An MLS range inside the engine.
struct LevelRange: Hashable, Sendable {
    var low: Level
    var high: Level
}

/// A context as numbers: user, role and type values and the MLS range (all zeros on a non-MLS policy).
struct ContextValues: Hashable, Sendable {
    var user: UInt32
    var role: UInt32
    var type: UInt32
    var range: LevelRange
}

struct CommonDatum: Sendable {
    var name: String
    var value: UInt32
    /// Permission names by bit (value - 1).
    var permissions: [String?]
}

struct ConstraintExpr: Sendable {
    var kind: UInt32    // 1 not, 2 and, 3 or, 4 attr, 5 names
    var attr: UInt32
    var op: UInt32
    var names: CategorySet
    /// The type set as written in the source (version 29+), for explanations.
    var typeNames: CategorySet?
    var typeNamesNegated: CategorySet?
}

struct ConstraintDatum: Sendable {
    var permissions: UInt32
    var expr: [ConstraintExpr]
    var offset: Int
}

struct ClassDatum: Sendable {
    var name: String
    var value: UInt32
    var common: Int?              // index into commons
    var commonName: String?
    /// Permission names by bit, the class's own and its common's.
    var permissions: [String?]
    var ownPermissionCount: Int
    var constraints: [ConstraintDatum]
    var validatetrans: [ConstraintDatum]
    var defaultUser: UInt32 = 0
    var defaultRole: UInt32 = 0
    var defaultRange: UInt32 = 0
    var defaultType: UInt32 = 0
    var offset: Int
}

struct RoleDatum: Sendable {
    var name: String
    var value: UInt32
    var bounds: UInt32
    var dominates: CategorySet
    var types: CategorySet
    var offset: Int
}

struct TypeDatum: Sendable {
    var name: String
    var value: UInt32
    var isPrimary: Bool
    var isAttribute: Bool
    var bounds: UInt32
    var offset: Int
}

struct UserDatum: Sendable {
    var name: String
    var value: UInt32
    var bounds: UInt32
    var roles: CategorySet
    var range: LevelRange
    var defaultLevel: Level
    var offset: Int
}

struct BooleanDatum: Sendable {
    var name: String
    var value: UInt32
    var state: Bool
}

struct SensitivityDatum: Sendable {
    var name: String
    var isAlias: Bool
    var level: Level
    var offset: Int
}

struct CategoryDatum: Sendable {
    var name: String
    var value: UInt32
    var isAlias: Bool
}

/// One access vector table entry.
struct AVEntry: Sendable {
    var source: UInt16
    var target: UInt16
    var tclass: UInt16
    var specified: UInt16
    var data: UInt32
    /// Index into `xperms` for extended permission entries, else -1.
    var xperm: Int32
}

struct XpermsDatum: Sendable {
    var specified: UInt8
    var driver: UInt8
    var perms: [UInt32]   // 8 words
}

enum AVSpec {
    static let allowed: UInt16 = 0x0001
    static let auditAllow: UInt16 = 0x0002
    static let auditDeny: UInt16 = 0x0004
    static let av: UInt16 = 0x0007
    static let transition: UInt16 = 0x0010
    static let member: UInt16 = 0x0020
    static let change: UInt16 = 0x0040
    static let type: UInt16 = 0x0070
    static let xpermsAllowed: UInt16 = 0x0100
    static let xpermsAuditAllow: UInt16 = 0x0200
    static let xpermsDontAudit: UInt16 = 0x0400
    static let xperms: UInt16 = 0x0700
    static let enabled: UInt16 = 0x8000
}

struct CondExprItem: Sendable {
    var kind: UInt32   // 1 bool, 2 not, 3 or, 4 and, 5 xor, 6 eq, 7 neq
    var boolean: UInt32
}

struct CondNode: Sendable {
    var initialState: UInt32
    var expr: [CondExprItem]
    /// Entries of `condEntries` in the true and false lists.
    var trueList: Range<Int>
    var falseList: Range<Int>
}

struct RoleTransition: Sendable {
    var role: UInt32
    var type: UInt32
    var newRole: UInt32
    var tclass: UInt32
}

struct RoleAllow: Sendable {
    var role: UInt32
    var newRole: UInt32
}

struct FilenameTransition: Sendable {
    var name: String
    var sourceType: UInt32
    var targetType: UInt32
    var tclass: UInt32
    var newType: UInt32
}

struct RangeTransition: Sendable {
    var sourceType: UInt32
    var targetType: UInt32
    var tclass: UInt32
    var range: LevelRange
}

/// An object context record as read, before names are attached.
struct RawObjectContext: Sendable {
    var kind: Int
    var sid: UInt32 = 0
    var name: String = ""
    var proto: UInt32 = 0
    var low: UInt64 = 0
    var high: UInt64 = 0
    var behavior: UInt32 = 0
    var address: [UInt8] = []
    var mask: [UInt8] = []
    var tclass: UInt32 = 0
    var fstype: String = ""
    var contexts: [ContextValues]
    var offset: Int
}

/// Everything read from one binary policy, plus the indexes the engine builds from it. Immutable after
/// `PolicyReader` returns it.
final class PolicyStorage: Sendable {
    let target: PolicyTarget
    let version: Int
    let mls: Bool
    let handleUnknown: HandleUnknown
    let policyCapabilities: CategorySet
    let permissiveTypes: CategorySet   // bit = type value (as the kernel stores it)

    let commons: [CommonDatum]
    let classes: [ClassDatum]          // index value - 1
    let roles: [RoleDatum]             // index value - 1 (object_r included)
    let types: [TypeDatum]             // primary types and attributes, index value - 1
    let typeAliases: [(name: String, value: UInt32)]
    let users: [UserDatum]
    let booleans: [BooleanDatum]
    let sensitivities: [SensitivityDatum]   // every entry, aliases too
    let sensitivityByValue: [Int]           // value - 1 → index into sensitivities (primary name)
    let categories: [CategoryDatum]         // every entry
    let categoryByValue: [Int]              // value - 1 → index into categories (primary name)

    let avtab: [AVEntry]
    let condEntries: [AVEntry]
    let condEntryNode: [Int32]      // node index of each cond entry
    let condEntryBranch: [Bool]     // true list?
    let xperms: [XpermsDatum]
    let condNodes: [CondNode]
    let roleTransitions: [RoleTransition]
    let roleAllows: [RoleAllow]
    let filenameTransitions: [FilenameTransition]
    let objectContexts: [RawObjectContext]
    let genfs: [RawObjectContext]
    let rangeTransitions: [RangeTransition]
    let typeAttributeMap: [CategorySet]   // per type (index value - 1): bits value - 1

    // Name lookups.
    let classByName: [String: UInt32]
    let roleByName: [String: UInt32]
    let typeByName: [String: UInt32]        // aliases included
    let userByName: [String: UInt32]
    let booleanByName: [String: UInt32]
    let sensitivityByName: [String: Int]    // → index into sensitivities
    let categoryByName: [String: UInt32]    // → value
    /// Per class, permission name → bit.
    let permissionByName: [[String: UInt32]]
    let processClass: UInt32
    let processTransitionMask: UInt32

    let index: DecisionIndex

    init(target: PolicyTarget, version: Int, mls: Bool, handleUnknown: HandleUnknown, policyCapabilities: CategorySet,
         permissiveTypes: CategorySet, commons: [CommonDatum], classes: [ClassDatum], roles: [RoleDatum],
         types: [TypeDatum], typeAliases: [(name: String, value: UInt32)], users: [UserDatum],
         booleans: [BooleanDatum], sensitivities: [SensitivityDatum], sensitivityByValue: [Int],
         categories: [CategoryDatum], categoryByValue: [Int], avtab: [AVEntry], condEntries: [AVEntry],
         condEntryNode: [Int32], condEntryBranch: [Bool], xperms: [XpermsDatum], condNodes: [CondNode],
         roleTransitions: [RoleTransition], roleAllows: [RoleAllow], filenameTransitions: [FilenameTransition],
         objectContexts: [RawObjectContext], genfs: [RawObjectContext], rangeTransitions: [RangeTransition],
         typeAttributeMap: [CategorySet]) {
        self.target = target
        self.version = version
        self.mls = mls
        self.handleUnknown = handleUnknown
        self.policyCapabilities = policyCapabilities
        self.permissiveTypes = permissiveTypes
        self.commons = commons
        self.classes = classes
        self.roles = roles
        self.types = types
        self.typeAliases = typeAliases
        self.users = users
        self.booleans = booleans
        self.sensitivities = sensitivities
        self.sensitivityByValue = sensitivityByValue
        self.categories = categories
        self.categoryByValue = categoryByValue
        self.avtab = avtab
        self.condEntries = condEntries
        self.condEntryNode = condEntryNode
        self.condEntryBranch = condEntryBranch
        self.xperms = xperms
        self.condNodes = condNodes
        self.roleTransitions = roleTransitions
        self.roleAllows = roleAllows
        self.filenameTransitions = filenameTransitions
        self.objectContexts = objectContexts
        self.genfs = genfs
        self.rangeTransitions = rangeTransitions
        self.typeAttributeMap = typeAttributeMap

        var cbn: [String: UInt32] = [:]
        cbn.reserveCapacity(classes.count)
        var pbn: [[String: UInt32]] = []
        pbn.reserveCapacity(classes.count)
        for c in classes {
            cbn[c.name] = c.value
            var m: [String: UInt32] = [:]
            for (bit, p) in c.permissions.enumerated() { if let p { m[p] = UInt32(bit) } }
            pbn.append(m)
        }
        classByName = cbn
        permissionByName = pbn
        var rbn: [String: UInt32] = [:]
        for r in roles { rbn[r.name] = r.value }
        roleByName = rbn
        var tbn: [String: UInt32] = [:]
        tbn.reserveCapacity(types.count + typeAliases.count)
        for t in types { tbn[t.name] = t.value }
        for a in typeAliases { tbn[a.name] = a.value }
        typeByName = tbn
        var ubn: [String: UInt32] = [:]
        for u in users { ubn[u.name] = u.value }
        userByName = ubn
        var bbn: [String: UInt32] = [:]
        for b in booleans { bbn[b.name] = b.value }
        booleanByName = bbn
        var sbn: [String: Int] = [:]
        for (i, s) in sensitivities.enumerated() { sbn[s.name] = i }
        sensitivityByName = sbn
        var catbn: [String: UInt32] = [:]
        catbn.reserveCapacity(categories.count)
        for c in categories { catbn[c.name] = c.value }
        categoryByName = catbn

        // The class whose transitions are checked against role allow rules and whose new labels keep the
        // source role and type: libsepol and Xen use "domain" for a Xen policy.
        let pc = cbn[target == .xen ? "domain" : "process"] ?? 0
        processClass = pc
        var mask: UInt32 = 0
        if pc != 0 {
            let perms = pbn[Int(pc) - 1]
            if let b = perms["transition"] { mask |= 1 << b }
            if let b = perms["dyntransition"] { mask |= 1 << b }
        }
        processTransitionMask = mask
        index = DecisionIndex(typeCount: types.count, typeAttributeMap: typeAttributeMap, avtab: avtab,
                              condEntries: condEntries)
    }

    func className(_ value: UInt32) -> String {
        value >= 1 && Int(value) <= classes.count ? classes[Int(value) - 1].name : "class\(value)"
    }
    func typeName(_ value: UInt32) -> String {
        value >= 1 && Int(value) <= types.count ? types[Int(value) - 1].name : "type\(value)"
    }
    func roleName(_ value: UInt32) -> String {
        value >= 1 && Int(value) <= roles.count ? roles[Int(value) - 1].name : "role\(value)"
    }
    func userName(_ value: UInt32) -> String {
        value >= 1 && Int(value) <= users.count ? users[Int(value) - 1].name : "user\(value)"
    }
    func booleanName(_ value: UInt32) -> String {
        value >= 1 && Int(value) <= booleans.count ? booleans[Int(value) - 1].name : "bool\(value)"
    }
    func sensitivityName(_ value: UInt32) -> String {
        guard value >= 1, Int(value) <= sensitivityByValue.count else { return "sens\(value)" }
        return sensitivities[sensitivityByValue[Int(value) - 1]].name
    }
    func categoryName(_ value: UInt32) -> String {
        guard value >= 1, Int(value) <= categoryByValue.count else { return "cat\(value)" }
        return categories[categoryByValue[Int(value) - 1]].name
    }
    /// The permission names set in `mask` for `tclass`, in bit order (bits without a permission are skipped).
    func permissionNames(_ tclass: UInt32, _ mask: UInt32) -> [String] {
        guard tclass >= 1, Int(tclass) <= classes.count else { return [] }
        let perms = classes[Int(tclass) - 1].permissions
        var out: [String] = []
        var m = mask
        while m != 0 {
            let b = m.trailingZeroBitCount
            m &= m - 1
            if b < perms.count, let name = perms[b] { out.append(name) }
        }
        return out
    }
}
