import CycloneModel
import Dispatch
import Foundation

/// Settings of gradient boosting (LightGBM's names in the comments).
public struct BoostingOptions: Sendable, Equatable {
    /// Boosting rounds at most (`num_iterations`); early stopping may keep fewer.
    public var trees = 300
    /// Shrinkage of each tree's leaves (`learning_rate`).
    public var learningRate = 0.1
    /// Deepest a tree may grow; 0 is no limit (`max_depth`).
    public var maxDepth = 6
    /// Most leaves per tree, grown best-first (`num_leaves`).
    public var maxLeaves = 31
    /// Fewest rows in a leaf (`min_data_in_leaf`).
    public var minDataInLeaf = 20
    /// L2 penalty on leaf values (`lambda_l2`).
    public var lambda = 1.0
    /// Share of rows each tree sees, drawn anew per round (`bagging_fraction`).
    public var subsample = 1.0
    /// The newest share of the rows kept out to stop early on; 0 trains every round.
    public var validation = 0.1
    /// Rounds without a better validation loss before stopping (`early_stopping_round`).
    public var patience = 20
    public var seed: UInt64 = 7

    public init() {}

    /// What is wrong with these settings, named as `cyclone train` takes them, or `nil`.
    public var problem: String? {
        if trees < 1 { return "--trees must be at least 1, not \(trees)" }
        if !(learningRate > 0 && learningRate <= 1) { return "--learning-rate must be above 0 and at most 1, not \(learningRate)" }
        if maxDepth < 0 { return "--max-depth must be 0 (no limit) or more, not \(maxDepth)" }
        if maxLeaves < 2 { return "--num-leaves must be at least 2, not \(maxLeaves)" }
        if minDataInLeaf < 1 { return "--min-data-in-leaf must be at least 1, not \(minDataInLeaf)" }
        if !(lambda >= 0) { return "--lambda must be 0 or more, not \(lambda)" }
        if !(subsample > 0 && subsample <= 1) { return "--subsample must be above 0 and at most 1, not \(subsample)" }
        if !(validation >= 0 && validation < 1) { return "--early-stopping must be at least 0 and below 1, not \(validation)" }
        return nil
    }

    /// The settings as stored in an artifact's training info.
    public var parameters: [String: Double] {
        ["trees": Double(trees), "learning_rate": learningRate, "max_depth": Double(maxDepth),
         "num_leaves": Double(maxLeaves), "min_data_in_leaf": Double(minDataInLeaf), "lambda_l2": lambda,
         "bagging_fraction": subsample]
    }

    /// Settings read back from an artifact's training info (an imported model's too), defaults elsewhere.
    public init(parameters: [String: Double]) {
        self.init()
        if let v = parameters["trees"], v >= 1 { trees = Int(v) }
        if let v = parameters["learning_rate"], v > 0 { learningRate = v }
        if let v = parameters["max_depth"] { maxDepth = max(0, Int(v)) }
        if let v = parameters["num_leaves"], v >= 2 { maxLeaves = Int(v) }
        if let v = parameters["min_data_in_leaf"], v >= 1 { minDataInLeaf = Int(v) }
        if let v = parameters["lambda_l2"], v >= 0 { lambda = v }
        if let v = parameters["bagging_fraction"], v > 0, v <= 1 { subsample = v }
        // An imported model's depth is what its trees reached; with no leaf limit it recorded, depth rules.
        if parameters["num_leaves"] == nil, maxDepth > 0 { maxLeaves = 1 << min(maxDepth, 16) }
    }
}

/// Histogram gradient boosting over a design matrix of `.raw` and `.code` columns (NaN missing): features
/// binned to at most 255 quantile bins with missing values in a bin of their own, a histogram per node and
/// its sibling's by subtraction, splits by gain with L2-regularised leaves (a numeric split tries missing
/// values on either side; a categorical one orders its categories by gradient, as LightGBM does), trees
/// grown best-first under a leaf and a depth limit, row subsampling, and early stopping on the newest rows.
/// Squared error, log loss and softmax. Histograms are built on every core.
public struct GradientBoosting: Sendable {
    public enum Objective: Sendable { case squaredError, logLoss, softmax(classes: Int) }

