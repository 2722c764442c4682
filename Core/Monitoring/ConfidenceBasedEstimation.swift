import CycloneModel
import Foundation

/// Confidence-based performance estimation (CBPE) for a binary classifier, as NannyML 0.13 computes it: the
/// performance of a window of predictions estimated from the model's own probabilities, before any label
/// arrives. On the reference (labelled rows the model is trusted on) it decides whether the probabilities need
/// calibrating (isotonic regression, kept only when it lowers the expected calibration error over ten seeded
/// shuffle splits), fits the calibrator, measures each metric's sampling-error components and its alert
/// thresholds (mean ± 3 std of the realised metric over the reference's chunks). A window is then estimated
/// from the expected confusion matrix of the calibrated probabilities and the model's own predictions, with a
/// band of ± 3 sampling errors clipped to [0, 1].
///
/// `scripts/fixtures/nannyml/NOTES.md` gives the algorithm with its sources; the tests check it against
/// nannyml's own estimates on fixtures that `scripts/fixtures/nannyml` generates.
public struct ConfidenceBasedEstimation: Sendable {
    public enum Metric: String, CaseIterable, Sendable, Codable {
        case rocAUC = "roc_auc", f1, precision, recall, specificity, accuracy
    }

    /// One labelled or unlabelled row: the model's probability of the positive class, its predicted class
    /// (0 or 1, as the model decided it), and the label when known.
    public struct Row: Sendable {
        public var probability: Double
        public var predicted: Int
        public var label: Int?

        public init(probability: Double, predicted: Int, label: Int? = nil) {
            self.probability = probability
            self.predicted = predicted
            self.label = label
        }
    }

    /// A metric estimated on one window (by CBPE, or by DLE).
    public struct Estimate: Sendable, Equatable {
        public var value: Double
        public var samplingError: Double
        /// `value` ± 3 sampling errors, clipped to [0, `upperLimit`]; NaN when the value or its error is.
        public var lower: Double
        public var upper: Double
        /// Outside the reference's thresholds (never for a NaN value).
        public var alert: Bool

        /// - Parameter upperLimit: 1 for CBPE's shares; a loss (DLE) has none.
        public init(value: Double, samplingError: Double, thresholds: (lower: Double, upper: Double),
                    upperLimit: Double = 1)
        {
            self.value = value
            self.samplingError = samplingError
            if value.isNaN || samplingError.isNaN {
                (lower, upper) = (.nan, .nan)
            } else {
                (lower, upper) = (max(0, value - 3 * samplingError), min(upperLimit, value + 3 * samplingError))
            }
            alert = value < thresholds.lower || value > thresholds.upper
        }

        /// The estimate of an empty window: nothing known, nothing alerted.
        static let none = Estimate(value: .nan, samplingError: .nan, thresholds: (0, 1))
    }

    public let metrics: [Metric]
    /// Whether the reference's probabilities are calibrated before estimating (the ECE test's verdict).
    public let calibrates: Bool
    /// The reference's expected calibration error before and after isotonic calibration (cross-validated).
    public let calibrationError: (before: Double, after: Double)?
    let calibrator: IsotonicRegression?
    /// Per metric: the spread and the share of rows it is divided by (`samplingError`).
    let components: [Metric: (spread: Double, share: Double)]
    /// Per metric: the alert thresholds.
    public let thresholds: [Metric: (lower: Double, upper: Double)]

