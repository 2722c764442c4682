import CycloneModel
import CyclonePrefetch
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
    /// The newest share of the rows kept out to stop early on; 0 trains every round. Once they have chosen the
    /// rounds, the trees are grown again on every row for that many rounds (as LightGBM's users refit at the
    /// best iteration): the newest rows, the most telling when the world drifts, are not left out of the model.
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

/// Histogram gradient boosting over a design matrix of `.raw` and `.code` columns (NaN missing), as LightGBM
/// does it: features binned to at most 255 bins (quantiles of a sample of at most 200,000 rows, bounds between
/// neighbouring values) with missing values in a bin of their own; a histogram of gradient and hessian sums
/// per node, built for the smaller child only (the larger one's is the parent's minus it); splits by gain
/// with L2-regularised leaves (a numeric split tries missing values on either side; a categorical one orders
/// its categories by gradient); trees grown best-first under a leaf and a depth limit; row subsampling; and
/// early stopping on the newest rows (the rounds it chose then grown again on every row). Squared error, log
/// loss and softmax. Binning and histograms use every core; each leaf's rows sit together in one index array,
/// partitioned in place as the tree grows.
public struct GradientBoosting: Sendable {
    public enum Objective: Sendable { case squaredError, logLoss, softmax(classes: Int) }

    public var options: BoostingOptions
    public init(options: BoostingOptions) { self.options = options }

