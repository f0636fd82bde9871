/// The nondeterministic automaton of every file_contexts specification at once (Thompson construction over
/// bytes), built by `RegexCompiler` and run by `FileContextsMatcher` as a lazily built DFA.
///
/// Node kinds:
/// - `byteSet`: consumes one byte of set `arg`, then goes to `out`;
/// - `split`: an empty move to `out` and, unless it is `none`, to `out2`;
/// - `startAnchor` (`^`): an empty move to `out` that holds only before the first byte;
/// - `endAnchor` (`$`): an empty move to `out` that holds at the end, and before a final newline (PCRE's `$`
///   without `DOLLAR_ENDONLY`);
/// - `accept`: specification `arg` has matched. Accept nodes are sticky: they consume any byte and stay, because
///   PCRE reports a match found anywhere in the subject (this matters only for patterns such as `/a|/b`, whose
///   alternatives libselinux's `^...$` wrapping does not anchor).
/// A fragment of an automaton under construction: its start node and the list of its dangling edges.
struct Fragment { var start: Int32; var head: Int32 }

/// What `RegexCompiler` builds into: the automaton itself (`NFABuilder`), or `NodeCounter`, which only counts,
/// for checking expressions when a file is opened.
protocol AutomatonSink {
    var count: Int { get }
    mutating func intern(_ s: ByteSet) -> Int32
    mutating func literalChain(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Fragment
    mutating func byteFragment(set: Int32) -> Fragment
    mutating func emptyFragment() -> Fragment
    mutating func anchorFragment(_ k: NFABuilder.Kind) -> Fragment
    mutating func concat(_ a: Fragment, _ b: Fragment) -> Fragment
    mutating func alternate(_ a: Fragment, _ b: Fragment) -> Fragment
    mutating func star(_ a: Fragment) -> Fragment
    mutating func plus(_ a: Fragment) -> Fragment
    mutating func optional(_ a: Fragment) -> Fragment
    mutating func clone(_ f: Fragment, nodes range: Range<Int>) -> Fragment
}

/// Counts the nodes an expression would need, and builds nothing.
struct NodeCounter: AutomatonSink {
    private(set) var count = 0
    private static let fragment = Fragment(start: 0, head: -1)
    mutating func intern(_ s: ByteSet) -> Int32 { 0 }
    mutating func literalChain(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Fragment {
        count += range.count
        return NodeCounter.fragment
    }
    mutating func byteFragment(set: Int32) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func emptyFragment() -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func anchorFragment(_ k: NFABuilder.Kind) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func concat(_ a: Fragment, _ b: Fragment) -> Fragment { NodeCounter.fragment }
    mutating func alternate(_ a: Fragment, _ b: Fragment) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func star(_ a: Fragment) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func plus(_ a: Fragment) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func optional(_ a: Fragment) -> Fragment { count += 1; return NodeCounter.fragment }
    mutating func clone(_ f: Fragment, nodes range: Range<Int>) -> Fragment {
        count += range.count
        return NodeCounter.fragment
    }
}

struct NFABuilder: AutomatonSink {
    enum Kind: UInt8 { case byteSet = 0, split, startAnchor, endAnchor, accept }
    static let none: Int32 = .min

    struct Node {
        var kind: UInt8
        var out: Int32
        var out2: Int32
        var arg: Int32
    }

    /// The nodes, in a buffer the builder owns until it hands it to `FileContextsNFA`.
    var buffer: NodeBuffer
    private(set) var count = 0
    /// Four words per set. Sets 0...255 are the single bytes, 256 is every byte.
    var setWords: [UInt64] = []
    var setIndex: [ByteSet: Int32] = [:]
    /// Bytes used as single-byte sets, and whether each set with several bytes is used.
    var singleBytesUsed = ByteSet()
    var multiSetUsed: [Bool] = []

    /// The most nodes the whole automaton may have; a file that needs more is refused with an error.
    static let nodeLimit = 8_000_000

    init(expectedNodes: Int = 1 << 12) {
        buffer = NodeBuffer(capacity: max(16, expectedNodes))
        setWords.reserveCapacity(4 * 512)
        for b in 0...255 { _ = intern(ByteSet(byte: UInt8(b))) }
        _ = intern(.all)
    }


    mutating func intern(_ s: ByteSet) -> Int32 {
        if let i = setIndex[s] { return i }
        let i = Int32(setIndex.count)
        setIndex[s] = i
        multiSetUsed.append(false)
        setWords.append(s.w0); setWords.append(s.w1); setWords.append(s.w2); setWords.append(s.w3)
        return i
    }