    /// Fits the estimation on labelled `reference` rows, its thresholds on chunks of `chunkSize` rows (the last
    /// one shorter when the rows do not divide). Nil unless every row has a finite probability and a label and
    /// prediction of 0 or 1, and each class has at least two of at least 20 rows (as scikit-learn's shuffle
    /// splits need).
    public init?(reference: [Row], chunkSize: Int, metrics: [Metric] = Metric.allCases) {
        let labelled = reference.compactMap { row in row.label.map { (row, $0) } }
        guard labelled.count == reference.count, reference.count >= 20, chunkSize > 0,
              reference.allSatisfy({ $0.probability.isFinite && ($0.predicted == 0 || $0.predicted == 1) }),
              labelled.allSatisfy({ $0.1 == 0 || $0.1 == 1 }),
              (0...1).allSatisfy({ label in labelled.filter { $0.1 == label }.count >= 2 })
        else { return nil }
        self.metrics = metrics
        let labels = labelled.map(\.1), probabilities = reference.map(\.probability), predicted = reference.map(\.predicted)
        // The probabilities are sorted once, for the calibration test and the calibrator alike. The test (its
        // shuffle splits are drawn one after the other) and the metrics' components and thresholds do not
        // depend on each other, so they are worked out side by side.
        let order = sortedOrder(probabilities)
        let chunks = Self.chunks(reference.count, size: chunkSize)
        let (decision, measured) = concurrently({
            Self.needsCalibration(labels: labels, probabilities: probabilities, order: order)
        }, {
            metrics.map { metric in
                let realised = chunks.map { range in
                    Self.realised(metric, labels: Array(labels[range]), predicted: Array(predicted[range]),
                                  probabilities: Array(probabilities[range]))
                }
                return (components: Self.components(metric, labels: labels, predicted: predicted, probabilities: probabilities),
                        thresholds: Self.thresholds(realised))
            }
        })
        calibrates = decision.needs
        calibrationError = decision.errors
        calibrator = calibrates ? IsotonicRegression(ascending: order.map { probabilities[$0] },
                                                     labels: order.map { Double(labels[$0]) }) : nil
        components = Dictionary(zip(metrics, measured.map(\.components)), uniquingKeysWith: { $1 })
        thresholds = Dictionary(zip(metrics, measured.map(\.thresholds)), uniquingKeysWith: { $1 })
    }

    /// The probabilities as the estimation reads them: calibrated when the reference needed it.
    public func calibrated(_ probabilities: [Double]) -> [Double] {
        calibrator.map { calibrator in probabilities.map(calibrator.predict) } ?? probabilities
    }

    /// Each metric estimated on one window of `rows` (their labels unused); rows without a finite probability
    /// or with a prediction other than 0 or 1 are left out, as nannyml leaves them out of every cell.
    public func estimate(_ rows: [Row]) -> [Metric: Estimate] {
        let rows = rows.filter { $0.probability.isFinite && ($0.predicted == 0 || $0.predicted == 1) }
        guard !rows.isEmpty else { return Dictionary(uniqueKeysWithValues: metrics.map { ($0, Estimate.none) }) }
        let probabilities = rows.map(\.probability), predicted = rows.map(\.predicted)
        let calibrated = calibrated(probabilities)
        var estimates: [Metric: Estimate] = [:]
        for metric in metrics {
            let value = Self.estimate(metric, predicted: predicted, calibrated: calibrated, probabilities: probabilities)
            let (spread, share) = components[metric]!
            let error = metric == .accuracy ? spread / Double(rows.count).squareRoot()
                                            : spread / (Double(rows.count) * share).squareRoot()
            estimates[metric] = Estimate(value: value, samplingError: error, thresholds: thresholds[metric]!)
        }
        return estimates
    }

    // MARK: - The calibration decision

    /// Whether isotonic calibration lowers the expected calibration error of the probabilities, over ten
    /// stratified shuffle splits (a tenth held out, seed 42) of the reference, as NannyML decides it; with the
    /// two errors. A model already separating the classes (ROC AUC above 0.999) is left alone. `order` puts the
    /// probabilities in ascending order (`sortedOrder`), for a caller that has it.
    static func needsCalibration(labels: [Int], probabilities: [Double], order: [Int]? = nil)
        -> (needs: Bool, errors: (before: Double, after: Double)?)
    {
        let order = order ?? sortedOrder(probabilities)
        guard let auc = rocAUC(scores: probabilities, positives: labels.map { $0 == 1 }, ascending: order), auc <= 0.999
        else { return (false, nil) }
        // The splits' calibrators are fitted side by side, and their held-out rows put together in split order.
        // A split's training rows are taken in the order of all the rows, so no fit sorts: the labels are 0 or
        // 1, and rows of equal probability add up to the same whatever their order.
        let splits = stratifiedShuffleSplits(labels, splits: 10, testShare: 0.1, seed: 42)
        let sortedProbabilities = order.map { probabilities[$0] }
        let heldCalibrated = concurrentMap(splits.count) { split in
            let (train, test) = splits[split]
            var isTraining = [Bool](repeating: false, count: probabilities.count)
            for row in train { isTraining[row] = true }
            var x: [Double] = [], y: [Double] = []
            x.reserveCapacity(train.count)
            y.reserveCapacity(train.count)
            for (rank, row) in order.enumerated() where isTraining[row] {
                x.append(sortedProbabilities[rank])
                y.append(Double(labels[row]))
            }
            let calibrator = IsotonicRegression(ascending: x, labels: y)
            return test.map { calibrator.predict(probabilities[$0]) }
        }.flatMap { $0 }
        let heldLabels = splits.flatMap { $0.test.map { labels[$0] } }
        let heldProbabilities = splits.flatMap { $0.test.map { probabilities[$0] } }
        let edges = binEdges(heldProbabilities.count, bins: 10)
        let errors = concurrentMap(2) { k in
            expectedCalibrationError(labels: heldLabels, probabilities: k == 0 ? heldProbabilities : heldCalibrated, edges: edges)
        }
        return (errors[0] > errors[1], (errors[0], errors[1]))
    }

