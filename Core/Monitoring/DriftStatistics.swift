import CycloneModel
import Foundation

// Two-sample statistics that compare a feature's current window with its reference (training) data.
// Each matches SciPy (or NumPy for PSI's quantile edges) on `Tests/Fixtures/drift/cases.json`.

/// The two-sample Kolmogorov–Smirnov statistic: the largest distance between the two empirical CDFs, as
/// `scipy.stats.ks_2samp(...).statistic`. 0 for identical samples, 1 for disjoint ones; ties are handled by
/// evaluating both CDFs after each distinct value. Empty input gives 0. Cost: two sorts.
public func kolmogorovSmirnovStatistic(reference: [Double], current: [Double]) -> Double {
    guard !reference.isEmpty, !current.isEmpty else { return 0 }
    return kolmogorovSmirnovStatistic(sortedReference: sortedNumbers(reference), sortedCurrent: sortedNumbers(current))
}

/// `kolmogorovSmirnovStatistic` of two samples already in ascending order (`sortedNumbers`): no sort.
public func kolmogorovSmirnovStatistic(sortedReference a: [Double], sortedCurrent b: [Double]) -> Double {
    guard !a.isEmpty, !b.isEmpty else { return 0 }
    var i = 0
    var j = 0
    var largest = 0.0
    while i < a.count || j < b.count {
        let value = j >= b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
        while i < a.count, a[i] == value { i += 1 }
        while j < b.count, b[j] == value { j += 1 }
        largest = max(largest, abs(Double(i) / Double(a.count) - Double(j) / Double(b.count)))
    }
    return largest
}

/// Pearson's chi-squared goodness of fit of the current category counts against the reference's
/// frequencies, as `scipy.stats.chisquare(current, expected)` with `expected` the reference shares scaled to
/// the current total; k − 1 degrees of freedom. Every reference count must be above 0 (give unseen
/// categories their own bin with a small count before calling). `nil` for fewer than 2 categories or an
/// empty side.
public func chiSquaredTest(referenceCounts: [Int], currentCounts: [Int]) -> (statistic: Double, pValue: Double)? {
    chiSquaredTest(referenceWeights: referenceCounts.map(Double.init), currentCounts: currentCounts)
}

/// The same test with reference weights that need not be whole (a small weight stands in for a category the
/// reference never saw).
public func chiSquaredTest(referenceWeights: [Double], currentCounts: [Int]) -> (statistic: Double, pValue: Double)? {
    let k = min(referenceWeights.count, currentCounts.count)
    let referenceTotal = referenceWeights.prefix(k).reduce(0, +)
    let currentTotal = Double(currentCounts.prefix(k).reduce(0, +))
    guard k >= 2, referenceTotal > 0, currentTotal > 0 else { return nil }
    var statistic = 0.0
    for i in 0..<k {
        let expected = referenceWeights[i] / referenceTotal * currentTotal
        let difference = Double(currentCounts[i]) - expected
        statistic += difference * difference / expected
    }
    return (statistic, regularizedUpperGamma(Double(k - 1) / 2, statistic / 2))
}

/// Pearson's chi-squared test of independence of two samples' category counts (a 2 × k contingency table),
/// as `scipy.stats.chi2_contingency([a, b], correction=False)`: expected counts from the margins, k − 1
/// degrees of freedom over the categories either sample has. `nil` with fewer than two such categories or
/// an empty sample.
public func chiSquaredContingency(_ a: [Int], _ b: [Int]) -> (statistic: Double, pValue: Double)? {
    let columns = zip(a, b).filter { $0.0 + $0.1 > 0 }
    let totalA = Double(columns.reduce(0) { $0 + $1.0 }), totalB = Double(columns.reduce(0) { $0 + $1.1 })
    guard columns.count >= 2, totalA > 0, totalB > 0 else { return nil }
    let total = totalA + totalB
    var statistic = 0.0
    for (x, y) in columns {
        let column = Double(x + y)
        for (observed, row) in [(Double(x), totalA), (Double(y), totalB)] {
            let expected = row * column / total
            statistic += (observed - expected) * (observed - expected) / expected
        }
    }
    return (statistic, regularizedUpperGamma(Double(columns.count - 1) / 2, statistic / 2))
}