    public var options: BoostingOptions
    public init(options: BoostingOptions) { self.options = options }

    /// The fitted ensemble, the rounds it kept, and every row's margins after the last round grown (as the
    /// bins routed the rows: with no early stopping, what the ensemble gives them).
    public func fit(x: [Double], p: Int, categorical: Set<Int>, labels: [Double], objective: Objective,
                    classes: [String]?) throws(TrainingError) -> (ensemble: TreeEnsemble, rounds: Int, margins: [Double]) {
        let n = labels.count
        guard n >= 2, x.count == n * p else { throw TrainingError("gradient boosting needs at least two rows") }
        if let problem = options.problem { throw TrainingError(problem) }
        let outputs: Int = if case .softmax(let k) = objective { k } else { 1 }
        let validation = options.validation > 0 && n >= 50 ? Int(Double(n) * options.validation) : 0
        let trainRows = n - validation

        // Bins: per column, the upper edges of the value bins (x <= edge[b] is bin b or lower).
        var edges: [[Double]] = []
        var binned = [UInt8](repeating: 0, count: n * p)  // column-major
        for j in 0..<p {
            let isCategorical = categorical.contains(j)
            var values: [Double] = []
            values.reserveCapacity(trainRows)
            for i in 0..<trainRows where !x[i * p + j].isNaN { values.append(x[i * p + j]) }
            values.sort()
            var columnEdges: [Double] = []
            if isCategorical {
                let top = Int(values.last ?? 0)
                columnEdges = (0...min(max(top, 0), 254)).map(Double.init)
            } else {
                var distinct: [Double] = []
                for v in values where distinct.last != v { distinct.append(v) }
                if distinct.count <= 255 {
                    columnEdges = zip(distinct, distinct.dropFirst()).map { ($0 + $1) / 2 } + (distinct.isEmpty ? [] : [.infinity])
                } else {
                    for b in 1..<255 { columnEdges.append(values[min(values.count - 1, b * values.count / 255)]) }
                    var unique: [Double] = []
                    for e in columnEdges where unique.last != e { unique.append(e) }
                    columnEdges = unique + [.infinity]
                }
            }
            edges.append(columnEdges)
            for i in 0..<n {
                let v = x[i * p + j]
                let bin: Int
                // Missing values (and categories past the last bin) go in the bin after the column's last.
                if v.isNaN {
                    bin = columnEdges.count
                } else if isCategorical {
                    bin = v >= 0 && v < Double(columnEdges.count) ? Int(v) : columnEdges.count
                } else {
                    var lo = 0, hi = columnEdges.count - 1  // first edge >= v
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if columnEdges[mid] >= v { hi = mid } else { lo = mid + 1 }
                    }
                    bin = lo
                }
                binned[j * n + i] = UInt8(bin)
            }
        }

        // Base margins and the margins of every row.
        var base = [Double](repeating: 0, count: outputs)
        switch objective {
        case .squaredError:
            base[0] = labels.prefix(trainRows).reduce(0, +) / Double(trainRows)
        case .logLoss:
            let mean = min(max(labels.prefix(trainRows).reduce(0, +) / Double(trainRows), 1e-6), 1 - 1e-6)
            base[0] = log(mean / (1 - mean))
        case .softmax(let k):
            var counts = [Double](repeating: 1, count: k)
            for i in 0..<trainRows { counts[Int(labels[i])] += 1 }
            base = counts.map { log($0 / Double(trainRows + k)) }
        }
        var margin = [Double](repeating: 0, count: n * outputs)
        for i in 0..<n { for k in 0..<outputs { margin[i * outputs + k] = base[k] } }