    mutating func node(_ k: Kind, out o: Int32, out2 o2: Int32 = NFABuilder.none, arg a: Int32 = 0) -> Int32 {
        append(Node(kind: k.rawValue, out: o, out2: o2, arg: a))
        return Int32(count - 1)
    }

    @inline(__always)
    mutating func append(_ node: Node) {
        if count == buffer.capacity { buffer = buffer.grown(keeping: count) }
        (buffer.base + count).initialize(to: node)
        count += 1
    }

    // MARK: Fragments with patch lists
    //
    // A fragment's dangling edges form a list threaded through the edge fields themselves: a dangling field
    // holds -1 (end of list) or -(slot + 2), where slot = node * 2 + (0 for out, 1 for out2).

    static func encode(slot: Int32) -> Int32 { -(slot + 2) }
    static func decode(_ v: Int32) -> Int32 { -v - 2 }

    func field(_ slot: Int32) -> Int32 {
        let n = Int(slot >> 1)
        return slot & 1 == 0 ? buffer.base[n].out : buffer.base[n].out2
    }

    mutating func setField(_ slot: Int32, _ v: Int32) {
        let n = Int(slot >> 1)
        if slot & 1 == 0 { buffer.base[n].out = v } else { buffer.base[n].out2 = v }
    }

    /// Points every dangling edge of `head`'s list at `target`.
    mutating func patch(_ head: Int32, to target: Int32) {
        var s = head
        while s >= 0 {
            let v = field(s)
            setField(s, target)
            s = v == -1 ? -1 : NFABuilder.decode(v)
        }
    }

    /// The list `a` followed by the list `b`.
    mutating func append(_ a: Int32, _ b: Int32) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        var s = a
        while true {
            let v = field(s)
            if v == -1 { setField(s, NFABuilder.encode(slot: b)); return a }
            s = NFABuilder.decode(v)
        }
    }

    /// A node that consumes one byte of `set`. Every byte-set node is made here, so the used sets are known.
    mutating func byteNode(set: Int32) -> Int32 {
        if set < 256 { singleBytesUsed.insert(UInt8(truncatingIfNeeded: set)) } else { multiSetUsed[Int(set)] = true }
        return node(.byteSet, out: -1, arg: set)
    }

    /// A chain of nodes for the literal bytes `p[range]` (not empty), each leading to the next.
    mutating func literalChain(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Fragment {
        let first = Int32(count)
        var next = first
        for k in range {
            let b = p[k]
            singleBytesUsed.insert(b)
            next += 1
            append(Node(kind: Kind.byteSet.rawValue, out: k == range.upperBound - 1 ? -1 : next, out2: NFABuilder.none,
                        arg: Int32(b)))
        }
        return Fragment(start: first, head: (next - 1) * 2)
    }

    mutating func byteFragment(set: Int32) -> Fragment {
        let n = byteNode(set: set)
        return Fragment(start: n, head: n * 2)
    }

    mutating func emptyFragment() -> Fragment {
        let n = node(.split, out: -1)
        return Fragment(start: n, head: n * 2)
    }

    mutating func anchorFragment(_ k: Kind) -> Fragment {
        let n = node(k, out: -1)
        return Fragment(start: n, head: n * 2)
    }

    mutating func concat(_ a: Fragment, _ b: Fragment) -> Fragment {
        patch(a.head, to: b.start)
        return Fragment(start: a.start, head: b.head)
    }

    mutating func alternate(_ a: Fragment, _ b: Fragment) -> Fragment {
        let n = node(.split, out: a.start, out2: b.start)
        return Fragment(start: n, head: append(a.head, b.head))
    }

    mutating func star(_ a: Fragment) -> Fragment {
        let n = node(.split, out: a.start, out2: -1)
        patch(a.head, to: n)
        return Fragment(start: n, head: n * 2 + 1)
    }

    mutating func plus(_ a: Fragment) -> Fragment {
        let n = node(.split, out: a.start, out2: -1)
        patch(a.head, to: n)
        return Fragment(start: a.start, head: n * 2 + 1)
    }

    mutating func optional(_ a: Fragment) -> Fragment {
        let n = node(.split, out: a.start, out2: -1)
        return Fragment(start: n, head: append(a.head, n * 2 + 1))
    }

    /// A copy of the fragment whose nodes are `range`, for counted repetition.
    mutating func clone(_ f: Fragment, nodes range: Range<Int>) -> Fragment {
        let offset = Int32(count - range.lowerBound)
        let lo = Int32(range.lowerBound), hi = Int32(range.upperBound)
        func mapNode(_ v: Int32) -> Int32 { v >= lo && v < hi ? v + offset : v }
        func mapEdge(_ v: Int32) -> Int32 {
            if v >= 0 { return mapNode(v) }
            if v == -1 || v == NFABuilder.none { return v }
            let slot = NFABuilder.decode(v)
            return NFABuilder.encode(slot: (mapNode(slot >> 1) << 1) | (slot & 1))
        }
        for i in range {
            let n = buffer.base[i]
            append(Node(kind: n.kind, out: mapEdge(n.out), out2: mapEdge(n.out2), arg: n.arg))
        }
        let head = f.head < 0 ? f.head : (mapNode(f.head >> 1) << 1) | (f.head & 1)
        return Fragment(start: mapNode(f.start), head: head)
    }
}

/// Node storage. The builder appends to it (replacing it with a bigger copy when full); once the builder hands it
/// to `FileContextsNFA` it is never written again, which is why sharing it across threads is safe.
final class NodeBuffer: @unchecked Sendable {
    let base: UnsafeMutablePointer<NFABuilder.Node>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    /// A buffer with twice the room holding the first `count` nodes of this one.
    func grown(keeping count: Int) -> NodeBuffer {
        let b = NodeBuffer(capacity: capacity * 2)
        b.base.initialize(from: base, count: count)
        return b
    }