    /// NannyML's expected calibration error: the rows sorted by probability (stably) and cut into equal bins by
    /// count; the mean gap between probability and label per bin, weighted by the bin's share.
    static func expectedCalibrationError(labels: [Int], probabilities: [Double], edges: [Range<Int>]) -> Double {
        let order = stableOrder(probabilities)
        var total = 0.0
        for bin in edges where !bin.isEmpty {
            let meanProbability = bin.reduce(0.0) { $0 + probabilities[order[$1]] } / Double(bin.count)
            let meanLabel = bin.reduce(0.0) { $0 + Double(labels[order[$1]]) } / Double(bin.count)
            total += Double(bin.count) / Double(probabilities.count) * abs(meanProbability - meanLabel)
        }
        return total
    }

    /// Bins of `bins` rows' width (fewer bins for fewer than twice as many rows), the last one taking the rest.
    static func binEdges(_ count: Int, bins: Int) -> [Range<Int>] {
        let bins = count <= 2 * bins ? count / 2 : bins
        guard bins > 0 else { return [0..<count] }
        let width = count / bins
        var edges = Array(stride(from: 0, through: count, by: width))
        edges[edges.count - 1] = count
        return zip(edges, edges.dropFirst()).map { $0..<$1 }
    }

    /// scikit-learn's `StratifiedShuffleSplit(n_splits, test_size, random_state=seed)`: the train and test
    /// indices of each split, drawn with numpy's legacy MT19937 as scikit-learn draws them.
    static func stratifiedShuffleSplits(_ labels: [Int], splits: Int, testShare: Double, seed: UInt32)
        -> [(train: [Int], test: [Int])]
    {
        let n = labels.count
        let testCount = Int((testShare * Double(n)).rounded(.up)), trainCount = n - testCount
        let classes = Set(labels).sorted()
        let members = classes.map { label in labels.indices.filter { labels[$0] == label } }
        let counts = members.map(\.count)
        var random = NumpyRandomState(seed: seed)
        var result: [(train: [Int], test: [Int])] = []
        for _ in 0..<splits {
            let trainCounts = approximateMode(counts, draws: trainCount, random: &random)
            let testCounts = approximateMode(zip(counts, trainCounts).map { $0 - $1 }, draws: testCount, random: &random)
            var train: [Int] = [], test: [Int] = []
            for (index, group) in members.enumerated() {
                let shuffled = random.permutation(group.count).map { group[$0] }
                train += shuffled[..<trainCounts[index]]
                test += shuffled[trainCounts[index]..<(trainCounts[index] + testCounts[index])]
            }
            result.append((random.permutation(train.count).map { train[$0] }, random.permutation(test.count).map { test[$0] }))
        }
        return result
    }

    /// scikit-learn's `_approximate_mode`: `draws` spread over classes in proportion to `counts`, the remainder
    /// going to the largest fractional parts, ties broken by a draw without replacement.
    static func approximateMode(_ counts: [Int], draws: Int, random: inout NumpyRandomState) -> [Int] {
        let total = Double(counts.reduce(0, +))
        let continuous = counts.map { Double($0) / total * Double(draws) }
        var floored = continuous.map { $0.rounded(.down) }
        var needed = draws - Int(floored.reduce(0, +))
        if needed > 0 {
            let remainders = zip(continuous, floored).map { $0 - $1 }
            for value in Set(remainders).sorted(by: >) {
                let tied = remainders.indices.filter { remainders[$0] == value }
                let adding = min(tied.count, needed)
                for index in random.permutation(tied.count).prefix(adding).map({ tied[$0] }) { floored[index] += 1 }
                needed -= adding
                if needed == 0 { break }
            }
        }
        return floored.map { Int($0) }
    }