        var builder = TreeBuilder(options: options, n: n, p: p, binned: binned, edges: edges, categorical: categorical)
        var random = SplitMix64(seed: options.seed)
        // Per output: each round's derivatives are taken at the margins before any of its trees.
        var gradients = [[Double]](repeating: [Double](repeating: 0, count: n), count: outputs)
        var hessians = gradients
        var bestLoss = Double.infinity, bestRounds = 0, sinceBest = 0
        var rounds = 0
        for _ in 0..<options.trees {
            var rows = Array(0..<trainRows)
            if options.subsample < 1 { rows = rows.filter { _ in random.uniform() < options.subsample } }
            guard rows.count >= 2 else { continue }
            for k in 0..<outputs {
                Self.gradients(objective, labels: labels, margin: margin, rows: trainRows, class: k, outputs: outputs,
                               into: &gradients[k], &hessians[k])
            }
            for k in 0..<outputs {
                builder.grow(rows: rows, gradients: gradients[k], hessians: hessians[k], output: k)
                for i in 0..<n { margin[i * outputs + k] += builder.predictLast(row: i) }
            }
            rounds += 1
            guard validation > 0 else { continue }
            let loss = Self.loss(objective, labels: labels, margin: margin, rows: trainRows..<n, outputs: outputs)
            if loss < bestLoss - 1e-12 {
                (bestLoss, bestRounds, sinceBest) = (loss, rounds, 0)
            } else {
                sinceBest += 1
                if sinceBest >= options.patience { break }
            }
        }
        let kept = validation > 0 ? max(bestRounds, 1) : rounds
        let link: TreeEnsemble.Link = switch objective {
        case .squaredError: .identity
        case .logLoss: .logistic
        case .softmax: .softmax
        }
        return (builder.ensemble(rounds: kept, outputs: outputs, link: link, classes: classes, base: base), kept, margin)
    }

    /// The first and second derivatives of the loss at each row's margin, for output `k`.
    static func gradients(_ objective: Objective, labels: [Double], margin: [Double], rows: Int, class k: Int,
                          outputs: Int, into g: inout [Double], _ h: inout [Double]) {
        switch objective {
        case .squaredError:
            for i in 0..<rows { (g[i], h[i]) = (margin[i] - labels[i], 1) }
        case .logLoss:
            for i in 0..<rows {
                let probability = sigmoid(margin[i])
                (g[i], h[i]) = (probability - labels[i], max(probability * (1 - probability), 1e-16))
            }
        case .softmax:
            for i in 0..<rows {
                var top = -Double.infinity
                for c in 0..<outputs { top = max(top, margin[i * outputs + c]) }
                var sum = 0.0
                for c in 0..<outputs { sum += exp(margin[i * outputs + c] - top) }
                let probability = exp(margin[i * outputs + k] - top) / sum
                (g[i], h[i]) = (probability - (Int(labels[i]) == k ? 1 : 0), max(probability * (1 - probability), 1e-16))
            }
        }
    }

    static func loss(_ objective: Objective, labels: [Double], margin: [Double], rows: Range<Int>, outputs: Int) -> Double {
        var total = 0.0
        for i in rows {
            switch objective {
            case .squaredError:
                total += (margin[i] - labels[i]) * (margin[i] - labels[i])
            case .logLoss:
                let probability = min(max(sigmoid(margin[i]), 1e-15), 1 - 1e-15)
                total -= labels[i] == 1 ? log(probability) : log(1 - probability)
            case .softmax:
                let row = Array(margin[(i * outputs)..<((i + 1) * outputs)])
                total -= log(max(softmax(row)[Int(labels[i])], 1e-15))
            }
        }
        return total / Double(max(rows.count, 1))
    }
}

