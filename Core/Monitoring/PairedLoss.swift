import Foundation

/// One-sided paired t-test that `differences` have a mean above 0, as
/// `scipy.stats.ttest_rel(live, challenger, alternative="greater")` on `differences = live − challenger`:
/// t = mean / (s / √n), s the sample standard deviation, and Student's t survival with n − 1 degrees of
/// freedom. When every difference is 0 there is no evidence either way: t 0, p-value 1 (SciPy's are NaN);
/// when they are all equal and not 0, t is ±`greatestFiniteMagnitude` (SciPy's ±∞, kept encodable as JSON)
/// and the p-value 0 or 1. `nil` for fewer than two differences.
public func pairedTTestGreater(_ differences: [Double]) -> (statistic: Double, pValue: Double)? {
    let n = Double(differences.count)
    guard differences.count > 1 else { return nil }
    let (mean, variance) = sampleMoments(differences)
    guard variance > 0 else { return noSpread(mean, 0) }
    let t = mean / (variance / n).squareRoot()
    return (t, studentTSurvival(t, degreesOfFreedom: n - 1))
}

/// The mean of `values` and their sample variance (n − 1 in the denominator), for the t-tests.
func sampleMoments(_ values: [Double]) -> (mean: Double, variance: Double) {
    let mean = values.reduce(0, +) / Double(values.count)
    return (mean, values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1))
}

/// A one-sided t-test's answer when the samples have no spread: no evidence when the means are equal
/// (t 0, p 1; SciPy's NaN), else ±`greatestFiniteMagnitude` with p 0 or 1 (SciPy's ±∞, kept encodable as JSON).
func noSpread(_ mean: Double, _ other: Double) -> (statistic: Double, pValue: Double) {
    mean == other ? (0, 1) : mean > other ? (.greatestFiniteMagnitude, 0) : (-.greatestFiniteMagnitude, 1)
}

/// The means of `batches` consecutive batches of `values`, as `numpy.array_split` cuts them (the first
/// `count % batches` one longer).
func batchMeans(_ values: [Double], batches: Int) -> [Double] {
    let (size, longer) = (values.count / batches, values.count % batches)
    var means: [Double] = [], start = 0
    for batch in 0..<batches {
        let end = start + size + (batch < longer ? 1 : 0)
        means.append(values[start..<end].reduce(0, +) / Double(end - start))
        start = end
    }
    return means
}

/// P(T > t) for Student's t with `degreesOfFreedom` (which may be fractional), from the regularized
/// incomplete beta function: P(|T| > |t|) = I_{ν/(ν + t²)}(ν/2, 1/2).
public func studentTSurvival(_ t: Double, degreesOfFreedom nu: Double) -> Double {
    guard t.isFinite else { return t > 0 ? 0 : 1 }
    let tail = regularizedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5) / 2
    return t > 0 ? tail : 1 - tail
}

/// The t with P(T > t) = `tail` for Student's t with `degreesOfFreedom`, by bisection on `studentTSurvival`
/// (`scipy.stats.t.isf(tail, df)`), for a tail below ½.
public func studentTQuantile(_ tail: Double, degreesOfFreedom nu: Double) -> Double {
    var (low, high) = (0.0, 1.0)
    while studentTSurvival(high, degreesOfFreedom: nu) > tail, high < 1e12 { high *= 2 }
    for _ in 0..<200 where high - low > 1e-14 * high {
        let middle = (low + high) / 2
        if studentTSurvival(middle, degreesOfFreedom: nu) > tail { low = middle } else { high = middle }
    }
    return (low + high) / 2
}

/// I_x(a, b), by the continued fraction of Numerical Recipes (§6.4, modified Lentz), on the side where it
/// converges fast.
func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
    guard x > 0 else { return 0 }
    guard x < 1 else { return 1 }
    let gammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
    let powers: Double = a * log(x) + b * log(1 - x)
    let logFront = gammas + powers
    if x < (a + 1) / (a + b + 2) {
        return exp(logFront) * betaContinuedFraction(x, a: a, b: b) / a
    }
    return 1 - exp(logFront) * betaContinuedFraction(1 - x, a: b, b: a) / b
}

