/// A gradient-boosted tree ensemble: the sum of each output's trees' leaves plus a base margin, through the
/// objective's link. The nodes of every tree sit in flat arrays (no per-node allocation, no dictionaries on
/// the hot path); a walk reads `feature`, `threshold`, `flags` and a child index per level.
///
/// Splits follow the library that wrote them: XGBoost goes left when `x < threshold`, LightGBM when
/// `x <= threshold`; a missing value (NaN) goes the node's default way; LightGBM's categorical splits send
/// the categories in the node's set left and every other category, and a missing one, right.
public struct TreeEnsemble: Codable, Sendable, Equatable {
    public enum Link: String, Codable, Sendable {
        /// Regression: the margin is the prediction.
        case identity
        /// Binary (and XGBoost's `reg:logistic`): the probability is the sigmoid of the margin.
        case logistic
        /// Multiclass: one margin per class, probabilities by softmax.
        case softmax
    }

    /// Bits of `flags`.
    public enum Flag {
        /// A missing value goes to the left child.
        public static let defaultLeft: UInt8 = 1
        /// Left when `x <= threshold` (LightGBM); otherwise when `x < threshold` (XGBoost).
        public static let inclusive: UInt8 = 2
        /// A categorical split: left when the category code is in the node's set.
        public static let categorical: UInt8 = 4
        /// NaN is missing (goes the default way); without it LightGBM reads NaN as 0.
        public static let nanMissing: UInt8 = 8
        /// Zero (|x| ≤ 1e-35) is missing too (LightGBM's `missing_type=Zero`).
        public static let zeroMissing: UInt8 = 16
    }

    public let link: Link
    /// Class labels of a classifier, in the order of the probabilities.
    public let classes: [String]?
    /// Per output (one, or one per class): the margin before any tree.
    public let baseMargin: [Double]
    /// Per tree: its root node, and the output its leaves add to.
    public let roots: [Int32]
    public let outputs: [Int32]
    /// Per node: the design column it splits on, or -1 for a leaf.
    public let feature: [Int32]
    /// Per node: the split threshold; a leaf's value; a categorical split's set (an index into `sets`).
    public let threshold: [Double]
    public let left: [Int32]
    public let right: [Int32]
    public let flags: [UInt8]
    /// Category sets of categorical splits, as bitsets of 32-bit words (bit `c` of the set: code `c` goes left).
    public let sets: [[UInt32]]

    public init(link: Link, classes: [String]?, baseMargin: [Double], roots: [Int32], outputs: [Int32],
                feature: [Int32], threshold: [Double], left: [Int32], right: [Int32], flags: [UInt8], sets: [[UInt32]]) {
        self.link = link
        self.classes = classes
        self.baseMargin = baseMargin
        self.roots = roots
        self.outputs = outputs
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.flags = flags
        self.sets = sets
        pack()
    }

    private enum CodingKeys: String, CodingKey {
        case link, classes, baseMargin, roots, outputs, feature, threshold, left, right, flags, sets
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // The node arrays element by element through the container's concrete `decode(Double.self)`-style
        // requirements: `[T].init(from:)` goes through the generic one, whose per-element type checks made
        // decoding a model of 300 trees half of predict's cold start.
        func array<T>(_ key: CodingKeys, _ element: (inout any UnkeyedDecodingContainer) throws -> T) throws -> [T] {
            var items = try c.nestedUnkeyedContainer(forKey: key)
            var values: [T] = []
            values.reserveCapacity(items.count ?? 0)
            while !items.isAtEnd { values.append(try element(&items)) }
            return values
        }
        self.init(link: try c.decode(Link.self, forKey: .link), classes: try c.decodeIfPresent([String].self, forKey: .classes),
                  baseMargin: try array(.baseMargin) { try $0.decode(Double.self) },
                  roots: try array(.roots) { try $0.decode(Int32.self) },
                  outputs: try array(.outputs) { try $0.decode(Int32.self) },
                  feature: try array(.feature) { try $0.decode(Int32.self) },
                  threshold: try array(.threshold) { try $0.decode(Double.self) },
                  left: try array(.left) { try $0.decode(Int32.self) },
                  right: try array(.right) { try $0.decode(Int32.self) },
                  flags: try array(.flags) { try $0.decode(UInt8.self) },
                  sets: try c.decodeIfPresent([[UInt32]].self, forKey: .sets) ?? [])
    }

    public static func == (a: TreeEnsemble, b: TreeEnsemble) -> Bool {
        a.link == b.link && a.classes == b.classes && a.baseMargin == b.baseMargin && a.roots == b.roots
            && a.outputs == b.outputs && a.feature == b.feature && a.threshold == b.threshold && a.left == b.left
            && a.right == b.right && a.flags == b.flags && a.sets == b.sets
    }

    public var treeCount: Int { roots.count }