/// Grows one tree at a time into the flat node arrays of the ensemble.
struct TreeBuilder {
    let options: BoostingOptions
    let n: Int, p: Int
    let binned: [UInt8]
    let edges: [[Double]]
    let categorical: Set<Int>
    var feature: [Int32] = [], threshold: [Double] = [], left: [Int32] = [], right: [Int32] = [], flags: [UInt8] = []
    var sets: [[UInt32]] = []
    var roots: [Int32] = [], outputs: [Int32] = []
    /// Where each column's bins start in a histogram; `offsets[p]` is its length.
    let offsets: [Int]
    /// The leaf node each row reached in the last tree.
    var rowLeaf: [Int32]
    /// Which rows the last tree's leaves placed (`generation` marks them).
    var seen: [UInt32]
    var generation: UInt32 = 0

    init(options: BoostingOptions, n: Int, p: Int, binned: [UInt8], edges: [[Double]], categorical: Set<Int>) {
        self.options = options
        self.n = n
        self.p = p
        self.binned = binned
        self.edges = edges
        self.categorical = categorical
        rowLeaf = [Int32](repeating: 0, count: n)
        seen = [UInt32](repeating: 0, count: n)
        var offsets = [0]
        for column in edges { offsets.append(offsets.last! + column.count + 1) }
        self.offsets = offsets
    }

    struct Leaf {
        var node: Int
        var rows: [Int]
        var histogram: [SIMD4<Double>]  // per column, its bins and then its missing bin: (g, h, count, 0)
        var g: Double, h: Double
        var depth: Int
        var split: Split?
    }

    struct Split {
        var gain: Double
        var feature: Int
        var bin: Int  // numeric: bins <= bin go left
        var missingLeft: Bool
        var categories: [Int]?  // categorical: codes going left
        var leftRows: Int
    }

