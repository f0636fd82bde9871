import SELinux

/// The lookup structures the decision engine uses, built once per policy.
///
/// - The type→attribute map as one flat array (`attrValues`, sliced by `attrOffsets`).
/// - For every type value that appears in another type's map (the attributes), a bitmap of its member types,
///   so "does rule target `t` cover type `T`" is one bit test.
/// - The access vector rules grouped by source type, then by class, sorted by target. A decision walks the
///   source's attributes and, for each, only the rules of the one class asked about.
struct DecisionIndex: Sendable {
    struct Group: Sendable {
        var tclass: UInt16
        var start: Int32
        var count: Int32
    }
    struct Packed: Sendable {
        var target: UInt16
        var spec: UInt16
        var data: UInt32
        var ref: Int32       // index into the condEntries for conditional rules
    }
    struct RuleIndex: Sendable {
        var sourceOffsets: [Int32]   // typeCount + 2, groups of source value v: sourceOffsets[v] ..< sourceOffsets[v+1]
        var groups: [Group]
        var entries: [Packed]
    }

    let typeCount: Int
    let attrOffsets: [Int32]
    let attrValues: [UInt16]
    let memberOffsets: [Int32]   // per type value (index v), word offset into memberWords or -1
    let memberWords: [UInt64]
    let wordsPerSet: Int
    let av: RuleIndex
    let cond: RuleIndex
    /// Unconditional type rules keyed by source, target, class and kind.
    let typeRules: [UInt64: UInt32]
    /// Conditional type rules: the entry indexes per key.
    let condTypeRules: [UInt64: [Int32]]

    @inline(__always) static func typeRuleKey(_ s: UInt32, _ t: UInt32, _ c: UInt32, _ spec: UInt16) -> UInt64 {
        UInt64(s & 0xffff) << 48 | UInt64(t & 0xffff) << 32 | UInt64(c & 0xffff) << 16 | UInt64(spec)
    }

    init(typeCount: Int, typeAttributeMap: [CategorySet], avtab: [AVEntry], condEntries: [AVEntry]) {
        self.typeCount = typeCount
        var offsets = [Int32](repeating: 0, count: typeCount + 1)
        var values: [UInt16] = []
        values.reserveCapacity(typeCount * 8)
        var appearsElsewhere = [Bool](repeating: false, count: typeCount + 1)
        for i in 0..<typeCount {
            offsets[i] = Int32(values.count)
            for b in typeAttributeMap[i] {
                values.append(UInt16(b + 1))
                if b != i { appearsElsewhere[b + 1] = true }
            }
        }
        offsets[typeCount] = Int32(values.count)
        attrOffsets = offsets
        attrValues = values

        let wps = (typeCount + 1 + 63) / 64
        wordsPerSet = wps
        var mOffsets = [Int32](repeating: -1, count: typeCount + 1)
        var next: Int32 = 0
        for v in 1...max(1, typeCount) where v <= typeCount && appearsElsewhere[v] {
            mOffsets[v] = next
            next += Int32(wps)
        }
        var words = [UInt64](repeating: 0, count: Int(next))
        for i in 0..<typeCount {
            let member = i + 1
            for k in Int(offsets[i])..<Int(offsets[i + 1]) {
                let a = Int(values[k])
                let o = mOffsets[a]
                if o >= 0 { words[Int(o) + member >> 6] |= 1 << UInt64(member & 63) }
            }
        }
        memberOffsets = mOffsets
        memberWords = words

        av = Self.build(typeCount: typeCount, entries: avtab, isCond: false)
        cond = Self.build(typeCount: typeCount, entries: condEntries, isCond: true)
        var tr: [UInt64: UInt32] = [:]
        for e in avtab where e.specified & AVSpec.type != 0 {
            tr[Self.typeRuleKey(UInt32(e.source), UInt32(e.target), UInt32(e.tclass), e.specified)] = e.data
        }
        typeRules = tr
        var ctr: [UInt64: [Int32]] = [:]
        for (i, e) in condEntries.enumerated() where e.specified & AVSpec.type != 0 {
            ctr[Self.typeRuleKey(UInt32(e.source), UInt32(e.target), UInt32(e.tclass), e.specified), default: []].append(Int32(i))
        }
        condTypeRules = ctr
    }

    /// Groups the access vector entries by source, then class, then target: a counting sort by source, then a
    /// sort of each (small) source bucket by packed (class, target, kind).
    static func build(typeCount: Int, entries: [AVEntry], isCond: Bool) -> RuleIndex {
        var counts = [Int32](repeating: 0, count: typeCount + 2)
        var n = 0
        for e in entries where e.specified & AVSpec.av != 0 {
            counts[Int(e.source)] += 1
            n += 1
        }
        var starts = [Int32](repeating: 0, count: typeCount + 2)
        var acc: Int32 = 0
        for v in 0..<(typeCount + 2) {
            starts[v] = acc
            acc += counts[v]
        }
        // (key, entry) in source buckets.
        var keys = [UInt64](repeating: 0, count: n)
        var refs = [Int32](repeating: 0, count: n)
        var fill = starts
        for (i, e) in entries.enumerated() where e.specified & AVSpec.av != 0 {
            let pos = Int(fill[Int(e.source)])
            fill[Int(e.source)] += 1
            keys[pos] = UInt64(e.tclass) << 32 | UInt64(e.target) << 16 | UInt64(e.specified)
            refs[pos] = Int32(i)
        }
        var packed: [Packed] = []
        packed.reserveCapacity(n)
        var groups: [Group] = []
        var sourceOffsets = [Int32](repeating: 0, count: typeCount + 2)
        var order: [Int] = []
        for v in 0..<(typeCount + 1) {
            sourceOffsets[v] = Int32(groups.count)
            let lo = Int(starts[v]), hi = Int(starts[v + 1])
            if lo == hi { continue }
            order.removeAll(keepingCapacity: true)
            order.append(contentsOf: lo..<hi)
            order.sort { keys[$0] < keys[$1] }
            var currentClass: UInt16 = 0
            var firstInBucket = true
            for p in order {
                let e = entries[Int(refs[p])]
                if firstInBucket || currentClass != e.tclass {
                    firstInBucket = false
                    groups.append(Group(tclass: e.tclass, start: Int32(packed.count), count: 0))
                    currentClass = e.tclass
                }
                groups[groups.count - 1].count += 1
                packed.append(Packed(target: e.target, spec: e.specified, data: e.data, ref: isCond ? refs[p] : -1))
            }
        }
        sourceOffsets[typeCount + 1] = Int32(groups.count)
        return RuleIndex(sourceOffsets: sourceOffsets, groups: groups, entries: packed)
    }

    /// True when a rule naming `ruleTarget` applies to type `t` (the type itself or an attribute holding it).
    @inline(__always) func covers(_ ruleTarget: UInt16, _ t: UInt32) -> Bool {
        if UInt32(ruleTarget) == t { return true }
        let o = memberOffsets[Int(ruleTarget)]
        if o < 0 { return false }
        return memberWords[Int(o) + Int(t >> 6)] & (1 << UInt64(t & 63)) != 0
    }
}
