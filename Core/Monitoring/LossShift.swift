import Foundation

/// One-sided Mann–Whitney U test that `current` is stochastically greater than `reference`, as
/// `scipy.stats.mannwhitneyu(current, reference, alternative="greater", method="asymptotic",
/// use_continuity=True)`: U of `current` from mid-ranks in the pooled sample, and the p-value of the normal
/// approximation with the tie correction and a continuity correction of ½. A rank test, so a few huge
/// losses (an outlier label) weigh no more than any other loss above the reference's. When every value is
/// tied there is no evidence either way: p-value 1. `nil` for an empty sample.
public func mannWhitneyUGreater(current: [Double], reference: [Double]) -> (statistic: Double, pValue: Double)? {
    let n1 = current.count, n2 = reference.count
    guard n1 > 0, n2 > 0 else { return nil }
    var pooled = current.map { ($0, true) } + reference.map { ($0, false) }
    pooled.sort { $0.0 < $1.0 }
    var rankSum = 0.0, tieTerm = 0.0
    var start = 0
    while start < pooled.count {
        var end = start + 1
        while end < pooled.count, pooled[end].0 == pooled[start].0 { end += 1 }
        let rank = Double(start + 1 + end) / 2  // the mid-rank of positions start+1…end
        for i in start..<end where pooled[i].1 { rankSum += rank }
        let t = Double(end - start)
        tieTerm += t * t * t - t
        start = end
    }
    let a = Double(n1), b = Double(n2), n = a + b
    let u = rankSum - a * (a + 1) / 2
    let variance = a * b / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
    guard variance > 0 else { return (u, 1) }
    let z = (u - a * b / 2 - 0.5) / variance.squareRoot()
    // P(Z > z) = erfc(z / √2) / 2
    return (u, erfc(z / 2.0.squareRoot()) / 2)
}

/// Whether a model's loss has grown: its newest labelled rows' losses against those of its reference window
/// (its first full live window, as NannyML and Evidently take a reference), by a one-sided Mann–Whitney U test
/// and the ratio of the mean losses. Per-row losses are the absolute error for a regression and the log loss
/// for a classifier.
public struct LossShift: Sendable, Equatable, Codable {
    public var referenceRows: Int
    public var currentRows: Int
    public var referenceMeanLoss: Double
    public var currentMeanLoss: Double
    /// Mann–Whitney U of the current losses, and its one-sided p-value.
    public var statistic: Double
    public var pValue: Double

    /// `currentMeanLoss / referenceMeanLoss` (infinite when the reference's is 0 and the current's is not).
    public var ratio: Double {
        referenceMeanLoss > 0 ? currentMeanLoss / referenceMeanLoss : currentMeanLoss > 0 ? .infinity : 1
    }

    public init?(current: [Double], reference: [Double]) {
        guard let test = mannWhitneyUGreater(current: current, reference: reference) else { return nil }
        referenceRows = reference.count
        currentRows = current.count
        referenceMeanLoss = reference.reduce(0, +) / Double(reference.count)
        currentMeanLoss = current.reduce(0, +) / Double(current.count)
        statistic = test.statistic
        pValue = test.pValue
    }

    enum CodingKeys: String, CodingKey {
        case referenceRows = "reference_rows", currentRows = "current_rows", referenceMeanLoss = "reference_mean_loss",
             currentMeanLoss = "current_mean_loss", statistic, pValue = "p_value"
    }
}