    /// The fitted ensemble, the rounds it kept, and every row's margins after the last round grown (as the
    /// bins routed the rows: what the ensemble gives them, since with early stopping the ensemble returned is
    /// the refit on every row).
    public func fit(x: [Double], p: Int, categorical: Set<Int>, labels: [Double], objective: Objective,
                    classes: [String]?) throws(TrainingError) -> (ensemble: TreeEnsemble, rounds: Int, margins: [Double]) {
        let n = labels.count
        guard n >= 2, x.count == n * p else { throw TrainingError("gradient boosting needs at least two rows") }
        guard p >= 1 else { throw TrainingError("gradient boosting needs at least one feature") }
        guard n < Int(Int32.max) else { throw TrainingError("gradient boosting takes fewer than \(Int32.max) rows") }
        if let problem = options.problem { throw TrainingError(problem) }
        let outputs: Int = if case .softmax(let k) = objective { k } else { 1 }
        let validation = options.validation > 0 && n >= 50 ? Int(Double(n) * options.validation) : 0
        let trainRows = n - validation
        let bins = BinnedTable(x: x, p: p, fitRows: trainRows, categorical: categorical, seed: options.seed)

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

        var builder = TreeBuilder(options: options, bins: bins)
        var random = SplitMix64(seed: options.seed)
        // Per output: each round's derivatives are taken at the margins before any of its trees.
        var gradients = [[TreeBuilder.Cell]](repeating: [TreeBuilder.Cell](repeating: .zero, count: n), count: outputs)
        let everyRow = (0..<Int32(trainRows)).map { $0 }
        var bestLoss = Double.infinity, bestRounds = 0, sinceBest = 0
        var rounds = 0
        for _ in 0..<options.trees {
            let rows = options.subsample < 1 ? everyRow.filter { _ in random.uniform() < options.subsample } : everyRow
            guard rows.count >= 2 else { continue }
            Self.gradients(objective, labels: labels, margin: margin, rows: trainRows, outputs: outputs, into: &gradients)
            for k in 0..<outputs {
                builder.grow(rows: rows, gradients: gradients[k], output: k, of: outputs, margin: &margin)
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
        if validation > 0 {
            var again = options
            (again.validation, again.trees) = (0, kept)
            return try GradientBoosting(options: again).fit(x: x, p: p, categorical: categorical, labels: labels,
                                                            objective: objective, classes: classes)
        }
        let link: TreeEnsemble.Link = switch objective {
        case .squaredError: .identity
        case .logLoss: .logistic
        case .softmax: .softmax
        }
        return (builder.ensemble(rounds: kept, outputs: outputs, link: link, classes: classes, base: base), kept, margin)
    }

    /// The first and second derivatives of the loss at each row's margin, per output (softmax: each row's
    /// normaliser once for all its classes).
    static func gradients(_ objective: Objective, labels: [Double], margin: [Double], rows: Int, outputs: Int,
                          into gh: inout [[TreeBuilder.Cell]]) {
        switch objective {
        case .squaredError:
            for i in 0..<rows { gh[0][i] = TreeBuilder.Cell(margin[i] - labels[i], 1) }
        case .logLoss:
            for i in 0..<rows {
                let probability = sigmoid(margin[i])
                gh[0][i] = TreeBuilder.Cell(probability - labels[i], max(probability * (1 - probability), 1e-16))
            }
        case .softmax:
            for i in 0..<rows {
                var top = -Double.infinity
                for c in 0..<outputs { top = max(top, margin[i * outputs + c]) }
                var sum = 0.0
                for c in 0..<outputs { sum += exp(margin[i * outputs + c] - top) }
                for k in 0..<outputs {
                    let probability = exp(margin[i * outputs + k] - top) / sum
                    gh[k][i] = TreeBuilder.Cell(probability - (Int(labels[i]) == k ? 1 : 0), max(probability * (1 - probability), 1e-16))
                }
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

/// A design matrix binned for boosting. Per column, the upper bounds of its value bins (a value is in the
/// first bin whose bound is at least the value; the last bound is infinite) and then a bin for missing
/// values; a categorical column's code is its bin. The bins are stored row-major, a byte per cell, so a
/// histogram reads each row's bins from one cache line.
struct BinnedTable: Sendable {
    let n: Int, p: Int
    /// Per column: the bins' upper bounds (a categorical column's: its codes).
    let edges: [[Double]]
    let isCategorical: [Bool]
    /// Row-major: `codes[i * p + j]` is row `i`'s bin in column `j` (histograms read whole rows).
    let codes: [UInt8]
    /// The same column-major: `columns[j * n + i]` (partitions read one column).
    let columns: [UInt8]
    /// Where each column's bins start in a histogram; `offsets[p]` is its length.
    let offsets: [Int]

    /// The bin of a column's missing values (and of categories past its last bin).
    func missing(_ j: Int) -> Int { edges[j].count }

    /// The bounds come from the first `fitRows` rows, or a random 200,000 of them when there are more (as
    /// LightGBM's `bin_construct_sample_cnt`); every row is binned.
    init(x: [Double], p: Int, fitRows: Int, categorical: Set<Int>, sample: Int = 200_000, seed: UInt64) {
        let n = p == 0 ? 0 : x.count / p
        self.n = n
        self.p = p
        isCategorical = (0..<p).map(categorical.contains)
        var chosen: [Int] = []
        if fitRows > sample {
            // Selection sampling (Knuth's algorithm S): exactly `sample` rows, in order.
            var random = SplitMix64(seed: seed), needed = sample
            for i in 0..<fitRows where needed > 0 && Double(fitRows - i) * random.uniform() < Double(needed) {
                chosen.append(i)
                needed -= 1
            }
        }
        let rows = chosen.isEmpty ? Array(0..<fitRows) : chosen
        var edges = [[Double]](repeating: [], count: p)
        let isCategorical = self.isCategorical
        edges.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer
            DispatchQueue.concurrentPerform(iterations: p) { j in
                if isCategorical[j] {
                    // Codes from every row, so that no category is taken for missing.
                    var top = -1.0
                    for i in 0..<fitRows where x[i * p + j] > top { top = x[i * p + j] }
                    out[j] = (0...Int(min(max(top, 0), 254))).map(Double.init)
                    return
                }
                var values: [Double] = []
                values.reserveCapacity(rows.count)
                for i in rows where !x[i * p + j].isNaN { values.append(x[i * p + j]) }
                values.sort()
                out[j] = Self.bounds(sorted: values)
            }
        }
        self.edges = edges
        var offsets = [0]
        for column in edges { offsets.append(offsets.last! + column.count + 1) }
        self.offsets = offsets

        // Every row binned, on every core: a binary search per numeric cell.
        var codes = [UInt8](repeating: 0, count: n * p), columns = codes
        let flat = edges.flatMap { $0 }, starts = offsets.indices.map { offsets[$0] - $0 }
        let parts = max(1, min(TreeBuilder.cores, n / 4_096))
        codes.withUnsafeMutableBufferPointer { byRow in
            columns.withUnsafeMutableBufferPointer { byColumn in
                nonisolated(unsafe) let (byRow, byColumn) = (byRow, byColumn)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    flat.withUnsafeBufferPointer { flat in
                        for i in (part * n / parts)..<((part + 1) * n / parts) {
                            for j in 0..<p {
                                let v = x[i * p + j], count = starts[j + 1] - starts[j]
                                let bin: Int
                                if v.isNaN {
                                    bin = count
                                } else if isCategorical[j] {
                                    bin = v >= 0 && v < Double(count) ? Int(v) : count
                                } else {
                                    var lo = starts[j], hi = starts[j + 1] - 1  // the first bound >= v
                                    while lo < hi {
                                        let mid = (lo + hi) / 2
                                        if flat[mid] >= v { hi = mid } else { lo = mid + 1 }
                                    }
                                    bin = lo - starts[j]
                                }
                                byRow[i * p + j] = UInt8(bin)
                                byColumn[j * n + i] = UInt8(bin)
                            }
                        }
                    }
                }
            }
        }
        self.codes = codes
        self.columns = columns
    }

    /// A numeric column's bin bounds from its sorted present values: each distinct value's own bin when
    /// there are at most 255, otherwise 255 bins of about equal counts; a bound sits halfway to the next value.
    static func bounds(sorted values: [Double]) -> [Double] {
        var distinct: [Double] = []
        for v in values where distinct.last != v { distinct.append(v) }
        if distinct.count <= 255 {
            return zip(distinct, distinct.dropFirst()).map { $0 + ($1 - $0) / 2 } + (distinct.isEmpty ? [] : [.infinity])
        }
        var bounds: [Double] = []
        for b in 1..<255 {
            let v = values[b * values.count / 255]
            // The next larger value: the first position past every copy of v.
            var lo = b * values.count / 255, hi = values.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if values[mid] > v { hi = mid } else { lo = mid + 1 }
            }
            guard lo < values.count else { break }
            let bound = v + (values[lo] - v) / 2
            if bounds.last.map({ $0 < bound }) ?? true { bounds.append(bound) }
        }
        return bounds + [.infinity]
    }
}

/// Grows one tree at a time into the flat node arrays of the ensemble.
struct TreeBuilder {
    /// A histogram cell: the sums of gradient and hessian.
    typealias Cell = SIMD2<Double>

    let options: BoostingOptions
    let bins: BinnedTable
    var feature: [Int32] = [], threshold: [Double] = [], left: [Int32] = [], right: [Int32] = [], flags: [UInt8] = []
    var sets: [[UInt32]] = []
    var roots: [Int32] = [], outputs: [Int32] = []
    /// The rows of the tree being grown; each leaf's are a contiguous range.
    var index: [Int32] = []
    private var scratch: [Int32] = []
    /// Per node of the tree being grown, from its root: which bins go left (1) or right (0), 256 a node.
    private var routes: [UInt8] = []
    /// Which rows the tree being grown placed, when they are a sample (`generation` marks them).
    private var seen: [UInt32]
    private var generation: UInt32 = 0
    static let cores = ProcessInfo.processInfo.activeProcessorCount
    /// The most shares a histogram is summed in (more than most machines' cores; see `histogram`).
    static let histogramShares = 16

    init(options: BoostingOptions, bins: BinnedTable) {
        self.options = options
        self.bins = bins
        seen = [UInt32](repeating: 0, count: bins.n)
    }

    struct Leaf {
        var node: Int
        var rows: Range<Int>  // in `index`
        var histogram: [Cell]  // per column, its bins and then its missing bin
        var sum: Cell
        var depth: Int
        var split: Split?
    }

    struct Split {
        var gain: Double
        var feature: Int
        var bin: Int  // numeric: bins <= bin go left
        var missingLeft: Bool
        var categories: [Int]?  // categorical: codes going left
        var left: Cell
    }

    /// The histogram of the rows in `index[range]`: per column and bin, the sums of their gradients and
    /// hessians. A big node is split into shares of at least 8,192 rows (at most `histogramShares`), summed
    /// on the cores into histograms of their own and added up in share order: the number of shares, and so
    /// every sum's order, depends on the rows only, never on the machine's cores, so training gives the same
    /// model to the bit on any machine.
    func histogram(_ range: Range<Int>, _ gh: [Cell]) -> [Cell] {
        let cells = bins.offsets[bins.p], p = bins.p
        let parts = max(1, min(Self.histogramShares, range.count / 8_192))
        var partials = [Cell](repeating: .zero, count: cells * parts)
        partials.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer.baseAddress!
            index.withUnsafeBufferPointer { index in
                gh.withUnsafeBufferPointer { gh in
                    bins.codes.withUnsafeBufferPointer { codes in
                        bins.offsets.withUnsafeBufferPointer { offsets in
                            nonisolated(unsafe) let (index, gh, codes, offsets) = (index, gh, codes, offsets)
                            let part: @Sendable (Int) -> Void = { t in
                                let target = out + t * cells
                                let end = range.lowerBound + (t + 1) * range.count / parts
                                for k in (range.lowerBound + t * range.count / parts)..<end {
                                    // The rows of a deep leaf are scattered: their bins and gradients are
                                    // asked for a few rows ahead.
                                    let ahead = Int(index[min(k &+ 12, end &- 1)])
                                    cyclone_prefetch(codes.baseAddress! + ahead &* p)
                                    cyclone_prefetch(gh.baseAddress! + ahead)
                                    let row = Int(index[k]), value = gh[row], base = row * p
                                    for j in 0..<p { target[offsets[j] &+ Int(codes[base &+ j])] += value }
                                }
                            }
                            if parts == 1 { part(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: part) }
                        }
                    }
                }
            }
            for t in 1..<parts { for c in 0..<cells { out[c] += out[t * cells + c] } }
        }
        if parts > 1 { partials.removeLast(cells * (parts - 1)) }
        return partials
    }

    /// The best split of a leaf, or `nil`. Row counts are read from the hessian sums, as LightGBM does
    /// (exact when every hessian is 1).
    func bestSplit(_ leaf: Leaf) -> Split? {
        let lambda = options.lambda, minData = Double(options.minDataInLeaf)
        let histogram = leaf.histogram, total = leaf.sum
        let parent = total.x * total.x / (total.y + lambda)
        let count = Double(leaf.rows.count), perHessian = total.y > 0 ? count / total.y : 0
        var best: Split?
        func gain(_ l: Cell) -> Double {
            let r = total - l
            return l.x * l.x / (l.y + lambda) + r.x * r.x / (r.y + lambda) - parent
        }
        func fits(_ l: Cell) -> Bool {
            let leftCount = (l.y * perHessian).rounded()
            return leftCount >= minData && count - leftCount >= minData
        }
        for j in 0..<bins.p {
            let offset = bins.offsets[j], binCount = bins.edges[j].count
            let missing = histogram[offset + binCount]
            if bins.isCategorical[j] {
                // Categories ordered by gradient over hessian; the best prefix goes left (missing goes right).
                let present = (0..<binCount).filter { histogram[offset + $0].y > 0 }
                let ordered = present.sorted {
                    histogram[offset + $0].x / (histogram[offset + $0].y + lambda)
                        < histogram[offset + $1].x / (histogram[offset + $1].y + lambda)
                }
                var l = Cell.zero
                for (position, bin) in ordered.dropLast().enumerated() {
                    l += histogram[offset + bin]
                    guard fits(l) else { continue }
                    let g = gain(l)
                    if g > (best?.gain ?? 1e-9) {
                        best = Split(gain: g, feature: j, bin: 0, missingLeft: false, categories: Array(ordered[...position]), left: l)
                    }
                }
                continue
            }
            // Each bound with missing values right, then left; the last bound only with them right.
            var l = Cell.zero
            for bin in 0..<binCount {
                l += histogram[offset + bin]
                if fits(l) {
                    let g = gain(l)
                    if g > (best?.gain ?? 1e-9) {
                        best = Split(gain: g, feature: j, bin: bin, missingLeft: false, categories: nil, left: l)
                    }
                }
                let withMissing = l + missing
                if missing.y > 0, bin < binCount - 1, fits(withMissing) {
                    let g = gain(withMissing)
                    if g > (best?.gain ?? 1e-9) {
                        best = Split(gain: g, feature: j, bin: bin, missingLeft: true, categories: nil, left: withMissing)
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

    /// Moves the rows of `range` that `goesLeft` to its front, keeping their order; returns where the
    /// right child's rows start. A big range is split between the cores: each moves its share's left rows
    /// to the share's front and its right rows aside (branch-free: each row is written to both, and one
    /// side advances), then the shares' left rows close up and the right rows follow them.
    mutating func partition(_ range: Range<Int>, column: Int, goesLeft: ArraySlice<UInt8>) -> Int {
        if scratch.count < bins.n { scratch = [Int32](repeating: 0, count: bins.n) }
        let parts = max(1, min(Self.cores, range.count / 32_768))
        var lefts = [Int](repeating: 0, count: parts)
        let n = bins.n
        index.withUnsafeMutableBufferPointer { index in
            scratch.withUnsafeMutableBufferPointer { scratch in
                bins.columns.withUnsafeBufferPointer { columns in
                    goesLeft.withUnsafeBufferPointer { goesLeft in
                        lefts.withUnsafeMutableBufferPointer { lefts in
                            nonisolated(unsafe) let (index, scratch, lefts) = (index, scratch, lefts)
                            nonisolated(unsafe) let (bins, goesLeft) = (columns.baseAddress! + column * n, goesLeft)
                            let part: @Sendable (Int) -> Void = { t in
                                let start = range.lowerBound + t * range.count / parts
                                let end = range.lowerBound + (t + 1) * range.count / parts
                                var next = start, spilled = start
                                for k in start..<end {
                                    cyclone_prefetch(bins + Int(index[min(k &+ 16, end &- 1)]))
                                    let row = index[k]
                                    let isLeft = Int(goesLeft[Int(bins[Int(row)])])
                                    index[next] = row
                                    scratch[spilled] = row
                                    next &+= isLeft
                                    spilled &+= 1 &- isLeft
                                }
                                lefts[t] = next - start
                            }
                            if parts == 1 { part(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: part) }
                        }
                        var next = range.lowerBound
                        for t in 0..<parts {
                            let start = range.lowerBound + t * range.count / parts
                            if next != start {
                                (index.baseAddress! + next).update(from: index.baseAddress! + start, count: lefts[t])
                            }
                            next += lefts[t]
                        }
                        let middle = next
                        for t in 0..<parts {
                            let start = range.lowerBound + t * range.count / parts
                            let end = range.lowerBound + (t + 1) * range.count / parts
                            let rights = end - start - lefts[t]
                            (index.baseAddress! + next).update(from: scratch.baseAddress! + start, count: rights)
                            next += rights
                        }
                        lefts[0] = middle
                    }
                }
            }
        }
        return lefts[0]
    }

    /// Grows one tree for `output` on `rows`, and adds its leaves to every row's margin: the grown rows by
    /// their leaves, the others (validation rows, rows left out of this round's sample) walked down it.
    mutating func grow(rows: [Int32], gradients gh: [Cell], output: Int, of outputCount: Int, margin: inout [Double]) {
        let lambda = options.lambda, rate = options.learningRate
        index = rows
        var total = Cell.zero
        for row in rows { total += gh[Int(row)] }
        let root = node(leafValue: -total.x / (total.y + lambda) * rate)
        roots.append(Int32(root))
        outputs.append(Int32(output))
        routes.removeAll(keepingCapacity: true)
        var leaves = [Leaf(node: root, rows: 0..<rows.count, histogram: histogram(0..<rows.count, gh), sum: total, depth: 0)]
        leaves[0].split = bestSplit(leaves[0])
        var count = 1
        while count < options.maxLeaves {
            guard let chosen = leaves.indices.filter({ leaves[$0].split != nil })
                .max(by: { leaves[$0].split!.gain < leaves[$1].split!.gain }) else { break }
            var leaf = leaves.remove(at: chosen)
            let split = leaf.split!
            // The leaf becomes a split; its rows go to two new leaves.
            let route = (leaf.node - root) * 256
            let needed = route + 256 - routes.count
            if needed > 0 { routes += repeatElement(0, count: needed) }
            if let categories = split.categories {
                for c in categories { routes[route + c] = 1 }
            } else {
                for b in 0...split.bin { routes[route + b] = 1 }
                routes[route + bins.missing(split.feature)] = split.missingLeft ? 1 : 0
            }
            let middle = partition(leaf.rows, column: split.feature, goesLeft: routes[route..<(route + 256)])
            let (l, r) = (split.left, leaf.sum - split.left)
            let leftNode = node(leafValue: -l.x / (l.y + lambda) * rate)
            let rightNode = node(leafValue: -r.x / (r.y + lambda) * rate)
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
                // The last bound is infinite (every present value left); JSON has no infinity.
                threshold[leaf.node] = min(bins.edges[split.feature][split.bin], .greatestFiniteMagnitude)
                flags[leaf.node] = TreeEnsemble.Flag.inclusive | TreeEnsemble.Flag.nanMissing
                    | (split.missingLeft ? TreeEnsemble.Flag.defaultLeft : 0)
            }
            count += 1
            let leftRows = leaf.rows.lowerBound..<middle, rightRows = middle..<leaf.rows.upperBound
            let depth = leaf.depth + 1
            // Children that may not split need no histograms: the last leaf, the depth limit, too few rows.
            guard count < options.maxLeaves, options.maxDepth == 0 || depth < options.maxDepth,
                  max(leftRows.count, rightRows.count) >= 2 * options.minDataInLeaf else {
                leaves += [Leaf(node: leftNode, rows: leftRows, histogram: [], sum: l, depth: depth),
                           Leaf(node: rightNode, rows: rightRows, histogram: [], sum: r, depth: depth)]
                continue
            }
            // The smaller child's histogram is built; the larger one's is the parent's minus it.
            let smallIsLeft = leftRows.count <= rightRows.count
            let small = histogram(smallIsLeft ? leftRows : rightRows, gh)
            var large: [Cell] = []
            swap(&large, &leaf.histogram)  // the parent's is not needed again: no copy
            for b in large.indices { large[b] -= small[b] }
            var children = [
                Leaf(node: leftNode, rows: leftRows, histogram: smallIsLeft ? small : large, sum: l, depth: depth),
                Leaf(node: rightNode, rows: rightRows, histogram: smallIsLeft ? large : small, sum: r, depth: depth),
            ]
            for c in children.indices { children[c].split = bestSplit(children[c]) }
            leaves += children
        }
        // Rows sorted and distinct: when their count reaches past the last, they are the first rows, and
        // the rest of the table is what the tree did not place; otherwise `generation` marks the placed.
        let isPrefix = rows.count == Int(rows.last!) + 1
        if !isPrefix { generation &+= 1 }
        index.withUnsafeBufferPointer { index in
            margin.withUnsafeMutableBufferPointer { margin in
                for leaf in leaves {
                    let value = threshold[leaf.node]
                    for k in leaf.rows {
                        let row = Int(index[k])
                        margin[row &* outputCount &+ output] += value
                        if !isPrefix { seen[row] = generation }
                    }
                }
            }
        }
        let p = bins.p
        for i in (isPrefix ? rows.count : 0)..<bins.n where isPrefix || seen[i] != generation {
            var node = root
            while feature[node] >= 0 {
                let bin = Int(bins.codes[i * p + Int(feature[node])])
                node = Int(routes[(node - root) * 256 + bin] != 0 ? left[node] : right[node])
            }
            margin[i * outputCount + output] += threshold[node]
        }
    }

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
