import Foundation

/// One-sided Mann–Whitney U test that `current` is stochastically greater than `reference`, as
/// `scipy.stats.mannwhitneyu(current, reference, alternative="greater", method="asymptotic",
/// use_continuity=True)`: U of `current` from mid-ranks in the pooled sample, and the p-value of the normal
/// approximation with the tie correction and a continuity correction of ½. A rank test, so a few huge
/// losses (an outlier label) weigh no more than any other loss above the reference's. When every value is
/// tied there is no evidence either way: p-value 1. `nil` for an empty sample.
public func mannWhitneyUGreater(current: [Double], reference: [Double]) -> (statistic: Double, pValue: Double)? {
    mannWhitney(current: current, reference: reference).map { ($0.statistic, $0.pValue) }
}

/// The Mann–Whitney test of `mannWhitneyUGreater` with its z (continuity-corrected; `nil` when every value is
/// tied) and each value's mid-rank in the pooled sample, `current`'s then `reference`'s, in their order.
func mannWhitney(current: [Double], reference: [Double])
    -> (statistic: Double, pValue: Double, z: Double?, ranks: [Double])?
{
    let n1 = current.count, n2 = reference.count
    guard n1 > 0, n2 > 0 else { return nil }
    let pooled = current + reference
    let order = pooled.indices.sorted { pooled[$0] < pooled[$1] }
    var ranks = [Double](repeating: 0, count: pooled.count)
    var rankSum = 0.0, tieTerm = 0.0
    var start = 0
    while start < order.count {
        var end = start + 1
        while end < order.count, pooled[order[end]] == pooled[order[start]] { end += 1 }
        let rank = Double(start + 1 + end) / 2  // the mid-rank of positions start+1…end
        for i in start..<end {
            ranks[order[i]] = rank
            if order[i] < n1 { rankSum += rank }
        }
        let t = Double(end - start)
        tieTerm += t * t * t - t
        start = end
    }
    let a = Double(n1), b = Double(n2), n = a + b
    let u = rankSum - a * (a + 1) / 2
    let variance = a * b / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
    guard variance > 0 else { return (u, 1, nil, ranks) }
    let z = (u - a * b / 2 - 0.5) / variance.squareRoot()
    // P(Z > z) = erfc(z / √2) / 2
    return (u, erfc(z / 2.0.squareRoot()) / 2, z, ranks)
}

/// The lag-1 autocorrelation of `values` in their order (0 for fewer than 3 or no spread).
func lagOneAutocorrelation<C: Collection<Double>>(_ values: C) -> Double {
    guard values.count > 2 else { return 0 }
    let mean = values.reduce(0, +) / Double(values.count)
    var numerator = 0.0, denominator = 0.0, previous: Double?
    for value in values {
        let d = value - mean
        denominator += d * d
        if let previous { numerator += previous * d }
        previous = d
    }
    return denominator > 0 ? numerator / denominator : 0
}

/// Whether a model's loss has grown: its newest labelled rows' losses against those of its reference window
/// (its first full live window, as NannyML and Evidently take a reference), by a one-sided Mann–Whitney U test
/// and the ratio of the mean losses. Per-row losses are the absolute error for a regression and the log loss
/// for a classifier.
///
/// Losses in time order are seldom independent (an hour's error resembles the last), and the rank test
/// assumes they are: its p-value would then be far too small, and false alarms far above the level. The test's
/// variance is therefore widened by the serial correlation of the ranks within each window: z is scaled by
/// √((1 − ρ)/(1 + ρ)), ρ the lag-1 autocorrelation of the mid-ranks (the windows' pooled, clipped to
/// [0, 0.99]), which is the AR(1) variance inflation of a mean (the effective sample size correction of
/// Yue and Wang, 2002, for rank tests on serially correlated data). Independent rows keep the exact test.
public struct LossShift: Sendable, Equatable, Codable {
    public var referenceRows: Int
    public var currentRows: Int
    public var referenceMeanLoss: Double
    public var currentMeanLoss: Double
    /// Mann–Whitney U of the current losses, and its one-sided p-value, corrected for serial correlation.
    public var statistic: Double
    public var pValue: Double
    /// The lag-1 autocorrelation of the ranks the correction used (0: none).
    public var autocorrelation: Double

    /// `currentMeanLoss / referenceMeanLoss` (infinite when the reference's is 0 and the current's is not).
    public var ratio: Double {
        referenceMeanLoss > 0 ? currentMeanLoss / referenceMeanLoss : currentMeanLoss > 0 ? .infinity : 1
    }

    /// `current` and `reference` each in time order (either direction).
    public init?(current: [Double], reference: [Double]) {
        guard let test = mannWhitney(current: current, reference: reference) else { return nil }
        referenceRows = reference.count
        currentRows = current.count
        referenceMeanLoss = reference.reduce(0, +) / Double(reference.count)
        currentMeanLoss = current.reduce(0, +) / Double(current.count)
        statistic = test.statistic
        let n1 = Double(current.count), n2 = Double(reference.count)
        let rho = (n1 * lagOneAutocorrelation(test.ranks[..<current.count])
                   + n2 * lagOneAutocorrelation(test.ranks[current.count...])) / (n1 + n2)
        autocorrelation = min(max(rho, 0), 0.99)
        if let z = test.z {
            let corrected = z * ((1 - autocorrelation) / (1 + autocorrelation)).squareRoot()
            pValue = erfc(corrected / 2.0.squareRoot()) / 2
        } else {
            pValue = test.pValue
        }
    }

    enum CodingKeys: String, CodingKey {
        case referenceRows = "reference_rows", currentRows = "current_rows", referenceMeanLoss = "reference_mean_loss",
             currentMeanLoss = "current_mean_loss", statistic, pValue = "p_value", autocorrelation
    }
}
