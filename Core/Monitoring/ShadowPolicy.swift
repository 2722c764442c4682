import Foundation
import Synchronization

/// When a shadow (a challenger scored beside the live version on the same requests) is promoted or discarded.
///
/// A group-sequential design with a sample size fixed in advance: the verdict reads at most the first `rows`
/// labelled pairs, in the order served, and looks at them `looks` times, at equal steps (the first
/// `rows·k/looks` pairs at look k). Each look is a one-sided paired t-test of the mean per-row loss
/// difference live − shadow (paired: both losses are on the same rows, so what the rows share cancels; the
/// mean, because promotion changes the mean loss; serial correlation allowed for, `PairedLossComparison`),
/// against O'Brien–Fleming's boundary: z ≥ c·√(looks/k), with c set so that the chance of promoting a shadow
/// no better than live, over all the looks together, is `alpha` (for independent pairs; one look when
/// `looks` is 1, the fixed-sample test). The boundary is strict early and near the fixed-sample one at the
/// end, so a large improvement is promoted after a quarter of the sample, and the full sample costs almost no
/// power. Why not a fixed sample alone: after an abrupt change a much better challenger would wait the whole
/// sample while the worse live model serves. Why not a fully sequential test: its bound for a given level is
/// wider, and labels arrive in batches, which a few planned looks fit.
///
/// Promotion needs both the boundary and the effect: the shadow's mean loss at least `minimumImprovement`
/// below live's on the look's pairs, so a shadow whose loss there is higher can never be promoted. A shadow
/// significantly worse at an interim look (z ≤ −c·√(looks/k)) is discarded early (stopping for futility only
/// ever lowers the promotion error); one still short of its next look after `maxAge` is discarded.
///
/// At the last look, with `lastLook` `.lower` (the default), a shadow whose mean loss is `minimumImprovement`
/// below live's is promoted though the boundary was not reached: the challenger already beat live on the
/// retrain's holdout and is trained on fresher rows, so live traffic is there to catch one that is worse, and
/// a fresher model no worse wins the tie. A shadow significantly worse, or not lower, is still never promoted.
/// With `.significant` only the boundary promotes (the fixed level `alpha` against a shadow no better), and
/// a shadow that reaches the full sample without it is discarded: the price, measured on bench-loop's
/// synthetic year, is challengers 10–23 % better discarded and months more of the older model.
public struct ShadowPolicy: Sendable, Equatable {
    /// Labelled pairs of the full sample.
    public var rows: Int
    /// The chance, over all looks, that a shadow no better than live passes the boundary (with `lastLook`
    /// `.significant`, the chance of promoting it).
    public var alpha: Double
    /// Share by which the shadow's mean loss must be below live's (0.01: 1 % lower).
    public var minimumImprovement: Double
    /// How long a shadow may wait for its pairs.
    public var maxAge: Duration
    /// Looks at the sample, at equal steps; 1 is the fixed-sample test.
    public var looks: Int
    /// What the last look promotes besides a shadow past the boundary.
    public var lastLook: LastLook

    /// What the last look promotes (`SHADOW_LAST_LOOK`).
    public enum LastLook: String, Sendable, Equatable, CaseIterable {
        /// A mean loss at least `minimumImprovement` below live's: the fresher model wins a tie.
        case lower
        /// Only a shadow past the boundary: significantly lower.
        case significant
    }

    public init(rows: Int = 1_000, alpha: Double = 0.05, minimumImprovement: Double = 0.01,
                maxAge: Duration = .seconds(7 * 86_400), looks: Int = 4, lastLook: LastLook = .lower)
    {
        precondition(rows > 0 && looks > 0 && alpha > 0 && alpha < 1)
        self.rows = rows
        self.alpha = alpha
        self.minimumImprovement = minimumImprovement
        self.maxAge = maxAge
        // Each look reads at least two pairs (one more than a test needs), so every look can be done.
        self.looks = max(1, min(looks, rows / 2))
        self.lastLook = lastLook
    }

    public enum Verdict: String, Sendable, Codable {
        case wait, promote, discard
    }

    /// The pairs read at each look: `⌈rows·k/looks⌉`, the last `rows`.
    public var lookSizes: [Int] { (1...looks).map { (rows * $0 + looks - 1) / looks } }

    /// The one-sided p-value below which look `k` (1-based) promotes: P(Z > c·√(looks/k)).
    public func promotionLevel(look k: Int) -> Double {
        let z = Self.obrienFlemingConstant(looks: looks, alpha: alpha) * (Double(looks) / Double(k)).squareRoot()
        return erfc(z / 2.0.squareRoot()) / 2
    }