    // MARK: - Metrics

    /// A metric estimated from the calibrated probabilities: ROC AUC from the running sum of calibrated
    /// probabilities in the order of the raw scores (rounded to 5 decimals, as NannyML does), the others from
    /// the expected confusion matrix with the model's own predictions.
    static func estimate(_ metric: Metric, predicted: [Int], calibrated: [Double], probabilities: [Double]) -> Double {
        if metric == .rocAUC {
            let order = stableOrder(probabilities).reversed()
            var truePositives = [0.0], falsePositives = [0.0], sum = 0.0
            for (k, index) in order.enumerated() {
                sum += calibrated[index]
                truePositives.append(sum)
                falsePositives.append(Double(1 + k) - sum)
            }
            let tp = truePositives.map { roundHalfEven($0, decimals: 5) }
            let fp = falsePositives.map { roundHalfEven($0, decimals: 5) }
            let tpr = tp.map { $0 / tp.last! }, fpr = fp.map { $0 / fp.last! }
            var area = 0.0
            for i in 0..<(fpr.count - 1) {
                let width = fpr[i + 1] - fpr[i]
                area += width * (tpr[i + 1] + tpr[i]) / 2
            }
            return area
        }
        var tp = 0.0, fp = 0.0, fn = 0.0, tn = 0.0
        for (label, p) in zip(predicted, calibrated) {
            if label == 1 { tp += p; fp += 1 - p } else { fn += p; tn += 1 - p }
        }
        func ratio(_ a: Double, _ b: Double) -> Double { b != 0 ? a / b : 0 }
        switch metric {
        case .f1: return ratio(tp, tp + 0.5 * (fp + fn))
        case .precision: return ratio(tp, tp + fp)
        case .recall: return ratio(tp, tp + fn)
        case .specificity: return ratio(tn, tn + fp)
        case .accuracy, .rocAUC: return (tp + tn) / Double(predicted.count)
        }
    }

    /// A metric on labelled rows, as NannyML reports it (NaN where it is undefined).
    public static func realised(_ metric: Metric, labels: [Int], predicted: [Int], probabilities: [Double]) -> Double {
        if metric == .rocAUC {
            return rocAUC(scores: probabilities, positives: labels.map { $0 == 1 }) ?? .nan
        }
        let (tp, fp, fn, tn) = confusion(labels: labels, predicted: predicted)
        switch metric {
        case .accuracy: return Double(tp + tn) / Double(labels.count)
        case .specificity: return tn + fp > 0 ? Double(tn) / Double(tn + fp) : .nan
        default: break
        }
        guard labels.contains(where: { $0 != labels[0] }), predicted.contains(where: { $0 != predicted[0] }) else { return .nan }
        switch metric {
        case .precision: return tp + fp > 0 ? Double(tp) / Double(tp + fp) : 0
        case .recall: return tp + fn > 0 ? Double(tp) / Double(tp + fn) : 0
        default: return tp + fp + fn > 0 ? Double(2 * tp) / Double(2 * tp + fp + fn) : 0
        }
    }