    /// One node as the walk reads it, in 16 bytes (four to a cache line). Siblings sit side by side, so the
    /// right child is `left + 1` and the walk picks a child by adding the comparison, not by branching.
    @usableFromInline
    struct Node: Sendable {
        /// The split threshold, a category set's index, or a leaf's value.
        var threshold: Double
        /// The left child's index; -1 for a leaf.
        var left: Int32
        var feature: Int16
        var flags: UInt8
        /// A numeric split with a strict threshold and a fixed way for NaN: only `defaultLeft` besides.
        static let fast: UInt8 = 128
    }

    /// The nodes packed for the walk (each tree breadth-first, siblings adjacent) and each tree's root
    /// there; built from the arrays, not stored in the file.
    private var packed: [Node] = []
    private var packedRoots: [Int32] = []

    private mutating func pack() {
        // Malformed arrays are refused by `problem(width:)`; nothing is packed for them.
        let count = feature.count
        guard structureProblem() == nil else { return }
        var nodes: [Node] = [], rootsOut: [Int32] = []
        nodes.reserveCapacity(count)
        for root in roots {
            rootsOut.append(Int32(nodes.count))
            nodes.append(Node(threshold: 0, left: -1, feature: -1, flags: 0))
            var queue = [(old: Int(root), new: nodes.count - 1)], head = 0
            while head < queue.count {
                let (old, new) = queue[head]
                head += 1
                nodes[new].threshold = threshold[old]
                guard feature[old] >= 0 else { continue }
                // A numeric split walks the fast path: `x <= t` becomes `x < t.nextUp` (the same for every
                // finite x; the encoder admits no infinities), and `fast` says so. A NaN goes the default way
                // when it is missing, and otherwise where LightGBM sends it, as 0: that way becomes the default.
                let flag = flags[old]
                let simple = flag & (Flag.categorical | Flag.zeroMissing) == 0
                if simple && flag & Flag.inclusive != 0 { nodes[new].threshold = threshold[old].nextUp }
                let nanLeft = flag & Flag.nanMissing != 0 ? flag & Flag.defaultLeft != 0 : 0 < nodes[new].threshold
                nodes[new].flags = simple ? (nanLeft ? Flag.defaultLeft : 0) | Node.fast : flag
                nodes[new].feature = Int16(feature[old])
                nodes[new].left = Int32(nodes.count)
                nodes.append(Node(threshold: 0, left: -1, feature: -1, flags: 0))
                nodes.append(Node(threshold: 0, left: -1, feature: -1, flags: 0))
                queue.append((Int(left[old]), nodes.count - 2))
                queue.append((Int(right[old]), nodes.count - 1))
            }
        }
        packed = nodes
        packedRoots = rootsOut
    }

    /// The margins of one instance: `baseMargin` plus every tree's leaf, per output.
    public func margins(_ x: UnsafeBufferPointer<Double>) -> [Double] {
        var sums = baseMargin
        packed.withUnsafeBufferPointer { nodes in
            for tree in 0..<packedRoots.count { sums[Int(outputs[tree])] += leaf(from: Int(packedRoots[tree]), nodes, x) }
        }
        return sums
    }

    /// The sum of every tree's leaf plus the base margin, for a single-output ensemble: no allocation.
    private func margin(_ x: UnsafeBufferPointer<Double>) -> Double {
        var sum = baseMargin[0]
        packed.withUnsafeBufferPointer { nodes in
            packedRoots.withUnsafeBufferPointer { roots in
                var t = 0
                while t + 4 <= roots.count {
                    sum += leaves(roots, from: t, nodes, x)
                    t += 4
                }
                while t < roots.count {
                    sum += leaf(from: Int(roots[t]), nodes, x)
                    t += 1
                }
            }
        }
        return sum
    }

    /// Walks one tree from `root` to its leaf's value.
    @inline(__always)
    private func leaf(from root: Int, _ nodes: UnsafeBufferPointer<Node>, _ x: UnsafeBufferPointer<Double>) -> Double {
        var node = nodes[root]
        while node.left >= 0 { node = nodes[next(node, x)] }
        return node.threshold
    }

    /// Four trees walked in step, so their cache misses overlap; returns the sum of their leaves.
    @inline(__always)
    private func leaves(_ roots: UnsafeBufferPointer<Int32>, from t: Int, _ nodes: UnsafeBufferPointer<Node>,
                        _ x: UnsafeBufferPointer<Double>) -> Double {
        var a = nodes[Int(roots[t])], b = nodes[Int(roots[t + 1])], c = nodes[Int(roots[t + 2])], d = nodes[Int(roots[t + 3])]
        while a.left >= 0 || b.left >= 0 || c.left >= 0 || d.left >= 0 {
            if a.left >= 0 { a = nodes[next(a, x)] }
            if b.left >= 0 { b = nodes[next(b, x)] }
            if c.left >= 0 { c = nodes[next(c, x)] }
            if d.left >= 0 { d = nodes[next(d, x)] }
        }
        return a.threshold + b.threshold + c.threshold + d.threshold
    }

