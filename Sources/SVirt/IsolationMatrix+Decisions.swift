import SELinux

extension IsolationMatrix {
    /// How much of the matrix to keep.
    public enum Detail: String, Sendable, Codable, Hashable {
        /// Every cell (for `--json`, `--html`, `--svg`, `--queries` and the text grid).
        case full
        /// Only the cells the findings come from: each VM's own and shared resources, and every cell that gives
        /// access. The other cells are decided and counted (`omittedCells`), every one refused; the findings are
        /// the same as with `.full`.
        case findings
        /// `.full` up to `automaticLimit` VMs with a row, `.findings` above.
        case automatic

        /// Where `.automatic` stops keeping every cell.
        public static let automaticLimit = 40
    }

    /// Access decisions for the matrix, each put to the checker once per class of cells that must get the same
    /// answer. An answer depends only on the two contexts' users, roles and types, the object class, and how
    /// the four levels relate (the low and high of each: the constraints compare `l1 l2 h1 h2` with `eq`, `dom`,
    /// `domby` and `incomp`, nothing else about a level). N VMs with N private disks give about 2N² cells but
    /// a few such classes, so the checker is asked a few times, and each cell costs a few level comparisons and
    /// one table lookup.
    final class DecisionMemo {
        struct Handle {
            var context: SecurityContext
            var identity: Int
            var low: Int
            var high: Int
        }

        let checker: any AccessChecker
        private var identities: [String: Int] = [:]
        private var levelIDs: [SecurityLevel: Int] = [:]
        private var levels: [SecurityLevel] = []
        private var classes: [String: Int] = [:]
        private var decided: [UInt64: Int] = [:]
        /// The answers, by the index `answer` returns.
        private(set) var answers: [[Permission]] = []
        /// Whether each answer allows a permission that gives access (`accessPermissions`).
        private(set) var crosses: [Bool] = []
        /// Cells answered.
        private(set) var asked = 0

        init(checker: any AccessChecker) { self.checker = checker }

        func handle(_ c: SecurityContext) -> Handle {
            let key = "\(c.user):\(c.role):\(c.type)"
            let identity: Int
            if let i = identities[key] { identity = i } else { identity = identities.count; identities[key] = identity }
            guard let range = c.range else { return Handle(context: c, identity: identity, low: -1, high: -1) }
            return Handle(context: c, identity: identity, low: levelID(range.low), high: levelID(range.high))
        }

        private func levelID(_ l: SecurityLevel) -> Int {
            if let i = levelIDs[l] { return i }
            levels.append(l)
            levelIDs[l] = levels.count - 1
            return levels.count - 1
        }

        /// 0 equal, 1 a dominates b, 2 b dominates a, 3 incomparable.
        @inline(__always) private func relation(_ a: Int, _ b: Int) -> UInt64 {
            if a == b { return 0 }
            if a < 0 || b < 0 { return 3 }   // a context without a level
            if levels[a].dominates(levels[b]) { return 1 }
            return levels[b].dominates(levels[a]) ? 2 : 3
        }

        /// The index of the answer for `source` using `target` as `objectClass`, asking for `permissions` (the
        /// class decides which list: one class, one list).
        func answer(_ source: Handle, _ target: Handle, _ objectClass: String, _ permissions: [String]) throws -> Int {
            asked += 1
            let cls: Int
            if let c = classes[objectClass] { cls = c } else { cls = classes.count; classes[objectClass] = cls }
            let rel = relation(source.low, target.low) | relation(source.low, target.high) << 2
                | relation(source.high, target.low) << 4 | relation(source.high, target.high) << 6
                | relation(source.low, source.high) << 8 | relation(target.low, target.high) << 10
            let key = UInt64(source.identity) << 40 | UInt64(target.identity) << 20 | UInt64(cls) << 12 | rel
            if let i = decided[key] { return i }
            let perms = try IsolationMatrix.ask(checker, source.context, target.context, objectClass, permissions)
            answers.append(perms)
            crosses.append(perms.contains { $0.allowed && IsolationMatrix.accessPermissions.contains($0.name) })
            decided[key] = answers.count - 1
            return answers.count - 1
        }

        /// Distinct questions put to the checker.
        var distinct: Int { answers.count }

        /// How a context's own low and high levels relate (0 for a single level).
        func selfRelation(_ h: Handle) -> UInt64 { relation(h.low, h.high) }

        var levelCount: Int { levels.count }

