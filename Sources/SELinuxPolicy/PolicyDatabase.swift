import SELinux

/// A binary SELinux (or Xen FLASK) policy, read and checked, ready for access decisions.
///
/// The value is immutable and holds no global state: several policies can be loaded at once, and boolean
/// overrides (`settingBooleans`) give a new value that shares the policy's tables. Reading does no file I/O;
/// callers hand in the bytes.
public struct PolicyDatabase: Sendable {
    let storage: PolicyStorage
    /// Current boolean values, by value - 1.
    let booleanValues: [Bool]
    /// The state of each conditional node under `booleanValues`: 1 true, 0 false.
    let nodeStates: [UInt8]
    let canonicalCategories: Bool
    let canonicalSensitivities: Bool

    /// Reads and checks a binary policy. Throws `PolicyFormatError` naming the byte offset, the section, and
    /// what was expected against what was found.
    public init(bytes: [UInt8], source: String? = nil) throws {
        do {
            let s = try bytes.withUnsafeBytes { try PolicyReader.read($0) }
            self.init(storage: s)
        } catch let e as PolicyFormatError {
            throw source.map { e.from(source: $0) } ?? e
        }
    }

    /// Reads and checks a binary policy from raw memory.
    public init(bytes: UnsafeRawBufferPointer, source: String? = nil) throws {
        do {
            self.init(storage: try PolicyReader.read(bytes))
        } catch let e as PolicyFormatError {
            throw source.map { e.from(source: $0) } ?? e
        }
    }

    init(storage: PolicyStorage) {
        self.storage = storage
        let values = storage.booleans.map(\.state)
        booleanValues = values
        nodeStates = Self.evaluateNodes(storage.condNodes, values)
        var canon = true
        for (i, idx) in storage.categoryByValue.enumerated() where storage.categories[idx].name != "c\(i)" {
            canon = false
            break
        }
        canonicalCategories = canon
        var canonS = true
        for (i, idx) in storage.sensitivityByValue.enumerated() where storage.sensitivities[idx].name != "s\(i)" {
            canonS = false
            break
        }
        canonicalSensitivities = canonS
    }

    init(storage: PolicyStorage, booleanValues: [Bool], canonicalCategories: Bool, canonicalSensitivities: Bool) {
        self.storage = storage
        self.booleanValues = booleanValues
        nodeStates = Self.evaluateNodes(storage.condNodes, booleanValues)
        self.canonicalCategories = canonicalCategories
        self.canonicalSensitivities = canonicalSensitivities
    }

    static func evaluateNodes(_ nodes: [CondNode], _ values: [Bool]) -> [UInt8] {
        nodes.map { evaluate($0.expr, values) ? 1 : 0 }
    }

    /// Evaluates a conditional expression (checked at load: every operator has its operands).
    static func evaluate(_ expr: [CondExprItem], _ values: [Bool]) -> Bool {
        var stack: [Bool] = []
        stack.reserveCapacity(8)
        for item in expr {
            switch item.kind {
            case 1:
                let i = Int(item.boolean) - 1
                stack.append(i >= 0 && i < values.count ? values[i] : false)
            case 2:
                if let v = stack.popLast() { stack.append(!v) }
            default:
                guard let b = stack.popLast(), let a = stack.popLast() else { return false }
                switch item.kind {
                case 3: stack.append(a || b)
                case 4: stack.append(a && b)
                case 5: stack.append(a != b)
                case 6: stack.append(a == b)
                default: stack.append(a != b)
                }
            }
        }
        return stack.last ?? false
    }

    // MARK: - Facts

    public var target: PolicyTarget { storage.target }
    public var version: Int { storage.version }
    public var isMLS: Bool { storage.mls }
    public var handleUnknown: HandleUnknown { storage.handleUnknown }
}

// MARK: - Booleans

extension PolicyDatabase {
    /// The current value of a boolean, or nil when the policy has none by that name.
    public func booleanValue(_ name: String) -> Bool? {
        guard let v = storage.booleanByName[name] else { return nil }
        return booleanValues[Int(v) - 1]
    }

    /// The same policy with some booleans set, without reloading. Throws when a name is not a boolean of the
    /// policy.
    public func settingBooleans(_ overrides: [String: Bool]) throws -> PolicyDatabase {
        var values = booleanValues
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let v = storage.booleanByName[name] else {
                throw unknown("boolean", name, hint: "list the booleans with 'svirt policy info --booleans'")
            }
            values[Int(v) - 1] = value
        }
        return PolicyDatabase(storage: storage, booleanValues: values, canonicalCategories: canonicalCategories,
                              canonicalSensitivities: canonicalSensitivities)
    }

    func unknown(_ kind: String, _ name: String, hint: String) -> PolicyFormatError {
        PolicyFormatError(code: .unknownName, offset: 0, section: "the policy has no \(kind) '\(name)'",
                          expected: "a \(kind) the policy defines", found: "'\(name)'; \(hint)")
    }
}

// MARK: - Classes and permissions

extension PolicyDatabase {
    /// A class by name.
    public func policyClass(named name: String) -> PolicyClass? {
        guard let v = storage.classByName[name] else { return nil }
        return publicClass(v)
    }

    func publicClass(_ v: UInt32) -> PolicyClass {
        let c = storage.classes[Int(v) - 1]
        return PolicyClass(name: c.name, value: Int(v), common: c.commonName, permissionSlots: c.permissions)
    }

    /// The vector for permission names of a class. Throws when the class or a permission is unknown.
    public func permissions(_ names: [String], of className: String) throws -> AccessVector {
        guard let v = storage.classByName[className] else {
            throw unknown("class", className, hint: "e.g. file, dir, process")
        }
        var m: UInt32 = 0
        for n in names {
            guard let b = storage.permissionByName[Int(v) - 1][n] else {
                let known = storage.classes[Int(v) - 1].permissions.compactMap { $0 }.joined(separator: " ")
                throw unknown("permission", "\(className) \(n)", hint: "class \(className) has: \(known)")
            }
            m |= 1 << b
        }
        return AccessVector(rawValue: m)
    }
}