    /// The sampling error's components of a metric on the reference: a spread (the population standard
    /// deviation of per-row contributions) and the share of rows it is divided by.
    static func components(_ metric: Metric, labels: [Int], predicted: [Int], probabilities: [Double]) -> (Double, Double) {
        let n = Double(labels.count)
        func spread(ones: Int, value: Double = 1, zeros: Int) -> Double {
            populationStandardDeviation(Array(repeating: value, count: ones) + Array(repeating: 0, count: zeros))
        }
        let (tp, fp, fn, tn) = confusion(labels: labels, predicted: predicted)
        switch metric {
        case .rocAUC:
            // The ranks of the positives among the scores (the minority class taken as positive), their gaps
            // to the positives below them, as NannyML computes it (a positive ranked lowest is dropped).
            var positives = labels, scores = probabilities
            if Double(labels.reduce(0, +)) / n > 0.5 {
                positives = labels.map { 1 - $0 }
                scores = probabilities.map { 1 - $0 }
            }
            let order = stableOrder(scores)
            let ranked = order.map { positives[$0] }
            let ranks = Set(ranked.indices.map { ranked[$0] * $0 }).sorted().dropFirst()
            let positiveCount = ranked.reduce(0, +), negativeCount = ranked.count - positiveCount
            let gaps = ranks.enumerated().map { Double($1 - $0) / Double(negativeCount) }
            return (populationStandardDeviation(gaps), Double(positiveCount) / n)
        case .f1:
            let m = tp + fp + fn
            return (spread(ones: tp, value: Double(m) / (Double(fn + fp) * 0.5 + Double(tp)), zeros: fn + fp), Double(m) / n)
        case .precision: return (spread(ones: tp, zeros: fp), Double(predicted.reduce(0, +)) / n)
        case .recall: return (spread(ones: tp, zeros: fn), Double(labels.reduce(0, +)) / n)
        case .specificity: return (spread(ones: tn, zeros: fp), Double(tn + fp) / n)
        case .accuracy: return (spread(ones: tp + tn, zeros: fp + fn), 1)
        }
    }

    /// The confusion matrix's counts: true and false positives, false and true negatives.
    static func confusion(labels: [Int], predicted: [Int]) -> (Int, Int, Int, Int) {
        var tp = 0, fp = 0, fn = 0, tn = 0
        for (label, prediction) in zip(labels, predicted) {
            switch (label, prediction) {
            case (1, 1): tp += 1
            case (0, 1): fp += 1
            case (1, 0): fn += 1
            default: tn += 1
            }
        }
        return (tp, fp, fn, tn)
    }

    /// The reference's alert thresholds: mean ± 3 population standard deviations of the chunks' realised
    /// values (NaN left out), clipped to [0, 1].
    static func thresholds(_ values: [Double]) -> (Double, Double) {
        let present = values.filter { !$0.isNaN }
        guard !present.isEmpty else { return (0, 1) }
        let mean = present.reduce(0, +) / Double(present.count)
        let deviation = populationStandardDeviation(present)
        return (max(0, mean - 3 * deviation), min(1, mean + 3 * deviation))
    }

    /// NannyML's chunks of `size` rows, the last one shorter when `count` does not divide.
    public static func chunks(_ count: Int, size: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }

    /// The population (ddof 0) standard deviation, NaN for no values.
    public static func populationStandardDeviation(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let mean = values.reduce(0, +) / Double(values.count)
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
    }

    /// The indices that sort `values` ascending, ties in index order.
    static func stableOrder(_ values: [Double]) -> [Int] {
        sortedOrder(values)
    }

    /// numpy's `round`: scaled by 10^decimals, rounded half to even, scaled back.
    static func roundHalfEven(_ value: Double, decimals: Int) -> Double {
        let scale = pow(10, Double(decimals))
        return (value * scale).rounded(.toNearestOrEven) / scale
    }
}

/// scikit-learn's `IsotonicRegression(increasing=True, out_of_bounds="clip")`: the non-decreasing step
/// function closest to `y` in least squares, linear between its thresholds.
struct IsotonicRegression: Sendable {
    let x: [Double]
    let y: [Double]