    deinit { base.deallocate() }
}

/// The finished automaton: immutable and shared by every matcher.
final class FileContextsNFA: Sendable {
    /// `nodeCount` nodes.
    let buffer: NodeBuffer
    let nodeCount: Int
    let setWords: [UInt64]
    /// The start node of each specification, in file order.
    let starts: [Int32]
    /// For each specification (file order): its file type (0 = any, else `FileType.rawValue`).
    let specMode: [UInt8]
    /// For each specification (file order): its precedence; the highest matching one wins.
    let priority: [Int32]
    /// For each specification: whether its stem must be compared with the path's at lookup.
    let stemChecked: [Bool]
    /// Bytes that no set tells apart share a class; the DFA has one column per class.
    let byteClass: [UInt8]
    let classCount: Int
    /// A byte of each class.
    let classRepresentative: [UInt8]

    init(builder b: NFABuilder, starts: [Int32], specMode: [UInt8], priority: [Int32], stemChecked: [Bool]) {
        self.stemChecked = stemChecked
        buffer = b.buffer; nodeCount = b.count; setWords = b.setWords
        self.starts = starts; self.specMode = specMode; self.priority = priority
        // Bytes that no set tells apart share a class. A byte used as a single-byte set is a class of its own;
        // the other bytes are split by the sets with several members.
        var usedSet = b.multiSetUsed
        for byte in 0..<256 { usedSet[byte] = b.singleBytesUsed.contains(UInt8(byte)) }
        var cls = [Int](repeating: 0, count: 256)
        var classes = 1
        func split(_ inside: (Int) -> Bool) {
            var remap = [Int](repeating: -1, count: classes * 2)
            var next = 0
            for byte in 0..<256 {
                let key = cls[byte] * 2 + (inside(byte) ? 1 : 0)
                if remap[key] < 0 { remap[key] = next; next += 1 }
                cls[byte] = remap[key]
            }
            classes = next
        }
        // Sets 0...255 are the single bytes.
        split { usedSet[$0] }
        for s in 256..<usedSet.count where usedSet[s] && classes < 256 {
            split { byte in (b.setWords[s * 4 + (byte >> 6)] >> UInt64(byte & 63)) & 1 != 0 }
        }
        // Separate each single byte from the others in its class.
        var seenSingle = [Bool](repeating: false, count: classes)
        var fresh = classes
        for byte in 0..<256 where usedSet[byte] {
            if seenSingle[cls[byte]] { cls[byte] = fresh; fresh += 1 } else { seenSingle[cls[byte]] = true }
        }
        classes = fresh
        byteClass = cls.map { UInt8(truncatingIfNeeded: $0) }
        classCount = classes
        var rep = [UInt8](repeating: 0, count: classes)
        var seen = [Bool](repeating: false, count: classes)
        for byte in 0..<256 where !seen[cls[byte]] { seen[cls[byte]] = true; rep[cls[byte]] = UInt8(byte) }
        classRepresentative = rep
    }

    /// Node `i` (which must be below `nodeCount`).
    @inline(__always) func node(_ i: Int) -> NFABuilder.Node { buffer.base[i] }
}
