/// A gradient-boosted tree ensemble: the sum of each output's trees' leaves plus a base margin, through the
/// objective's link. The nodes of every tree sit in flat arrays (no per-node allocation, no dictionaries on
/// the hot path); a walk reads `feature`, `threshold`, `flags` and a child index per level.
///
/// Splits follow the library that wrote them: XGBoost goes left when `x < threshold`, LightGBM when
/// `x <= threshold`; a missing value (NaN) goes the node's default way; LightGBM's categorical splits send
/// the categories in the node's set left and every other category (and, as LightGBM does, a missing one
/// when the node treats NaN as missing) right.
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

    public var link: Link
    /// Class labels of a classifier, in the order of the probabilities.
    public var classes: [String]?
    /// Per output (one, or one per class): the margin before any tree.
    public var baseMargin: [Double]
    /// Per tree: its root node, and the output its leaves add to.
    public var roots: [Int32]
    public var outputs: [Int32]
    /// Per node: the design column it splits on, or -1 for a leaf.
    public var feature: [Int32]
    /// Per node: the split threshold; a leaf's value; a categorical split's set (an index into `sets`).
    public var threshold: [Double]
    public var left: [Int32]
    public var right: [Int32]
    public var flags: [UInt8]
    /// Category sets of categorical splits, as bitsets of 32-bit words (bit `c` of the set: code `c` goes left).
    public var sets: [[UInt32]]

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
    }

    public var treeCount: Int { roots.count }

    /// The margins of one instance: `baseMargin` plus every tree's leaf, per output.
    public func margins(_ x: UnsafeBufferPointer<Double>) -> [Double] {
        var sums = baseMargin
        feature.withUnsafeBufferPointer { feature in
            threshold.withUnsafeBufferPointer { threshold in
                left.withUnsafeBufferPointer { left in
                    right.withUnsafeBufferPointer { right in
                        flags.withUnsafeBufferPointer { flags in
                            for tree in 0..<roots.count {
                                var node = Int(roots[tree])
                                while feature[node] >= 0 {
                                    let flag = flags[node]
                                    let goLeft: Bool
                                    var value = x[Int(feature[node])]
                                    if flag & Flag.categorical != 0 {
                                        goLeft = category(value, flag: flag, in: sets[Int(threshold[node])])
                                    } else {
                                        if value.isNaN && flag & Flag.nanMissing == 0 { value = 0 }
                                        if value.isNaN || (flag & Flag.zeroMissing != 0 && abs(value) <= 1e-35) {
                                            goLeft = flag & Flag.defaultLeft != 0
                                        } else if flag & Flag.inclusive != 0 {
                                            goLeft = value <= threshold[node]
                                        } else {
                                            goLeft = value < threshold[node]
                                        }
                                    }
                                    node = Int(goLeft ? left[node] : right[node])
                                }
                                sums[Int(outputs[tree])] += threshold[node]
                            }
                        }
                    }
                }
            }
        }
        return sums
    }

    /// LightGBM's categorical decision: NaN goes right when NaN is missing, else reads as code 0; a negative
    /// code goes right; a code in the set goes left.
    @inline(__always)
    private func category(_ value: Double, flag: UInt8, in set: [UInt32]) -> Bool {
        var code = 0
        if value.isNaN {
            if flag & Flag.nanMissing != 0 { return false }
        } else {
            guard value >= 0, value < Double(set.count * 32) else { return false }
            code = Int(value)
        }
        return code / 32 < set.count && set[code / 32] & (1 << UInt32(code % 32)) != 0
    }

    public func predict(_ x: UnsafeBufferPointer<Double>) -> Output {
        let margins = margins(x)
        switch link {
        case .identity:
            return .value(margins[0])
        case .logistic:
            let p = sigmoid(margins[0])
            guard classes != nil else { return .value(p) }  // reg:logistic: a share, not a class
            return .classification(classIndex: p > 0.5 ? 1 : 0, probabilities: [1 - p, p])
        case .softmax:
            let probabilities = softmax(margins)
            var best = 0
            for k in probabilities.indices where probabilities[k] > probabilities[best] { best = k }
            return .classification(classIndex: best, probabilities: probabilities)
        }
    }

    /// Why the arrays do not make a well-formed ensemble, or `nil`: every child and root in range, trees
    /// acyclic, split columns within `width`, outputs within the base margins, set indices valid.
    public func problem(width: Int) -> String? {
        let count = feature.count
        guard threshold.count == count, left.count == count, right.count == count, flags.count == count else {
            return "the node arrays differ in length"
        }
        guard roots.count == outputs.count else { return "roots and outputs differ in length" }
        guard !baseMargin.isEmpty else { return "no base margin" }
        if link == .softmax, let classes, classes.count != baseMargin.count {
            return "\(classes.count) classes but \(baseMargin.count) base margins"
        }
        for (tree, root) in roots.enumerated() {
            guard (0..<count).contains(Int(root)) else { return "tree \(tree): root \(root) is not a node" }
            guard (0..<baseMargin.count).contains(Int(outputs[tree])) else { return "tree \(tree): output \(outputs[tree]) out of range" }
            var stack = [Int(root)], visited = 0
            while let node = stack.popLast() {
                visited += 1
                guard visited <= count else { return "tree \(tree) has a cycle" }
                guard feature[node] >= 0 else { continue }
                guard Int(feature[node]) < width else { return "node \(node) splits on column \(feature[node]) of \(width)" }
                if flags[node] & Flag.categorical != 0, !(0..<sets.count).contains(Int(threshold[node])) {
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