    /// Fits `targets` against `values` (at least one pair; NaN-free).
    init(x values: [Double], y targets: [Double]) {
        precondition(!values.isEmpty && values.count == targets.count, "isotonic regression needs pairs to fit")
        // Sorted by x then y (numpy's lexsort).
        var order = sortedOrder(values)
        // Equal x (in index order) then by y.
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count, values[order[end]] == values[order[start]] { end += 1 }
            if end - start > 1 { order[start..<end].sort { (targets[$0], $0) < (targets[$1], $1) } }
            start = end
        }
        self.init(sorted: order.map { values[$0] }, targets: order.map { targets[$0] })
    }

    /// Fits 0/1 `labels` against `values` already in ascending order, rows of equal value in any order: a
    /// group's sum of labels is exact, so it is what the sort by label would give.
    init(ascending values: [Double], labels: [Double]) {
        precondition(!values.isEmpty && values.count == labels.count, "isotonic regression needs pairs to fit")
        self.init(sorted: values, targets: labels)
    }

    /// Fits `targets` against `values` in the order of numpy's lexsort (by value, then target).
    private init(sorted values: [Double], targets: [Double]) {
        // Equal x merged into their mean (within 1e-15 of a group's first).
        var xs: [Double] = [], ys: [Double] = [], weights: [Double] = []
        var currentX = values[0], sum = 0.0, weight = 0.0
        for (value, target) in zip(values, targets) {
            if value - currentX >= 1e-15 {
                xs.append(currentX); ys.append(sum / weight); weights.append(weight)
                currentX = value; sum = target; weight = 1
            } else {
                sum += target; weight += 1
            }
        }
        xs.append(currentX); ys.append(sum / weight); weights.append(weight)
        // Pool adjacent violators, weighted.
        var blocks: [(value: Double, weight: Double, count: Int)] = []
        for (value, weight) in zip(ys, weights) {
            blocks.append((value, weight, 1))
            while blocks.count > 1, blocks[blocks.count - 2].value >= blocks[blocks.count - 1].value {
                let b = blocks.removeLast(), a = blocks.removeLast()
                blocks.append(((a.value * a.weight + b.value * b.weight) / (a.weight + b.weight), a.weight + b.weight,
                               a.count + b.count))
            }
        }
        var fitted: [Double] = []
        fitted.reserveCapacity(xs.count)
        for block in blocks { fitted.append(contentsOf: repeatElement(block.value, count: block.count)) }
        // Only the ends of each flat run are kept as thresholds.
        var keptX: [Double] = [], keptY: [Double] = []
        for i in fitted.indices where i == 0 || i == fitted.count - 1 || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1] {
            keptX.append(xs[i]); keptY.append(fitted[i])
        }
        x = keptX
        y = keptY
    }

    /// The fitted value at `value`, clipped to the fitted range of x.
    func predict(_ value: Double) -> Double {
        guard !value.isNaN else { return .nan }
        let v = min(max(value, x[0]), x[x.count - 1])
        guard x.count > 1 else { return y[0] }
        // The last threshold at or below v.
        var low = 0, high = x.count
        while low < high {
            let mid = (low + high) / 2
            if x[mid] <= v { low = mid + 1 } else { high = mid }
        }
        let j = low - 1
        if j >= x.count - 1 { return y[y.count - 1] }
        if x[j] == v { return y[j] }
        return (y[j + 1] - y[j]) / (x[j + 1] - x[j]) * (v - x[j]) + y[j]
    }
}

/// numpy's legacy `RandomState` (MT19937) as far as scikit-learn's shuffle splits use it: `permutation`.
struct NumpyRandomState: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 { state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i) }
    }

    private mutating func twist() {
        state.withUnsafeMutableBufferPointer { state in
            for i in 0..<624 {
                let y = (state[i] & 0x8000_0000) | (state[i == 623 ? 0 : i + 1] & 0x7FFF_FFFF)
                var v = state[i < 227 ? i + 397 : i - 227] ^ (y >> 1)
                if y & 1 != 0 { v ^= 0x9908_B0DF }
                state[i] = v
            }
        }
        index = 0
    }

    mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// A uniform integer in 0...max, by masked rejection (numpy's `random_interval`).
    mutating func interval(_ max: UInt32) -> UInt32 {
        guard max > 0 else { return 0 }
        // The smallest all-ones mask covering max.
        let mask = UInt32.max >> UInt32(max.leadingZeroBitCount)
        while true {
            let v = next() & mask
            if v <= max { return v }
        }
    }

    /// `permutation(count)`: 0..<count shuffled by Fisher–Yates from the top.
    mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        values.withUnsafeMutableBufferPointer { values in
            var i = count - 1
            while i > 0 {
                values.swapAt(i, Int(interval(UInt32(i))))
                i -= 1
            }
        }
        return values
    }
}

/// CBPE for a multiclass classifier, as NannyML 0.13 computes it: each class's probabilities calibrated on
/// its own one-vs-rest labels (when the ECE test asks for it), every row's probabilities then renormalised;
/// ROC AUC, F1, precision, recall and specificity the macro average over classes of the binary estimates;
/// accuracy the mean calibrated probability of the predicted class. Sampling errors combine the classes'
/// components (ROC AUC's widened by 1.2, as NannyML does).
public struct MulticlassConfidenceBasedEstimation: Sendable {
    public typealias Metric = ConfidenceBasedEstimation.Metric
    public typealias Estimate = ConfidenceBasedEstimation.Estimate