        /// For each level id, the ids of the levels comparable with it (itself included), found without comparing
        /// every pair: a level of at most `small` categories is compared only with the levels whose categories are
        /// a subset of its own (looked up by category set, 2^k of them), and only the few levels with more
        /// categories (static ranges such as c0.c1023) are compared with every level.
        func comparableLevels(small: Int = 6) -> [[Int]] {
            var out = [[Int]](repeating: [], count: levels.count)
            var byCategories: [CategorySet: [Int]] = [:]
            for (i, l) in levels.enumerated() { byCategories[l.categories, default: []].append(i) }
            for (x, l) in levels.enumerated() {
                let cats = Array(l.categories)
                if cats.count <= small {
                    for mask in 0..<(1 << cats.count) {
                        var subset: [Int] = []
                        for (bit, c) in cats.enumerated() where mask & (1 << bit) != 0 { subset.append(c) }
                        for y in byCategories[CategorySet(subset)] ?? [] where levels[y].sensitivity <= l.sensitivity {
                            out[x].append(y)
                            if y != x { out[y].append(x) }
                        }
                    }
                } else {
                    for (y, m) in levels.enumerated() where y != x && (l.dominates(m) || m.dominates(l)) {
                        out[x].append(y)
                        out[y].append(x)
                    }
                    out[x].append(x)
                }
            }
            return out
        }
    }

    /// The cells `.findings` keeps, in the order `.full` has them, and how many it leaves out, without visiting
    /// every pair: for a row, the targets whose levels are comparable with the row's (by `comparableLevels`) and
    /// the ones it uses are decided one by one; every other target of a group (same user, role, type, class and
    /// own level relation) gets the group's answer for incomparable levels, decided once through one of them. Only
    /// when that answer gives access (a FAIL for each such cell) are the group's cells visited.
    static func keptCells(rows: [String], rowHandles: [DecisionMemo.Handle],
                          targets: [(Resource, DecisionMemo.Handle, Set<String>)],
                          memo: DecisionMemo) throws -> (cells: [Cell], omitted: Int) {
        // Targets: the resources, then each row's process.
        let resourceCount = targets.count
        var handles = targets.map(\.1)
        handles += rowHandles
        let total = handles.count
        func objectClass(_ t: Int) -> String { t < resourceCount ? targets[t].0.objectClass : "process" }
        // Groups of targets whose answers differ only through the relations of their levels to the row's.
        var groupIndex: [String: Int] = [:]
        var groups: [[Int]] = []
        var groupOf = [Int](repeating: 0, count: total)
        for t in 0..<total {
            let key = "\(handles[t].identity)\u{0}\(objectClass(t))\u{0}\(memo.selfRelation(handles[t]))"
            let g: Int
            if let i = groupIndex[key] { g = i } else { g = groups.count; groupIndex[key] = g; groups.append([]) }
            groups[g].append(t)
            groupOf[t] = g
        }
        let comparable = memo.comparableLevels()
        var byLevel = [[Int]](repeating: [], count: memo.levelCount)
        for t in 0..<total {
            let h = handles[t]
            if h.low >= 0 { byLevel[h.low].append(t) }
            if h.high >= 0 && h.high != h.low { byLevel[h.high].append(t) }
        }
        let rowIndex = Dictionary(rows.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var used = [[Int]](repeating: [], count: rows.count)
        for (t, (_, _, users)) in targets.enumerated() {
            for u in users { if let r = rowIndex[u] { used[r].append(t) } }
        }
        var stamp = [Int](repeating: -1, count: total)
        var perGroup = [Int](repeating: 0, count: groups.count)
        var cells: [Cell] = []
        var omitted = 0
        for (i, sh) in rowHandles.enumerated() {
            var candidates: [Int] = []
            func add(_ t: Int) {
                if stamp[t] != i { stamp[t] = i; candidates.append(t) }
            }
            add(resourceCount + i)   // its own process: no cell
            for x in Set([sh.low, sh.high]) where x >= 0 {
                for y in comparable[x] { for t in byLevel[y] { add(t) } }
            }
            for t in used[i] { add(t) }
            var kept: [(Int, Cell)] = []
            func decide(_ t: Int) throws {
                let cls = objectClass(t)
                let a = try memo.answer(sh, handles[t], cls, cls == "process" ? processPermissions : filePermissions)
                if t < resourceCount {
                    let (r, _, users) = targets[t]
                    if users.contains(rows[i]) || memo.crosses[a] { kept.append((t, cell(rows[i], r, memo.answers[a]))) } else { omitted += 1 }
                } else if memo.crosses[a] {
                    kept.append((t, Cell(vm: rows[i], target: "process:\(rows[t - resourceCount])", objectClass: "process",
                                         relation: .foreign, permissions: memo.answers[a], needed: [], state: .fail)))
                } else {
                    omitted += 1
                }
            }
            for g in perGroup.indices { perGroup[g] = 0 }
            for t in candidates {
                perGroup[groupOf[t]] += 1
                if t != resourceCount + i { try decide(t) }
            }
            for (g, members) in groups.enumerated() where members.count > perGroup[g] {
                guard let representative = members.first(where: { stamp[$0] != i }) else { continue }
                let cls = objectClass(representative)
                let a = try memo.answer(sh, handles[representative], cls, cls == "process" ? processPermissions : filePermissions)
                if memo.crosses[a] {
                    for t in members where stamp[t] != i { try decide(t) }
                } else {
                    omitted += members.count - perGroup[g]
                }
            }
            kept.sort { $0.0 < $1.0 }
            cells += kept.map(\.1)
        }
        return (cells, omitted)
    }
}