    /// The node's histogram: per feature and bin, the sums of gradient and hessian and the row count. The
    /// rows' gradients are gathered in order first, so each feature's pass reads them sequentially and
    /// adds one vector per row.
    func histogram(_ rows: [Int], _ g: [Double], _ h: [Double]) -> [SIMD4<Double>] {
        var histogram = [SIMD4<Double>](repeating: .zero, count: offsets[p])
        let ordered = rows.map { SIMD4<Double>(g[$0], h[$0], 1, 0) }
        let (n, binned, offsets) = (self.n, self.binned, self.offsets)
        histogram.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let target = out
            let column: @Sendable (Int) -> Void = { j in
                binned.withUnsafeBufferPointer { binned in
                    ordered.withUnsafeBufferPointer { ordered in
                        rows.withUnsafeBufferPointer { rows in
                            let bins = UnsafeBufferPointer(rebasing: binned[(j * n)..<((j + 1) * n)])
                            let offset = offsets[j]
                            for k in 0..<rows.count { target[offset + Int(bins[rows[k]])] += ordered[k] }
                        }
                    }
                }
            }
            // Every core for a big node; a small one is quicker alone than the dispatch.
            if rows.count * p >= 200_000 {
                DispatchQueue.concurrentPerform(iterations: p, execute: column)
            } else {
                for j in 0..<p { column(j) }
            }
        }
        return histogram
    }

    func bestSplit(_ leaf: Leaf) -> Split? {
        let lambda = options.lambda, minData = Double(options.minDataInLeaf)
        let parent = leaf.g * leaf.g / (leaf.h + lambda)
        let count = Double(leaf.rows.count)
        var best: Split?
        func score(_ gl: Double, _ hl: Double, _ gr: Double, _ hr: Double) -> Double {
            gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parent
        }
        for j in 0..<p {
            let offset = offsets[j]
            let bins = edges[j].count
            let missing = leaf.histogram[offset + bins]
            let (mg, mh, mc) = (missing.x, missing.y, missing.z)
            if categorical.contains(j) {
                // Categories ordered by gradient over hessian; the best prefix goes left (missing goes right).
                let present = (0..<bins).filter { leaf.histogram[offset + $0].z > 0 }
                let ordered = present.sorted {
                    leaf.histogram[offset + $0].x / (leaf.histogram[offset + $0].y + lambda)
                        < leaf.histogram[offset + $1].x / (leaf.histogram[offset + $1].y + lambda)
                }
                var gl = 0.0, hl = 0.0, cl = 0.0
                for (position, bin) in ordered.dropLast().enumerated() {
                    let cell = leaf.histogram[offset + bin]
                    (gl, hl, cl) = (gl + cell.x, hl + cell.y, cl + cell.z)
                    guard cl >= minData, count - cl >= minData else { continue }
                    let gain = score(gl, hl, leaf.g - gl, leaf.h - hl)
                    if gain > (best?.gain ?? 1e-9) {
                        best = Split(gain: gain, feature: j, bin: 0, missingLeft: false,
                                     categories: Array(ordered[...position]), leftRows: Int(cl))
                    }
                }
                continue
            }
            var gl = 0.0, hl = 0.0, cl = 0.0
            for bin in 0..<max(bins - 1, 0) {
                let cell = leaf.histogram[offset + bin]
                (gl, hl, cl) = (gl + cell.x, hl + cell.y, cl + cell.z)
                // Missing values right, then left.
                if cl >= minData, count - cl >= minData {
                    let gain = score(gl, hl, leaf.g - gl, leaf.h - hl)
                    if gain > (best?.gain ?? 1e-9) {
                        best = Split(gain: gain, feature: j, bin: bin, missingLeft: false, categories: nil, leftRows: Int(cl))
                    }
                }
                if mc > 0, cl + mc >= minData, count - cl - mc >= minData {
                    let gain = score(gl + mg, hl + mh, leaf.g - gl - mg, leaf.h - hl - mh)
                    if gain > (best?.gain ?? 1e-9) {
                        best = Split(gain: gain, feature: j, bin: bin, missingLeft: true, categories: nil, leftRows: Int(cl + mc))
                    }
                }
            }
        }
        return best
    }

    mutating func node(leafValue: Double) -> Int {
        feature.append(-1)
        threshold.append(leafValue)
        left.append(-1)
        right.append(-1)
        flags.append(0)
        return feature.count - 1
    }

    /// Grows one tree for `output` on `rows`; every row of the table is then routed to its leaf.
    mutating func grow(rows: [Int], gradients g: [Double], hessians h: [Double], output: Int) {
        let lambda = options.lambda, rate = options.learningRate
        var totalG = 0.0, totalH = 0.0
        for i in rows { totalG += g[i]; totalH += h[i] }
        let root = node(leafValue: -totalG / (totalH + lambda) * rate)
        roots.append(Int32(root))
        outputs.append(Int32(output))
        var leaves = [Leaf(node: root, rows: rows, histogram: histogram(rows, g, h), g: totalG, h: totalH, depth: 0)]
        leaves[0].split = bestSplit(leaves[0])
        var count = 1
        while count < options.maxLeaves {
            guard let index = leaves.indices.filter({ leaves[$0].split != nil })
                .max(by: { leaves[$0].split!.gain < leaves[$1].split!.gain }) else { break }
            var leaf = leaves.remove(at: index)
            let split = leaf.split!
            // The leaf becomes a split; its rows go to two new leaves.
            let column = split.feature * n
            var leftRows: [Int] = [], rightRows: [Int] = []
            leftRows.reserveCapacity(split.leftRows)
            let leftSet = Set(split.categories ?? [])
            for i in leaf.rows {
                let bin = Int(binned[column + i])
                let goesLeft = bin == edges[split.feature].count ? split.missingLeft
                    : (split.categories != nil ? leftSet.contains(bin) : bin <= split.bin)
                if goesLeft { leftRows.append(i) } else { rightRows.append(i) }
            }
            var (gl, hl) = (0.0, 0.0)
            for i in leftRows { gl += g[i]; hl += h[i] }
            let (gr, hr) = (leaf.g - gl, leaf.h - hl)
            let leftNode = node(leafValue: -gl / (hl + lambda) * rate)
            let rightNode = node(leafValue: -gr / (hr + lambda) * rate)
            feature[leaf.node] = Int32(split.feature)
            left[leaf.node] = Int32(leftNode)
            right[leaf.node] = Int32(rightNode)
            if let categories = split.categories {
                var words = [UInt32](repeating: 0, count: (categories.max()! / 32) + 1)
                for c in categories { words[c / 32] |= 1 << UInt32(c % 32) }
                threshold[leaf.node] = Double(sets.count)
                sets.append(words)
                flags[leaf.node] = TreeEnsemble.Flag.categorical | TreeEnsemble.Flag.nanMissing
            } else {
                threshold[leaf.node] = edges[split.feature][split.bin]
                flags[leaf.node] = TreeEnsemble.Flag.inclusive | TreeEnsemble.Flag.nanMissing
                    | (split.missingLeft ? TreeEnsemble.Flag.defaultLeft : 0)
            }
            count += 1
            // The smaller child's histogram is built; the larger one's is the parent's minus it.
            let smallIsLeft = leftRows.count <= rightRows.count
            let small = histogram(smallIsLeft ? leftRows : rightRows, g, h)
            var large: [SIMD4<Double>] = []
            swap(&large, &leaf.histogram)  // the parent's is not needed again: no copy
            for b in large.indices { large[b] -= small[b] }
            let depth = leaf.depth + 1
            var children = [
                Leaf(node: leftNode, rows: leftRows, histogram: smallIsLeft ? small : large, g: gl, h: hl, depth: depth),
                Leaf(node: rightNode, rows: rightRows, histogram: smallIsLeft ? large : small, g: gr, h: hr, depth: depth),
            ]
            for c in children.indices where options.maxDepth == 0 || depth < options.maxDepth {
                children[c].split = bestSplit(children[c])
            }
            leaves += children
        }
        // Every row's leaf, for the margins: the grown rows by their leaves, the others (validation rows,
        // rows left out of this round's sample) walked down the tree.
        generation &+= 1
        for leaf in leaves {
            for i in leaf.rows {
                rowLeaf[i] = Int32(leaf.node)
                seen[i] = generation
            }
        }
        for i in 0..<n where seen[i] != generation {
            var node = root
            while feature[node] >= 0 {
                let column = Int(feature[node])
                let bin = Int(binned[column * n + i])
                let missing = edges[column].count
                let goesLeft: Bool
                if flags[node] & TreeEnsemble.Flag.categorical != 0 {
                    let set = sets[Int(threshold[node])]
                    goesLeft = bin != missing && bin / 32 < set.count && set[bin / 32] & (1 << UInt32(bin % 32)) != 0
                } else if bin == missing {
                    goesLeft = flags[node] & TreeEnsemble.Flag.defaultLeft != 0
                } else {
                    goesLeft = edges[column][bin] <= threshold[node]
                }
                node = Int(goesLeft ? left[node] : right[node])
            }
            rowLeaf[i] = Int32(node)
        }
    }

    func predictLast(row: Int) -> Double { threshold[Int(rowLeaf[row])] }

    /// The ensemble of the first `rounds` rounds.
    func ensemble(rounds: Int, outputs count: Int, link: TreeEnsemble.Link, classes: [String]?, base: [Double]) -> TreeEnsemble {
        let trees = rounds * count
        let end = trees < roots.count ? Int(roots[trees]) : feature.count
        let categoricalNodes = (0..<end).filter { feature[$0] >= 0 && flags[$0] & TreeEnsemble.Flag.categorical != 0 }
        let setsUsed = (categoricalNodes.map { Int(threshold[$0]) }.max() ?? -1) + 1
        return TreeEnsemble(link: link, classes: classes, baseMargin: base, roots: Array(roots.prefix(trees)),
                            outputs: Array(outputs.prefix(trees)), feature: Array(feature.prefix(end)),
                            threshold: Array(threshold.prefix(end)), left: Array(left.prefix(end)),
                            right: Array(right.prefix(end)), flags: Array(flags.prefix(end)), sets: Array(sets.prefix(setsUsed)))
    }
}
