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
    }
}
