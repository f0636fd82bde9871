/// Looks paths up in a `FileContexts`, with its own lazily built DFA.
///
/// A matcher is not thread-safe: give each thread its own (`FileContexts.makeMatcher()`), or use
/// `FileContexts.lookup`, which shares one matcher behind a lock. A matcher builds each DFA state the first time
/// a path reaches it (subset construction over `FileContextsNFA`), so the first lookups in a region of the
/// file system pay for the states they create, and later ones cost one table read per byte of the path.
///
/// A matcher also remembers the states it went through for the previous path. A path that shares a leading part
/// with the previous one (the next file in the same directory, say) starts from the state where that part ends.
public final class FileContextsMatcher {
    let core: FileContextsCore
    let nfa: FileContextsNFA
    let classCount: Int

    // DFA states.
    private var stateNodes: [[Int32]] = []
    private var stateIndex: [[Int32]: Int32] = [:]
    private var storedNodes = 0
    /// `transitions[state * classCount + class]`: the next state, or `unknown` when not built yet. Two bytes an
    /// entry keep the table small enough to stay in cache (states are capped at `maxStates`).
    private var transitions: UnsafeMutablePointer<UInt16>
    static let unknown: UInt16 = .max
    private var transitionCapacity: Int
    /// Per state: index of its result at the end of the path (-1: not computed).
    private var endResult: [Int32] = []
    /// Per state: index of its result when the path's last byte, a newline, follows (-1: not computed).
    private var newlineResult: [Int32] = []
    /// Nine numbers per result: the specification (file order) that wins for each file-type query (0 = any
    /// type, 1...7 = `FileType.rawValue`) among those whose stem test is implied, or -1; then an index into
    /// `stemCandidates` (-1 for none) of the matched lines whose stem must still be compared with the path's.
    private var results: [Int32] = []
    private var stemCandidates: [[Int32]] = []
    static let resultWidth = 9
    /// Bumped each time the cache is dropped; remembered states of older epochs are not reused.
    private var epoch = 0
    private let byteClass: UnsafeMutablePointer<UInt8>
    /// Nodes reachable from the starts after the first byte (non-empty only for patterns such as `/a|/b`).
    private var floating: [Int32] = []

    /// Scratch space for building states, swapped out of the object while in use (so that the inner loops
    /// touch local variables only).
    struct Scratch {
        var mark: [UInt32]
        var generation: UInt32 = 0
        var stack: [Int32] = []
        var seeds: [Int32] = []
        var closed: [Int32] = []
    }
    private var scratch: Scratch

    /// The previous walk: its first `walkLength` key bytes, and the state after each of them (`walkStates[0]`
    /// is the start state).
    private var walkKey: UnsafeMutablePointer<UInt8>
    private var walkStates: UnsafeMutablePointer<UInt16>
    private var walkCapacity = 0
    private var walkLength = 0
    private var walkEpoch = -1
    /// Whether the previous walk checked its bytes for NUL and `//` (a clean-only walk did).
    private var walkChecked = false
    private var keyBuffer: [UInt8] = []
    private var aliasBuffer: [UInt8] = []

    /// The cache is dropped and rebuilt when it grows past these bounds, so memory stays bounded on any input.
    static let maxStates = 65_000
    static let maxStoredNodes = 12_000_000

    init(core: FileContextsCore) {
        self.core = core
        nfa = core.nfa()
        classCount = nfa.classCount
        byteClass = .allocate(capacity: 256)
        for b in 0..<256 { byteClass[b] = nfa.byteClass[b] }
        scratch = Scratch(mark: [UInt32](repeating: 0, count: nfa.nodeCount))
        transitionCapacity = 256 * classCount
        transitions = .allocate(capacity: transitionCapacity)
        walkCapacity = 256
        walkKey = .allocate(capacity: walkCapacity)
        walkStates = .allocate(capacity: walkCapacity + 1)
        var sc = scratch
        scratch = Scratch(mark: [])
        floating = FileContextsMatcher.closure(nfa, nfa.starts, atStart: false, atDollar: false, &sc)
        scratch = sc
        reset()
    }