private func betaContinuedFraction(_ x: Double, a: Double, b: Double) -> Double {
    let tiny = 1e-300
    var c = 1.0, d = 1 - (a + b) * x / (a + 1)
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var h = d
    for m in 1...10_000 {
        let m = Double(m), m2 = 2 * m
        var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
        d = 1 + aa * d
        if abs(d) < tiny { d = tiny }
        c = 1 + aa / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        h *= d * c
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
        d = 1 + aa * d
        if abs(d) < tiny { d = tiny }
        c = 1 + aa / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let step = d * c
        h *= step
        if abs(step - 1) < 1e-15 { break }
    }
    return h
}

/// Whether a challenger scored beside the live model on the same labelled rows has the lower mean loss: the
/// per-row losses of both, and a one-sided t-test on the differences live − challenger (pairing removes the
/// rows' shared difficulty). The mean, because the mean loss is what promotion changes: a challenger a little
/// less sure on most rows and far less wrong on a few has the lower mean loss, which a rank test of the
/// differences would count against it. Losses in label order are rarely independent (an hour's error
/// resembles the last), so the test is on the means of `batches` (20) consecutive batches of the differences,
/// the non-overlapping batch means of simulation output analysis (10 to 30 batches is the usual advice):
/// nearly independent once a batch is longer than the correlation lasts, with 19 degrees of freedom; a
/// difference that drifts across the sample, as a degrading live model's does, still counts for the
/// challenger. Fewer than 40 pairs are tested row by row.
/// Per-row losses are the absolute error for a regression and the log loss for a classifier.
public struct PairedLossComparison: Sendable, Equatable, Codable {
    public var pairs: Int
    public var liveMeanLoss: Double
    public var challengerMeanLoss: Double
    /// The t of live − challenger's batch means, and its one-sided p-value (small: the challenger's mean loss
    /// is lower).
    public var statistic: Double
    public var pValue: Double
    /// The batches the differences were averaged in (the pairs themselves below 40).
    public var batches: Int

    /// Batches of a sample of 40 pairs or more.
    public static let batchCount = 20

    /// `1 − challengerMeanLoss / liveMeanLoss`: positive when the challenger is better (−∞ when the live
    /// model's loss is 0 and the challenger's is not, 0 when both are 0).
    public var improvement: Double {
        liveMeanLoss > 0 ? 1 - challengerMeanLoss / liveMeanLoss : challengerMeanLoss > 0 ? -.infinity : 0
    }

    /// `live[i]` and `challenger[i]` are the two models' losses on the same row, in the order the labels came.
    /// `nil` for fewer than two pairs, or losses too large to sum.
    public init?(live: [Double], challenger: [Double]) {
        precondition(live.count == challenger.count, "\(live.count) live losses, \(challenger.count) challenger's")
        let differences = zip(live, challenger).map { $0 - $1 }
        // A loss too large to sum is no evidence a test can weigh (and no figure a report can hold).
        guard differences.allSatisfy(\.isFinite), live.allSatisfy(\.isFinite), challenger.allSatisfy(\.isFinite),
              live.reduce(0, +).isFinite, challenger.reduce(0, +).isFinite
        else { return nil }
        let batches = differences.count >= 2 * Self.batchCount ? Self.batchCount : differences.count
        guard let test = pairedTTestGreater(batches == differences.count ? differences
                                                : batchMeans(differences, batches: batches))
        else { return nil }
        pairs = live.count
        liveMeanLoss = live.reduce(0, +) / Double(live.count)
        challengerMeanLoss = challenger.reduce(0, +) / Double(challenger.count)
        statistic = test.statistic
        pValue = test.pValue
        self.batches = batches
    }

    enum CodingKeys: String, CodingKey {
        case pairs, liveMeanLoss = "live_mean_loss", challengerMeanLoss = "challenger_mean_loss", statistic,
             pValue = "p_value", batches
    }
}
