import CycloneModel
import Foundation

/// The two-sample Kolmogorov–Smirnov test, two-sided: the statistic and its p-value.
///
/// Matches `scipy.stats.ks_2samp(reference, current)` with its default method: when both samples have at most
/// 10,000 values the p-value is exact (Hodges' count of lattice paths, computed as `1 − p` by Viehmann's
/// numerically stable recursion, as SciPy does), to 1e-12 on the fixtures. Beyond that, where SciPy uses the
/// exact one-sample distribution at `n = n₁n₂/(n₁+n₂)`, this uses Kolmogorov's limit with Stephens' small-sample
/// correction, `Q((√n + 0.12 + 0.11/√n)·D)`, within 2 % of SciPy's value (stated tolerance, fixture
/// `large_current_20000`). `nil` when either sample is empty.
public func kolmogorovSmirnovTest(reference: [Double], current: [Double]) -> (statistic: Double, pValue: Double)? {
    guard !reference.isEmpty, !current.isEmpty else { return nil }
    return kolmogorovSmirnovTest(sortedReference: sortedNumbers(reference), sortedCurrent: sortedNumbers(current))
}

/// `kolmogorovSmirnovTest` of two samples already in ascending order (`sortedNumbers`): no sort.
public func kolmogorovSmirnovTest(sortedReference: [Double], sortedCurrent: [Double]) -> (statistic: Double, pValue: Double)? {
    guard !sortedReference.isEmpty, !sortedCurrent.isEmpty else { return nil }
    let d = kolmogorovSmirnovStatistic(sortedReference: sortedReference, sortedCurrent: sortedCurrent)
    return (d, kolmogorovSmirnovPValue(statistic: d, n1: sortedReference.count, n2: sortedCurrent.count))
}

/// The two-sided p-value of a two-sample KS statistic `d` (a multiple of 1 / lcm(n1, n2), as any difference
/// of two empirical CDFs is) for samples of sizes `n1` and `n2`: exact up to 10,000 values, else Kolmogorov's
/// limit with Stephens' correction, as `kolmogorovSmirnovTest` describes.
public func kolmogorovSmirnovPValue(statistic d: Double, n1: Int, n2: Int) -> Double {
    if max(n1, n2) <= 10_000, let exact = exactKolmogorovSmirnovPValue(d: d, n1: n1, n2: n2) { return exact }
    let n = (Double(n1) * Double(n2) / Double(n1 + n2)).rounded(.toNearestOrEven)
    let root = n.squareRoot()
    return kolmogorovTail((root + 0.12 + 0.11 / root) * d)
}

/// The exact two-sided p-value of statistic `d` for samples of sizes `n1` and `n2`, or `nil` if the
/// computation leaves [0, 1] (SciPy then falls back to the asymptotic form too).
func exactKolmogorovSmirnovPValue(d: Double, n1: Int, n2: Int) -> Double? {
    let g = greatestCommonDivisor(n1, n2)
    let lcm = (n1 / g) * n2
    // The statistic is a multiple of 1/lcm; recover the integer exactly (SciPy rounds half to even).
    let h = Int((d * Double(lcm)).rounded(.toNearestOrEven))
    if h == 0 { return 1 }
    let p = n1 == n2 ? probabilityOutsideSquare(n: n1, h: h) : probabilityOutsideLines(n1, n2, g: g, h: h)
    guard p.isFinite, p >= 0, p <= 1 else { return nil }
    return p
}

/// Equal sample sizes: the proportion of lattice paths that leave the band |x − y| < h (reflection sums).
private func probabilityOutsideSquare(n: Int, h: Int) -> Double {
    var p = 0.0
    var k = n / h
    while k >= 0 {
        var term = 1.0
        for j in 0..<h {
            term = Double(n - k * h - j) * term / Double(n + k * h + j + 1)
        }
        p = term * (1 - p)
        k -= 1
    }
    return 2 * p
}

/// Unequal sizes: the proportion of lattice paths from (0, 0) to (m, n) that do not stay strictly inside
/// |x/m − y/n| < h/lcm, one column at a time over a sliding window, each entry already a probability.
private func probabilityOutsideLines(_ a: Int, _ b: Int, g: Int, h: Int) -> Double {
    let m = max(a, b), n = min(a, b)
    let mg = m / g, ng = n / g
    var minj = 0
    var maxj = min(Int((Double(h) / Double(mg)).rounded(.up)), n + 1)
    var length = maxj - minj
    let size = min(2 * maxj + 2, n + 1)
    var column = [Double](repeating: 1, count: size)
    for index in minj..<min(maxj, size) { column[index] = 0 }
    for i in 1...m {
        let lastMinj = minj, lastLength = length
        minj = min(max(Int((Double(ng * i - h) / Double(mg)).rounded(.down)) + 1, 0), n)
        maxj = min(Int((Double(ng * i + h) / Double(mg)).rounded(.up)), n + 1)
        if maxj <= minj { return 1 }
        var value = minj == 0 ? 0.0 : 1.0
        for jj in 0..<(maxj - minj) {
            let j = jj + minj
            value = (column[jj + minj - lastMinj] * Double(i) + value * Double(j)) / Double(i + j)
            column[jj] = value
        }
        length = maxj - minj
        if lastLength > length {
            for index in length..<min(length + lastLength - length, size) { column[index] = 1 }
        }
    }
    return column[maxj - minj - 1]
}

/// Kolmogorov's limiting tail Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²), with the theta-function form for small λ
/// where that series converges slowly.
func kolmogorovTail(_ lambda: Double) -> Double {
    guard lambda > 0 else { return 1 }
    if lambda < 1.18 {
        // 1 − Q(λ) = √(2π)/λ Σ exp(−(2k−1)²π²/(8λ²))
        let y = exp(-Double.pi * Double.pi / (8 * lambda * lambda))
        var sum = 0.0
        var k = 1
        while k < 100 {
            let term = pow(y, Double((2 * k - 1) * (2 * k - 1)))
            sum += term
            if term < 1e-17 { break }
            k += 1
        }
        return min(1, max(0, 1 - (2 * Double.pi).squareRoot() / lambda * sum))
    }
    var sum = 0.0
    for k in 1...100 {
        let term = exp(-2 * Double(k * k) * lambda * lambda)
        sum += k % 2 == 1 ? term : -term
        if term < 1e-17 { break }
    }
    return min(1, max(0, 2 * sum))
}

private func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var a = a, b = b
    while b != 0 { (a, b) = (b, a % b) }
    return a
}