/// Two-sided two-proportion Z-test with a pooled proportion (Evidently's test for two-valued features).
/// When the pooled proportion is 0 or 1 both samples agree exactly: statistic 0, p-value 1.
public func twoProportionZTest(
    referenceSuccesses: Int, referenceCount: Int, currentSuccesses: Int, currentCount: Int
) -> (statistic: Double, pValue: Double)? {
    guard referenceCount > 0, currentCount > 0 else { return nil }
    let n1 = Double(referenceCount), n2 = Double(currentCount)
    let p1 = Double(referenceSuccesses) / n1
    let p2 = Double(currentSuccesses) / n2
    let pooled = Double(referenceSuccesses + currentSuccesses) / (n1 + n2)
    guard pooled > 0, pooled < 1 else { return (0, 1) }
    let z = (p1 - p2) / (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
    // 2 · P(Z > |z|) = erfc(|z| / √2)
    return (z, erfc(abs(z) / 2.0.squareRoot()))
}

/// The first Wasserstein (earth mover's) distance between two samples, as `scipy.stats.wasserstein_distance`:
/// the area between the two empirical CDFs. In the units of the feature; Evidently divides it by the
/// reference's standard deviation. Empty input gives 0.
public func wassersteinDistance(reference: [Double], current: [Double]) -> Double {
    guard !reference.isEmpty, !current.isEmpty else { return 0 }
    return wassersteinDistance(sortedReference: sortedNumbers(reference), sortedCurrent: sortedNumbers(current))
}

/// `wassersteinDistance` of two samples already in ascending order (`sortedNumbers`): no sort.
public func wassersteinDistance(sortedReference a: [Double], sortedCurrent b: [Double]) -> Double {
    guard !a.isEmpty, !b.isEmpty else { return 0 }
    // One pass over both sorted samples: between consecutive values the CDFs are flat.
    var distance = 0.0
    var i = 0, j = 0
    var x = min(a[0], b[0])
    while i < a.count || j < b.count {
        while i < a.count, a[i] <= x { i += 1 }
        while j < b.count, b[j] <= x { j += 1 }
        let next = min(i < a.count ? a[i] : .infinity, j < b.count ? b[j] : .infinity)
        guard next.isFinite else { break }
        distance += abs(Double(i) / Double(a.count) - Double(j) / Double(b.count)) * (next - x)
        x = next
    }
    return distance
}

/// The Jensen–Shannon distance (the square root of the divergence, natural log) between two distributions
/// over the same categories, as `scipy.spatial.distance.jensenshannon`: 0 for equal distributions, at most
/// √ln 2 ≈ 0.833 for disjoint ones. Inputs are normalised to sum to 1; `0 · log 0` counts 0.
public func jensenShannonDistance(_ p: [Double], _ q: [Double]) -> Double {
    let sp = p.reduce(0, +), sq = q.reduce(0, +)
    guard sp > 0, sq > 0 else { return 0 }
    var divergence = 0.0
    for i in 0..<min(p.count, q.count) {
        let a = p[i] / sp, b = q[i] / sq
        let m = (a + b) / 2
        if a > 0 { divergence += a * log(a / m) }
        if b > 0 { divergence += b * log(b / m) }
    }
    return (max(0, divergence) / 2).squareRoot()
}

/// Population stability index of `current` against `reference` over 10 reference quantile bins.
///
/// Edges are the reference's deciles (NumPy's default linear quantiles). The first and last bins are open,
/// so values outside the reference's range count in them. A share of 0 on either side counts as 1e-4 so the
/// log stays finite. 0 means the same distribution; 0.1 is usually read as a moderate shift, 0.25 as a
/// major one.
public func populationStabilityIndex(reference: [Double], current: [Double]) -> (psi: Double, edges: [Double])? {
    guard !reference.isEmpty, !current.isEmpty else { return nil }
    let sorted = sortedNumbers(reference)
    let edges = (0...10).map { linearQuantile(sorted, $0 == 10 ? 1 : Double($0) * 0.1) }
    let inner = Array(edges[1...9])
    func shares(_ values: [Double]) -> [Double] {
        var counts = [Int](repeating: 0, count: 10)
        for value in values { counts[binIndex(inner, value)] += 1 }
        return psiShares(counts)
    }
    return (populationStabilityIndex(referenceShares: shares(reference), currentShares: shares(current)), edges)
}

/// PSI from shares per bin already floored (a share of 0 counted as `psiFloor`): Σ (c − r) · ln(c / r).
public func populationStabilityIndex(referenceShares r: [Double], currentShares c: [Double]) -> Double {
    var psi = 0.0
    for k in 0..<min(r.count, c.count) { psi += (c[k] - r[k]) * log(c[k] / r[k]) }
    return psi
}

/// The share PSI gives an empty bin, so the log stays finite.
public let psiFloor = 1e-4

/// PSI shares of counts: each count over the total, an empty bin counting `psiFloor`.
public func psiShares(_ counts: [Int]) -> [Double] {
    let total = Double(counts.reduce(0, +))
    return counts.map { $0 == 0 || total == 0 ? psiFloor : Double($0) / total }
}

/// Q(a, x) = Γ(a, x) / Γ(a), the upper tail of the chi-squared distribution with 2a degrees of freedom at 2x.
/// A series below a + 1 and Lentz's continued fraction above, each to about 1e-15 relative (Numerical
/// Recipes §6.2); the continued fraction keeps tiny tail probabilities accurate.
func regularizedUpperGamma(_ a: Double, _ x: Double) -> Double {
    guard x > 0 else { return 1 }
    let logPrefix = a * log(x) - x - lgamma(a)
    if x < a + 1 {
        var term = 1 / a
        var sum = term
        var n = a
        for _ in 0..<10_000 {
            n += 1
            term *= x / n
            sum += term
            if abs(term) < abs(sum) * 1e-17 { break }
        }
        return max(0, 1 - sum * exp(logPrefix))
    }
    let tiny = 1e-300
    var b = x + 1 - a
    var c = 1 / tiny
    var d = 1 / b
    var h = d
    for i in 1...10_000 {
        let an = -Double(i) * (Double(i) - a)
        b += 2
        d = an * d + b
        if abs(d) < tiny { d = tiny }
        c = b + an / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16 { break }
    }
    return exp(logPrefix) * h
}

/// The standard normal quantile (`scipy.stats.norm.ppf`) for 0 < `p` < 1: Acklam's rational approximation,
/// refined by one Halley step on `erfc`; within 1e-13 relative of SciPy's on the fixtures (the tails
/// included), and about 1e-9 just beside p = 0.5, where Φ(x) − p cancels. ±infinity at 0 and 1, NaN outside.
public func standardNormalQuantile(_ p: Double) -> Double {
    guard p > 0, p < 1 else { return p == 0 ? -.infinity : p == 1 ? .infinity : .nan }
    // The upper half by symmetry: 1 − p is exact there, while Φ(x) − p near 1 would cancel.
    if p > 0.5 { return -standardNormalQuantile(1 - p) }
    let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
             -3.066479806614716e+01, 2.506628277459239e+00]
    let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
             -1.328068155288572e+01]
    let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
             4.374664141464968e+00, 2.938163982698783e+00]
    let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    let low = 0.02425
    var x: Double
    if p < low {
        let q = (-2 * log(p)).squareRoot()
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    } else {
        let q = p - 0.5, r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
    // Halley's step on Φ(x) − p, with Φ(x) = erfc(−x/√2)/2.
    let e = erfc(-x / 2.0.squareRoot()) / 2 - p
    let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
    if u.isFinite { x -= u / (1 + x * u / 2) }  // exp overflows below p ≈ 1e-300: keep the approximation
    return x
}