    /// The child of a split node that `x` goes to.
    @inline(__always)
    private func next(_ node: Node, _ x: UnsafeBufferPointer<Double>) -> Int {
        let flag = node.flags
        var value = x[Int(node.feature)]
        if flag & Node.fast != 0 {
            // NaN fails the comparison, so it goes right unless the node sends missing values left.
            let nanLeft = value.isNaN && flag & Flag.defaultLeft != 0
            return Int(node.left) &+ (!(value < node.threshold) && !nanLeft ? 1 : 0)
        }
        let goRight: Bool
        if flag & (Flag.categorical | Flag.zeroMissing) == 0 {
            // Numeric splits, the common case; NaN is missing (the default way) or, in LightGBM without a
            // missing type, 0.
            if value.isNaN && flag & Flag.nanMissing == 0 { value = 0 }
            if value.isNaN {
                goRight = flag & Flag.defaultLeft == 0
            } else {
                goRight = flag & Flag.inclusive != 0 ? !(value <= node.threshold) : !(value < node.threshold)
            }
        } else if flag & Flag.categorical != 0 {
            goRight = !category(value, flag: flag, in: sets[Int(node.threshold)])
        } else {
            if value.isNaN && flag & Flag.nanMissing == 0 { value = 0 }
            if value.isNaN || abs(value) <= 1e-35 {
                goRight = flag & Flag.defaultLeft == 0
            } else {
                goRight = flag & Flag.inclusive != 0 ? !(value <= node.threshold) : !(value < node.threshold)
            }
        }
        return Int(node.left) &+ (goRight ? 1 : 0)
    }

    /// LightGBM's categorical decision: a missing (NaN) or negative code goes right, whatever the node's
    /// missing type; a code in the set goes left.
    @inline(__always)
    private func category(_ value: Double, flag: UInt8, in set: [UInt32]) -> Bool {
        guard value >= 0, value < Double(set.count * 32) else { return false }  // NaN fails too
        let code = Int(value)
        return set[code / 32] & (1 << UInt32(code % 32)) != 0
    }

    public func predict(_ x: UnsafeBufferPointer<Double>) -> Output {
        switch link {
        case .identity:
            return .value(margin(x))
        case .logistic:
            let p = sigmoid(margin(x))
            guard classes != nil else { return .value(p) }  // reg:logistic: a share, not a class
            return .classification(classIndex: p > 0.5 ? 1 : 0, probabilities: [1 - p, p])
        case .softmax:
            return .mostProbable(softmax(margins(x)))
        }
    }

    /// Why the arrays do not make a well-formed ensemble, or `nil`: every child and root in range, trees
    /// acyclic, split columns within `width`, outputs within the base margins, set indices valid.
    public func problem(width: Int) -> String? {
        if let problem = structureProblem() { return problem }
        for node in 0..<feature.count where feature[node] >= 0 && Int(feature[node]) >= width {
            return "node \(node) splits on column \(feature[node]) of \(width)"
        }
        guard packedRoots.count == roots.count else { return "the trees could not be laid out" }
        return nil
    }

    /// What makes the arrays unwalkable, or `nil`: lengths, links and outputs that do not fit, children
    /// out of range, a node reached twice (a cycle, or trees sharing nodes), split columns or category sets
    /// out of range, unknown flags.
    private func structureProblem() -> String? {
        let count = feature.count
        guard threshold.count == count, left.count == count, right.count == count, flags.count == count else {
            return "the node arrays differ in length"
        }
        guard roots.count == outputs.count else { return "roots and outputs differ in length" }
        switch link {
        case .identity, .logistic:
            guard baseMargin.count == 1 else { return "a \(link.rawValue) ensemble has one base margin, not \(baseMargin.count)" }
        case .softmax:
            guard let classes, classes.count == baseMargin.count, classes.count >= 2 else {
                return "a softmax ensemble needs a class per base margin (\(classes?.count ?? 0) classes, \(baseMargin.count) margins)"
            }
        }
        var reached = [Bool](repeating: false, count: count)
        for (tree, root) in roots.enumerated() {
            guard (0..<count).contains(Int(root)) else { return "tree \(tree): root \(root) is not a node" }
            guard (0..<baseMargin.count).contains(Int(outputs[tree])) else { return "tree \(tree): output \(outputs[tree]) out of range" }
            var stack = [Int(root)]
            while let node = stack.popLast() {
                guard !reached[node] else { return "node \(node) is reached twice (a cycle, or trees sharing nodes)" }
                reached[node] = true
                guard flags[node] & ~31 == 0 else { return "node \(node) has unknown flags \(flags[node])" }
                guard feature[node] >= 0 else { continue }
                guard feature[node] < Int32(Int16.max) else { return "node \(node) splits on column \(feature[node])" }
                if flags[node] & Flag.categorical != 0,
                   !(threshold[node].isFinite && threshold[node] >= 0 && threshold[node] < Double(sets.count)) {
                    return "node \(node) names category set \(threshold[node]) of \(sets.count)"
                }
                for child in [left[node], right[node]] {
                    guard (0..<count).contains(Int(child)) else { return "node \(node) has child \(child), not a node" }
                    stack.append(Int(child))
                }
            }
        }
        return nil
    }
}
