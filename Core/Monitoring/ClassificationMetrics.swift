import CycloneModel
import Foundation

/// Probabilities are clipped to `[eps, 1 − eps]` before taking logs, with `eps` the machine epsilon of
/// `Double`, as scikit-learn's `log_loss` does, so a confident wrong answer costs about 36, not infinity.
public let logLossEpsilon = Double.ulpOfOne

/// Quality of a binary classifier over a window: threshold metrics from the confusion counts, and the
/// probability metrics (log loss, Brier score, ROC AUC) from the scores.
///
/// The predicted class is positive when the score is above 0.5 (as `predict` decides). Matches scikit-learn
/// with `zero_division=0` on `Tests/Fixtures/metrics/cases.json`. An empty window has no metrics; `rocAUC`
/// is `nil` when the window holds a single class.
public struct BinaryMetrics: Sendable, Equatable {
    public struct Sums: Sendable, Equatable {
        public var truePositives = 0, falsePositives = 0, trueNegatives = 0, falseNegatives = 0
        /// Σ −log p(true class), clipped.
        public var logLoss = 0.0
        /// Σ (score − label)²
        public var brier = 0.0
        public var count: Int { truePositives + falsePositives + trueNegatives + falseNegatives }

        public init() {}

        public mutating func add(positive: Bool, score: Double) {
            switch (positive, score > 0.5) {
            case (true, true): truePositives += 1
            case (false, true): falsePositives += 1
            case (false, false): trueNegatives += 1
            case (true, false): falseNegatives += 1
            }
            let p = min(max(score, logLossEpsilon), 1 - logLossEpsilon)
            logLoss -= positive ? log(p) : log(1 - p)
            let y = positive ? 1.0 : 0.0
            brier += (score - y) * (score - y)
        }
    }

    public var count: Int
    public var accuracy: Double?
    public var precision: Double?
    public var recall: Double?
    public var f1: Double?
    public var logLoss: Double?
    public var brier: Double?
    public var rocAUC: Double?

    /// - Parameter rocAUC: from `rocAUC(scores:positives:)` over the same window (it needs the scores, not sums).
    public init(sums s: Sums, rocAUC: Double?) {
        count = s.count
        self.rocAUC = rocAUC
        guard s.count > 0 else {
            accuracy = nil; precision = nil; recall = nil; f1 = nil; logLoss = nil; brier = nil
            return
        }
        let n = Double(s.count)
        let tp = Double(s.truePositives), fp = Double(s.falsePositives), fn = Double(s.falseNegatives)
        accuracy = (tp + Double(s.trueNegatives)) / n
        // Zero division gives 0, as scikit-learn's `zero_division=0`.
        precision = tp + fp > 0 ? tp / (tp + fp) : 0
        recall = tp + fn > 0 ? tp / (tp + fn) : 0
        f1 = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0
        logLoss = s.logLoss / n
        brier = s.brier / n
    }

    public init(positives: [Bool], scores: [Double]) {
        var sums = Sums()
        for (positive, score) in zip(positives, scores) { sums.add(positive: positive, score: score) }
        self.init(sums: sums, rocAUC: CycloneMonitoring.rocAUC(scores: scores, positives: positives))
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random negative, ties
/// counting half (the Mann–Whitney U statistic with average ranks). `nil` when either class is absent.
/// Depends only on the order of the scores. Cost: a sort, a radix sort unless a score is NaN.
public func rocAUC(scores: [Double], positives: [Bool]) -> Double? {
    let n = min(scores.count, positives.count)
    // Tied scores share their ranks, so their order is free and the radix sort's serves; NaN, which it does not
    // take, is ordered as `<` leaves it.
    let order = scores[..<n].contains(where: \.isNaN) ? (0..<n).sorted { scores[$0] < scores[$1] }
        : sortedOrder(n == scores.count ? scores : Array(scores[..<n]))
    return rocAUC(scores: scores, positives: positives, ascending: order)
}

/// `rocAUC(scores:positives:)` of the first `order.count` rows, given the indices that put their scores in
/// ascending order (tied scores in any order): for a caller that has sorted them already.
func rocAUC(scores: [Double], positives: [Bool], ascending order: [Int]) -> Double? {
    let n = order.count
    var positiveRankSum = 0.0
    var positiveCount = 0
    var i = 0
    while i < n {
        // A run of tied scores shares the average of its ranks (1-based).
        var j = i
        while j + 1 < n, scores[order[j + 1]] == scores[order[i]] { j += 1 }
        let averageRank = Double(i + j + 2) / 2
        for k in i...j where positives[order[k]] {
            positiveRankSum += averageRank
            positiveCount += 1
        }
        i = j + 1
    }
    let negativeCount = n - positiveCount
    guard positiveCount > 0, negativeCount > 0 else { return nil }
    let p = Double(positiveCount)
    return (positiveRankSum - p * (p + 1) / 2) / (p * Double(negativeCount))
}

/// Quality of a multiclass classifier over a window: accuracy, macro-averaged F1 and log loss.
///
/// The predicted class is the most probable (the first on ties). Macro F1 averages over the classes present
/// in the labels or the predictions of the window, as scikit-learn's default `labels` does; a class neither
/// seen nor predicted does not pull the average down. Empty window: no metrics.
public struct MulticlassMetrics: Sendable, Equatable {
    public struct Sums: Sendable, Equatable {
        /// `confusion[label][predicted]`
        public var confusion: [[Int]]
        /// Σ −log p(true class), clipped.
        public var logLoss = 0.0
        public var count = 0

        public init(classCount: Int) {
            confusion = Array(repeating: Array(repeating: 0, count: classCount), count: classCount)
        }

        public mutating func add(label: Int, probabilities: [Double]) {
            var predicted = 0
            for k in probabilities.indices where probabilities[k] > probabilities[predicted] { predicted = k }
            confusion[label][predicted] += 1
            count += 1
            logLoss -= log(min(max(probabilities[label], logLossEpsilon), 1 - logLossEpsilon))
        }
    }

    public var count: Int
    public var accuracy: Double?
    public var macroF1: Double?
    public var logLoss: Double?

    public init(sums s: Sums) {
        count = s.count
        guard s.count > 0 else {
            accuracy = nil; macroF1 = nil; logLoss = nil
            return
        }
        let k = s.confusion.count
        var correct = 0
        var f1Sum = 0.0
        var present = 0
        for c in 0..<k {
            let tp = s.confusion[c][c]
            let actual = s.confusion[c].reduce(0, +)
            let predicted = (0..<k).reduce(0) { $0 + s.confusion[$1][c] }
            correct += tp
            guard actual + predicted > 0 else { continue }
            present += 1
            f1Sum += Double(2 * tp) / Double(actual + predicted)
        }
        accuracy = Double(correct) / Double(s.count)
        macroF1 = f1Sum / Double(present)
        logLoss = s.logLoss / Double(s.count)
    }
}

extension BinaryMetrics {
    /// The defined metrics by `PerformanceMetric` name.
    public var values: [String: Double] {
        metricValues([.accuracy: accuracy, .precision: precision, .recall: recall, .f1: f1, .rocAUC: rocAUC,
                      .logLoss: logLoss, .brier: brier])
    }
}

extension MulticlassMetrics {
    /// The defined metrics by `PerformanceMetric` name.
    public var values: [String: Double] {
        metricValues([.accuracy: accuracy, .macroF1: macroF1, .logLoss: logLoss])
    }
}
