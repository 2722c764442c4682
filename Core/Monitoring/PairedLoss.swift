import Foundation

/// One-sided Wilcoxon signed-rank test that paired `differences` are centred above 0, as
/// `scipy.stats.wilcoxon(differences, alternative="greater", zero_method="wilcox", correction=False,
/// method="asymptotic")`: zero differences dropped, |d| ranked with mid-ranks for ties, the statistic the sum
/// of the ranks of the positive differences (R+, not min(R+, R−) as in the two-sided test), and the p-value
/// of the normal approximation with mean n(n + 1)/4 and the tie-corrected variance
/// (n(n + 1)(2n + 1) − Σ(t³ − t)/2) / 24, without a continuity correction. When every difference is zero
/// there is no evidence either way: statistic 0, p-value 1 (SciPy's is NaN). `nil` for no differences.
public func wilcoxonSignedRankGreater(_ differences: [Double]) -> (statistic: Double, pValue: Double)? {
    guard !differences.isEmpty else { return nil }
    let nonZero = differences.filter { $0 != 0 }.sorted { abs($0) < abs($1) }
    var rankSum = 0.0, tieTerm = 0.0
    var start = 0
    while start < nonZero.count {
        var end = start + 1
        while end < nonZero.count, abs(nonZero[end]) == abs(nonZero[start]) { end += 1 }
        let rank = Double(start + 1 + end) / 2  // the mid-rank of positions start+1…end
        for i in start..<end where nonZero[i] > 0 { rankSum += rank }
        let t = Double(end - start)
        tieTerm += t * t * t - t
        start = end
    }
    let n = Double(nonZero.count)
    let variance = (n * (n + 1) * (2 * n + 1) - tieTerm / 2) / 24
    guard variance > 0 else { return (rankSum, 1) }
    let z = (rankSum - n * (n + 1) / 4) / variance.squareRoot()
    // P(Z > z) = erfc(z / √2) / 2
    return (rankSum, erfc(z / 2.0.squareRoot()) / 2)
}

/// Whether a challenger scored beside the live model on the same labelled rows has the lower loss: the
/// per-row losses of both, a one-sided Wilcoxon signed-rank test on live − challenger (pairing removes the
/// rows' shared difficulty), and the mean losses. Per-row losses are the absolute error for a regression and
/// the log loss for a classifier.
public struct PairedLossComparison: Sendable, Equatable, Codable {
    public var pairs: Int
    public var liveMeanLoss: Double
    public var challengerMeanLoss: Double
    /// Wilcoxon R+ of live − challenger, and its one-sided p-value (small: the challenger's loss is lower).
    public var statistic: Double
    public var pValue: Double

    /// `1 − challengerMeanLoss / liveMeanLoss`: positive when the challenger is better (−∞ when the live
    /// model's loss is 0 and the challenger's is not, 0 when both are 0).
    public var improvement: Double {
        liveMeanLoss > 0 ? 1 - challengerMeanLoss / liveMeanLoss : challengerMeanLoss > 0 ? -.infinity : 0
    }

    /// `live[i]` and `challenger[i]` are the two models' losses on the same row.
    public init?(live: [Double], challenger: [Double]) {
        precondition(live.count == challenger.count, "\(live.count) live losses, \(challenger.count) challenger's")
        guard let test = wilcoxonSignedRankGreater(zip(live, challenger).map { $0 - $1 }) else { return nil }
        pairs = live.count
        liveMeanLoss = live.reduce(0, +) / Double(live.count)
        challengerMeanLoss = challenger.reduce(0, +) / Double(challenger.count)
        statistic = test.statistic
        pValue = test.pValue
    }

    enum CodingKeys: String, CodingKey {
        case pairs, liveMeanLoss = "live_mean_loss", challengerMeanLoss = "challenger_mean_loss", statistic,
             pValue = "p_value"
    }
}