    /// One row: the probability of each class (in the classes' order), the predicted class's index, and the
    /// label's index when known.
    public struct Row: Sendable {
        public var probabilities: [Double]
        public var predicted: Int
        public var label: Int?

        public init(probabilities: [Double], predicted: Int, label: Int? = nil) {
            self.probabilities = probabilities
            self.predicted = predicted
            self.label = label
        }
    }

    public let metrics: [Metric]
    public let classCount: Int
    /// Per class: whether its probabilities are calibrated.
    public var calibrates: [Bool] { calibrators.map { $0 != nil } }
    let calibrators: [IsotonicRegression?]
    /// Per metric and class: a variance and the share of rows it is divided by; accuracy's spread alone.
    let components: [Metric: [(variance: Double, share: Double)]]
    let accuracySpread: Double
    public let thresholds: [Metric: (lower: Double, upper: Double)]

    /// Fits on labelled `reference` rows of `classCount` classes (at least three; two are a binary model),
    /// thresholds on chunks of `chunkSize`. Nil when a label is missing or a class is absent.
    public init?(reference: [Row], classCount: Int, chunkSize: Int, metrics: [Metric] = Metric.allCases) {
        guard classCount >= 3, chunkSize > 0, reference.count >= 20,
              reference.allSatisfy({ row in
                  row.probabilities.count == classCount && row.probabilities.allSatisfy(\.isFinite)
                      && (0..<classCount).contains(row.predicted) && row.label.map { (0..<classCount).contains($0) } == true
              }),
              (0..<classCount).allSatisfy({ k in reference.filter { $0.label == k }.count >= 2 })
        else { return nil }
        self.metrics = metrics
        self.classCount = classCount
        let labels = reference.map { $0.label! }, predicted = reference.map(\.predicted)
        let columns = (0..<classCount).map { k in reference.map { $0.probabilities[k] } }
        calibrators = (0..<classCount).map { k in
            let oneVsRest = labels.map { $0 == k ? 1 : 0 }
            return ConfidenceBasedEstimation.needsCalibration(labels: oneVsRest, probabilities: columns[k]).needs
                ? IsotonicRegression(x: columns[k], y: oneVsRest.map(Double.init)) : nil
        }
        var components: [Metric: [(Double, Double)]] = [:]
        for metric in metrics where metric != .accuracy {
            components[metric] = (0..<classCount).map { k in
                let truth = labels.map { $0 == k ? 1 : 0 }, said = predicted.map { $0 == k ? 1 : 0 }
                if metric == .rocAUC {
                    let (spread, share) = ConfidenceBasedEstimation.components(.rocAUC, labels: truth, predicted: said,
                                                                                probabilities: columns[k])
                    return (spread * spread, share)
                }
                let (tp, fp, fn, tn) = ConfidenceBasedEstimation.confusion(labels: truth, predicted: said)
                let n = Double(labels.count)
                func variance(ones: Int, zeros: Int) -> Double {
                    let spread = ConfidenceBasedEstimation.populationStandardDeviation(
                        Array(repeating: 1, count: ones) + Array(repeating: 0, count: zeros))
                    return spread * spread
                }
                switch metric {
                case .f1: return (variance(ones: tp, zeros: fn + fp), Double(tp + fn + fp) / n)
                case .precision: return (variance(ones: tp, zeros: fp), Double(said.reduce(0, +)) / n)
                case .recall: return (variance(ones: tp, zeros: fn), Double(truth.reduce(0, +)) / n)
                default: return (variance(ones: tn, zeros: fp), Double(tn + fp) / n)
                }
            }
        }
        self.components = components
        accuracySpread = ConfidenceBasedEstimation.populationStandardDeviation(zip(labels, predicted).map { $0 == $1 ? 1 : 0 })
        var thresholds: [Metric: (Double, Double)] = [:]
        let chunks = ConfidenceBasedEstimation.chunks(reference.count, size: chunkSize)
        for metric in metrics {
            thresholds[metric] = ConfidenceBasedEstimation.thresholds(chunks.map { Self.realised(metric, Array(reference[$0]), classCount: classCount) })
        }
        self.thresholds = thresholds
    }