    deinit {
        transitions.deallocate()
        byteClass.deallocate()
        walkKey.deallocate()
        walkStates.deallocate()
    }

    /// The number of DFA states built so far.
    public var stateCount: Int { stateNodes.count }
    /// The number of automaton nodes the built DFA states hold in all (a measure of the cache's memory).
    public var storedNodeCount: Int { storedNodes }

    private func reset() {
        stateNodes.removeAll(keepingCapacity: true)
        stateIndex.removeAll(keepingCapacity: true)
        storedNodes = 0
        endResult.removeAll(keepingCapacity: true)
        newlineResult.removeAll(keepingCapacity: true)
        results.removeAll(keepingCapacity: true)
        stemCandidates.removeAll(keepingCapacity: true)
        epoch += 1
        var sc = takeScratch()
        let start = FileContextsMatcher.closure(nfa, nfa.starts, atStart: true, atDollar: false, &sc)
        scratch = sc
        _ = intern(start)
    }

    private func takeScratch() -> Scratch {
        var sc = Scratch(mark: [])
        swap(&sc, &scratch)
        return sc
    }

    // MARK: Lookup

    /// Looks `path` up as libselinux's `selabel_lookup_raw` does, for a file of type `fileType` (nil: any type).
    public func lookup(_ path: String, fileType: FileType? = nil) -> FileContextsMatch {
        var p = path
        return p.withUTF8 { lookup(bytes: $0, fileType: fileType) }
    }

    /// Looks a path given as bytes up (paths need not be UTF-8).
    public func lookup(path: [UInt8], fileType: FileType? = nil) -> FileContextsMatch {
        path.withUnsafeBufferPointer { lookup(bytes: $0, fileType: fileType) }
    }

    /// Looks a path given as bytes up.
    public func lookup(bytes raw: UnsafeBufferPointer<UInt8>, fileType: FileType? = nil) -> FileContextsMatch {
        let spec = specification(for: raw, query: Int(fileType?.rawValue ?? 0))
        guard spec >= 0 else { return .noMatch }
        let s = FileContextSpecification(core: core, index: Int(spec))
        return core.records[Int(spec)].context < 0 ? .noLabel(s) : .labeled(s)
    }

    /// The winning specification's index, or -1.
    func specification(for raw: UnsafeBufferPointer<UInt8>, query: Int) -> Int32 {
        guard raw.count > 0, raw[0] == UInt8(ascii: "/") else { return -1 }
        // Fast path: no alias applies and the walk finds the path clean (no NUL, no `//`, no trailing `/`).
        if core.aliases.isEmpty || !core.aliases.applies(to: raw) {
            let r = walk(raw, query: query, cleanOnly: true)
            if r != FileContextsMatcher.unclean { return r }
        }
        // A path is a C string to libselinux: it ends at the first NUL.
        var n = raw.count
        if let z = raw.firstIndex(of: 0) { n = z }
        let key = UnsafeBufferPointer(rebasing: raw[0..<n])
        var cleaned = takeBuffer(&keyBuffer)
        FileContextsMatcher.clean(key, into: &cleaned)
        var aliased = takeBuffer(&aliasBuffer)
        let r: Int32
        let rewritten = cleaned.withUnsafeBufferPointer { core.aliases.rewrite($0, into: &aliased) }
        if rewritten {
            r = aliased.withUnsafeBufferPointer { walk($0, query: query, cleanOnly: false) }
        } else {
            r = cleaned.withUnsafeBufferPointer { walk($0, query: query, cleanOnly: false) }
        }
        keyBuffer = cleaned
        aliasBuffer = aliased
        return r
    }