    /// The verdict on a shadow that has `pairs` labelled pairs, `looksDone[i]` the comparison on the first
    /// `lookSizes[i]` of them for each look its pairs complete, and has run for `age`; with the reason in one
    /// sentence, and the look that decided (1-based; 0 for none). A shadow that `refused` instances live
    /// answered is discarded (promoted, it would refuse them); so is one predict never scored while live
    /// gathered a look's worth of labels (`unscored`).
    public func verdict(pairs: Int, looksDone: [PairedLossComparison], age: Duration, refused: Int = 0,
                        unscored: Int = 0) -> (Verdict, String, look: Int)
    {
        if refused > 0 {
            return (.discard, "it could not score \(refused) labelled requests live answered (their instances do not fit it)", 0)
        }
        if pairs == 0, unscored >= lookSizes[0] {
            return (.discard, "live has \(unscored) labelled rows since the shadow started and it scored none: predict does not run it (SHADOW_MODEL_PATH unset, or the file refused; see predict's log)", 0)
        }
        for (index, comparison) in looksDone.prefix(looks).enumerated() {
            let look = index + 1, level = promotionLevel(look: look)
            let figures = "look \(look) of \(looks), \(comparison.pairs) pairs: mean loss "
                + "\(format(comparison.challengerMeanLoss)) against live's \(format(comparison.liveMeanLoss)) "
                + "(\(format(comparison.improvement * 100)) % lower), one-sided paired t p = \(format(comparison.pValue))"
            let significant = comparison.pValue < level
            if significant, comparison.improvement >= minimumImprovement {
                return (.promote, figures + " < \(format(level)) (O'Brien–Fleming at SHADOW_ALPHA \(format(alpha)))", look)
            }
            if look < looks, comparison.pValue > 1 - level, comparison.improvement < 0 {
                return (.discard, figures + "; significantly worse than live", look)
            }
            if look == looks, lastLook == .lower, comparison.improvement >= minimumImprovement {
                return (.promote, figures + "; lower at the last look, not significantly: the fresher model wins a tie (SHADOW_LAST_LOOK lower)", look)
            }
            if look == looks {
                let why: String
                switch (lastLook, significant || (lastLook == .lower && comparison.improvement >= 0)) {
                case (_, true): why = "lower, but by less than \(format(minimumImprovement * 100)) % (MIN_IMPROVEMENT)"
                case (.lower, false): why = "not lower than live's"
                case (.significant, false): why = "not lower at the last look's level \(format(level)) (SHADOW_ALPHA \(format(alpha)))"
                }
                return (.discard, figures + "; " + why, look)
            }
        }
        let next = lookSizes[min(looksDone.count, looks - 1)]
        let short = "\(pairs) labelled pairs; look \(min(looksDone.count + 1, looks)) of \(looks) at \(next) (SHADOW_ROWS \(rows))"
        return age > maxAge ? (.discard, short + ", still short after SHADOW_MAX_AGE", 0) : (.wait, short, 0)
    }

    private func format(_ value: Double) -> String {
        value.isFinite ? String(format: "%.4g", value) : "\(value)"
    }

    // MARK: - The boundary

    private struct Key: Hashable {
        var looks: Int
        var alpha: Double
    }

    private static let constants = Mutex<[Key: Double]>([:])

    /// O'Brien–Fleming's constant c for `looks` equally spaced looks and one-sided level `alpha`: the z
    /// boundary at look k is c·√(looks/k), which on the sum of the k increments is the constant c·√looks.
    /// Found by bisection on the exact crossing probability of that boundary by a Gaussian random walk
    /// (`crossingProbability`); for one look it is the normal quantile.
    public static func obrienFlemingConstant(looks: Int, alpha: Double) -> Double {
        let key = Key(looks: looks, alpha: alpha)
        if let known = constants.withLock({ $0[key] }) { return known }
        var (low, high) = (0.0, 8.0)
        for _ in 0..<60 {
            let c = (low + high) / 2
            if crossingProbability(boundary: c * Double(looks).squareRoot(), steps: looks) > alpha { low = c } else { high = c }
        }
        let c = (low + high) / 2
        constants.withLock { $0[key] = c }
        return c
    }

    /// P(S_k ≥ `boundary` for some k ≤ `steps`), S_k the sum of k independent standard normals, by the
    /// recursion of Armitage, McPherson and Rowe: the density of S_k on the paths that have not crossed,
    /// carried step to step on a grid (Simpson's rule), each step adding the chance of crossing from there.
    static func crossingProbability(boundary b: Double, steps: Int) -> Double {
        let sf = { (x: Double) in erfc(x / 2.0.squareRoot()) / 2 }
        guard steps > 1 else { return sf(b) }
        let n = 400  // intervals, even
        let lower = -9 * Double(steps).squareRoot(), h = (b - lower) / Double(n)
        let weights = (0...n).map { i in (i == 0 || i == n ? 1.0 : i % 2 == 1 ? 4 : 2) * h / 3 }
        // The normal density at every grid distance, and the chance of crossing from each grid point.
        let kernel = (-n...n).map { d in exp(-Double(d * d) * h * h / 2) / (2 * Double.pi).squareRoot() }
        let crossing = (0...n).map { sf(b - lower - Double($0) * h) }
        var density = (0...n).map { i in  // S_1, on paths below b
            let s = lower + Double(i) * h
            return exp(-s * s / 2) / (2 * Double.pi).squareRoot()
        }
        var crossed = sf(b)
        var mass = [Double](repeating: 0, count: n + 1)
        for step in 2...steps {
            for i in 0...n { mass[i] = density[i] * weights[i] }
            for i in 0...n { crossed += mass[i] * crossing[i] }
            guard step < steps else { break }
            for j in 0...n {
                var sum = 0.0
                for i in 0...n { sum += mass[i] * kernel[n + j - i] }
                density[j] = sum
            }
        }
        return crossed
    }
}