    /// Each row's probabilities calibrated per class, then renormalised to sum to one (all classes alike when
    /// they sum to zero).
    public func calibrated(_ rows: [Row]) -> [[Double]] {
        rows.map { row in
            let values = (0..<classCount).map { k in calibrators[k].map { $0.predict(row.probabilities[k]) } ?? row.probabilities[k] }
            let sum = values.reduce(0, +)
            return sum != 0 ? values.map { $0 / sum } : Array(repeating: 1 / Double(classCount), count: classCount)
        }
    }

    /// Each metric estimated on one window of `rows` (their labels unused); rows without `classCount` finite
    /// probabilities are left out, and a predicted class outside the classes counts as no class's.
    public func estimate(_ rows: [Row]) -> [Metric: Estimate] {
        let rows = rows.filter { $0.probabilities.count == classCount && $0.probabilities.allSatisfy(\.isFinite) }
        guard !rows.isEmpty else { return Dictionary(uniqueKeysWithValues: metrics.map { ($0, Estimate.none) }) }
        let calibrated = calibrated(rows)
        let n = Double(rows.count)
        var estimates: [Metric: Estimate] = [:]
        for metric in metrics {
            let value: Double, error: Double
            if metric == .accuracy {
                value = zip(rows, calibrated).reduce(0.0) { sum, pair in
                    sum + ((0..<classCount).contains(pair.0.predicted) ? pair.1[pair.0.predicted] : 0)
                } / n
                error = accuracySpread / n.squareRoot()
            } else {
                value = (0..<classCount).reduce(0.0) { sum, k in
                    sum + ConfidenceBasedEstimation.estimate(metric, predicted: rows.map { $0.predicted == k ? 1 : 0 },
                                                             calibrated: calibrated.map { $0[k] },
                                                             probabilities: rows.map { $0.probabilities[k] })
                } / Double(classCount)
                let combined = components[metric]!.reduce(0.0) { $0 + $1.variance / (n * $1.share) }.squareRoot() / Double(classCount)
                error = metric == .rocAUC ? combined * 1.2 : combined
            }
            estimates[metric] = Estimate(value: value, samplingError: error, thresholds: thresholds[metric]!)
        }
        return estimates
    }

    /// A metric on labelled rows, macro-averaged over the classes as NannyML reports it (NaN where undefined:
    /// ROC AUC unless every class is among the labels; the others when labels or predictions hold one class).
    /// Rows without a label or without `classCount` probabilities are left out.
    public static func realised(_ metric: Metric, _ rows: [Row], classCount: Int) -> Double {
        let rows = rows.filter { $0.label != nil && $0.probabilities.count == classCount }
        guard !rows.isEmpty else { return .nan }
        let labels = rows.map { $0.label! }, predicted = rows.map(\.predicted)
        if metric == .rocAUC {
            guard Set(labels).count == classCount else { return .nan }
            return (0..<classCount).reduce(0.0) { sum, k in
                sum + (rocAUC(scores: rows.map { $0.probabilities[k] }, positives: labels.map { $0 == k }) ?? .nan)
            } / Double(classCount)
        }
        guard Set(labels).count > 1, Set(predicted).count > 1 else { return .nan }
        if metric == .accuracy { return Double(zip(labels, predicted).filter { $0 == $1 }.count) / Double(rows.count) }
        return (0..<classCount).reduce(0.0) { sum, k in
            let (tp, fp, fn, tn) = ConfidenceBasedEstimation.confusion(labels: labels.map { $0 == k ? 1 : 0 },
                                                                       predicted: predicted.map { $0 == k ? 1 : 0 })
            let value: Double = switch metric {
            case .precision: tp + fp > 0 ? Double(tp) / Double(tp + fp) : 0
            case .recall: tp + fn > 0 ? Double(tp) / Double(tp + fn) : 0
            case .f1: tp + fp + fn > 0 ? Double(2 * tp) / Double(2 * tp + fp + fn) : 0
            default: Double(tn) / Double(tn + fp)
            }
            return sum + value
        } / Double(classCount)
    }
}