    private func takeBuffer(_ b: inout [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        swap(&out, &b)
        out.removeAll(keepingCapacity: true)
        return out
    }

    static let unclean: Int32 = -2

    /// Runs the DFA over `key` and returns the winner for `query`. With `cleanOnly`, returns `unclean` as soon as
    /// the key turns out to need cleaning (a NUL, `//`, or a trailing `/`).
    private func walk(_ key: UnsafeBufferPointer<UInt8>, query: Int, cleanOnly: Bool) -> Int32 {
        let n = key.count
        guard n > 0 else { return -1 }
        if cleanOnly, n > 1, key[n - 1] == UInt8(ascii: "/") { return FileContextsMatcher.unclean }
        let endsWithNewline = key[n - 1] == 0x0A
        let end = endsWithNewline ? n - 1 : n

        if end + 1 > walkCapacity {
            let capacity = max(end + 1, walkCapacity * 2)
            let key2 = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            let states2 = UnsafeMutablePointer<UInt16>.allocate(capacity: capacity + 1)
            key2.update(from: walkKey, count: walkLength)
            states2.update(from: walkStates, count: walkLength + 1)
            walkKey.deallocate()
            walkStates.deallocate()
            walkKey = key2
            walkStates = states2
            walkCapacity = capacity
        }
        let previous = walkKey, states = walkStates
        // Resume after the part this key shares with the previous walk. A clean-only walk relies on the shared
        // part having been checked for NUL and `//` (an alias can produce `//`).
        var i = 0
        if walkEpoch == epoch, walkChecked || !cleanOnly {
            let limit = min(end, walkLength)
            while i < limit, previous[i] == key[i] { i &+= 1 }
        }
        let startEpoch = epoch
        states[0] = 0
        var state = i == 0 ? 0 : Int(states[i])
        var table = transitions
        let cc = classCount
        let cls = byteClass
        var prevSlash = i > 0 && key[i - 1] == UInt8(ascii: "/")
        while i < end {
            let b = key[i]
            if cleanOnly {
                let slash = b == UInt8(ascii: "/")
                if b == 0 || (slash && prevSlash) {
                    walkLength = i
                    walkEpoch = epoch == startEpoch ? epoch : -1
                    walkChecked = true
                    return FileContextsMatcher.unclean
                }
                prevSlash = slash
            }
            let c = Int(cls[Int(b)])
            var next = table[state &* cc &+ c]
            if next == FileContextsMatcher.unknown {
                next = UInt16(truncatingIfNeeded: step(from: Int32(state), byteClass: c))
                table = transitions
            }
            state = Int(next)
            previous[i] = b
            i &+= 1
            states[i] = next
        }
        walkLength = end
        walkEpoch = epoch == startEpoch ? epoch : -1
        walkChecked = cleanOnly
        let r = endsWithNewline ? newlineResultIndex(Int32(state)) : endResultIndex(Int32(state))
        let base = r &* FileContextsMatcher.resultWidth
        var winner = results[base &+ query]
        let extra = results[base &+ 8]
        if extra >= 0 { winner = stemChecked(winner, candidates: stemCandidates[Int(extra)], key: key, query: query) }
        // The plain paths: the key itself, or the key without its final newline.
        let literal = core.literals.winner(UnsafeBufferPointer(rebasing: key[0..<end]), query: query)
        if literal >= 0, winner < 0 || nfa.priority[Int(literal)] > nfa.priority[Int(winner)] { return literal }
        return winner
    }

    /// The best of `winner` and the candidates whose stem is the path's stem (libselinux's stem test).
    private func stemChecked(_ winner: Int32, candidates: [Int32], key: UnsafeBufferPointer<UInt8>, query: Int) -> Int32 {
        // The path's stem: the bytes before the first '/' after the first byte; none without such a '/'.
        var keyStem = 0
        if key.count > 1, let slash = key[1...].firstIndex(of: UInt8(ascii: "/")) { keyStem = slash }
        var best = winner
        for spec in candidates {
            let r = core.records[Int(spec)]
            let mode = Int(r.fileType)
            guard query == 0 || mode == 0 || mode == query, Int(r.stemLength) == keyStem, keyStem > 0 else { continue }
            let text = core.sources[Int(r.source)].bytes
            let start = Int(r.regexStart)
            var same = true
            for k in 0..<keyStem where text[start + k] != key[k] { same = false; break }
            guard same else { continue }
            if best < 0 || nfa.priority[Int(spec)] > nfa.priority[Int(best)] { best = spec }
        }
        return best
    }

    /// Collapses runs of `/` to one and drops one trailing `/`, as libselinux does before the aliases.
    static func clean(_ key: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var previousSlash = false
        for b in key {
            let slash = b == UInt8(ascii: "/")
            if slash && previousSlash { continue }
            out.append(b)
            previousSlash = slash
        }
        if out.count > 1, out[out.count - 1] == UInt8(ascii: "/") { out.removeLast() }
    }

    // MARK: Building states

    /// Every consuming node (byte sets, accepts) and pending `$` node reachable from `seeds` by empty moves,
    /// sorted. `^` passes only when `atStart`, `$` only when `atDollar`.
    static func closure(_ nfa: FileContextsNFA, _ seeds: [Int32], atStart: Bool, atDollar: Bool,
                        _ sc: inout Scratch) -> [Int32] {
        var out: [Int32] = []
        closure(nfa, seeds, atStart: atStart, atDollar: atDollar, &sc, into: &out)
        out.sort()
        return out
    }

    static func closure(_ nfa: FileContextsNFA, _ seeds: [Int32], atStart: Bool, atDollar: Bool,
                        _ sc: inout Scratch, into out: inout [Int32]) {
        sc.generation &+= 1
        if sc.generation == 0 {
            for k in sc.mark.indices { sc.mark[k] = 0 }
            sc.generation = 1
        }
        let g = sc.generation
        var stack: [Int32] = []
        swap(&stack, &sc.stack)
        stack.removeAll(keepingCapacity: true)
        stack.append(contentsOf: seeds)
        let nodes = nfa.buffer.base
        sc.mark.withUnsafeMutableBufferPointer { mark in
            while let n32 = stack.popLast() {
                let n = Int(n32)
                if mark[n] == g { continue }
                mark[n] = g
                let node = nodes[n]
                switch node.kind {
                case NFABuilder.Kind.byteSet.rawValue, NFABuilder.Kind.accept.rawValue:
                    out.append(n32)
                case NFABuilder.Kind.split.rawValue:
                    if node.out2 != NFABuilder.none { stack.append(node.out2) }
                    stack.append(node.out)
                case NFABuilder.Kind.startAnchor.rawValue:
                    if atStart { stack.append(node.out) }
                default: // endAnchor
                    if atDollar { stack.append(node.out) } else { out.append(n32) }
                }
            }
        }
        swap(&stack, &sc.stack)
    }

    /// Appends to `seeds` the nodes reached from `nodes` by consuming `byte` (accepts stay), and the floating
    /// starts.
    static func consume(_ nfa: FileContextsNFA, _ nodes: [Int32], byte: UInt8, floating: [Int32],
                        into seeds: inout [Int32]) {
        let all = nfa.buffer.base
        nfa.setWords.withUnsafeBufferPointer { words in
            let wordIndex = Int(byte >> 6)
            let bit = UInt64(1) << UInt64(byte & 63)
            for n32 in nodes {
                let node = all[Int(n32)]
                switch node.kind {
                case NFABuilder.Kind.byteSet.rawValue:
                    if words[Int(node.arg) &* 4 &+ wordIndex] & bit != 0 { seeds.append(node.out) }
                case NFABuilder.Kind.accept.rawValue:
                    seeds.append(n32)
                default:
                    break
                }
            }
        }
        seeds.append(contentsOf: floating)
    }

    /// Builds the transition of `state` on byte class `c` and returns the target state.
    private func step(from state: Int32, byteClass c: Int) -> Int32 {
        var sc = takeScratch()
        var seeds: [Int32] = [], closed: [Int32] = []
        swap(&seeds, &sc.seeds)
        swap(&closed, &sc.closed)
        seeds.removeAll(keepingCapacity: true)
        closed.removeAll(keepingCapacity: true)
        FileContextsMatcher.consume(nfa, stateNodes[Int(state)], byte: nfa.classRepresentative[c],
                                    floating: floating, into: &seeds)
        FileContextsMatcher.closure(nfa, seeds, atStart: false, atDollar: false, &sc, into: &closed)
        closed.sort()
        swap(&seeds, &sc.seeds)
        let target = closed
        swap(&closed, &sc.closed)
        scratch = sc
        if stateNodes.count >= FileContextsMatcher.maxStates || storedNodes >= FileContextsMatcher.maxStoredNodes {
            reset()
            return intern(target)
        }
        let t = intern(target)
        transitions[Int(state) * classCount + c] = UInt16(truncatingIfNeeded: t)
        return t
    }

    private func intern(_ nodes: [Int32]) -> Int32 {
        if let s = stateIndex[nodes] { return s }
        let s = Int32(stateNodes.count)
        stateNodes.append(nodes)
        stateIndex[nodes] = s
        storedNodes += nodes.count
        endResult.append(-1)
        newlineResult.append(-1)
        let needed = (Int(s) + 1) * classCount
        if needed > transitionCapacity {
            let capacity = max(needed, transitionCapacity * 2)
            let grown = UnsafeMutablePointer<UInt16>.allocate(capacity: capacity)
            grown.update(from: transitions, count: Int(s) * classCount)
            transitions.deallocate()
            transitions = grown
            transitionCapacity = capacity
        }
        (transitions + Int(s) * classCount).initialize(repeating: FileContextsMatcher.unknown, count: classCount)
        return s
    }

    // MARK: Results

    private func endResultIndex(_ state: Int32) -> Int {
        let r = endResult[Int(state)]
        if r >= 0 { return Int(r) }
        var sc = takeScratch()
        let index = result(atEndOf: stateNodes[Int(state)], &sc)
        scratch = sc
        endResult[Int(state)] = Int32(index)
        return index
    }

    /// The result for a path whose last byte is a newline, from the state before that byte: `$` holds there
    /// too, so the state is first extended through its `$` nodes, then steps over the newline.
    private func newlineResultIndex(_ state: Int32) -> Int {
        let r = newlineResult[Int(state)]
        if r >= 0 { return Int(r) }
        var sc = takeScratch()
        let nodes = stateNodes[Int(state)]
        var extended = nodes
        let dollarSeeds = dollarSuccessors(of: nodes)
        if !dollarSeeds.isEmpty {
            FileContextsMatcher.closure(nfa, dollarSeeds, atStart: false, atDollar: true, &sc, into: &extended)
        }
        var seeds: [Int32] = []
        FileContextsMatcher.consume(nfa, extended, byte: 0x0A, floating: floating, into: &seeds)
        var after: [Int32] = []
        FileContextsMatcher.closure(nfa, seeds, atStart: false, atDollar: false, &sc, into: &after)
        let index = result(atEndOf: after, &sc)
        scratch = sc
        newlineResult[Int(state)] = Int32(index)
        return index
    }

    private func dollarSuccessors(of nodes: [Int32]) -> [Int32] {
        var s: [Int32] = []
        for n in nodes where nfa.node(Int(n)).kind == NFABuilder.Kind.endAnchor.rawValue { s.append(nfa.node(Int(n)).out) }
        return s
    }

    /// Passes the `$` nodes of `nodes` (the path ends here) and computes the winners among the accepts.
    private func result(atEndOf nodes: [Int32], _ sc: inout Scratch) -> Int {
        var accepts: [Int32] = nodes.filter { nfa.node(Int($0)).kind == NFABuilder.Kind.accept.rawValue }
        let dollarSeeds = dollarSuccessors(of: nodes)
        if !dollarSeeds.isEmpty {
            var reached: [Int32] = []
            FileContextsMatcher.closure(nfa, dollarSeeds, atStart: false, atDollar: true, &sc, into: &reached)
            accepts += reached.filter { nfa.node(Int($0)).kind == NFABuilder.Kind.accept.rawValue }
        }
        var best = [Int32](repeating: -1, count: FileContextsMatcher.resultWidth)
        var checked: [Int32] = []
        for a in accepts {
            let spec = nfa.node(Int(a)).arg
            if nfa.stemChecked[Int(spec)] { checked.append(spec); continue }
            let mode = Int(nfa.specMode[Int(spec)])
            let priority = nfa.priority[Int(spec)]
            for q in 0..<8 where q == 0 || mode == 0 || mode == q {
                if best[q] < 0 || priority > nfa.priority[Int(best[q])] { best[q] = spec }
            }
        }
        if !checked.isEmpty {
            best[8] = Int32(stemCandidates.count)
            stemCandidates.append(checked)
        }
        let index = results.count / FileContextsMatcher.resultWidth
        results += best
        return index
    }
}
