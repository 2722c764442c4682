import CycloneModel
import Foundation

/// NannyML's multivariate drift check (`DataReconstructionDriftCalculator`): a PCA fitted on the reference,
/// and each row's distance from its own reconstruction through the components kept. A change in how the
/// features move together (a correlation turned around) raises the error even where every feature's own
/// distribution, and so every univariate test, stays the same.
///
/// As NannyML 0.13 prepares the rows: a missing number takes the reference mean, a missing category the
/// reference's most frequent one (the least of equally frequent ones); a category becomes its share of the
/// reference rows (0 for one the reference never had), a boolean a category of its own; every column is
/// standardised by the reference (population standard deviation; 1 for a column scikit-learn's StandardScaler
/// deems constant), and the PCA keeps the
/// fewest components whose explained variance exceeds `varianceShare`. A column without a value in the
/// reference is left out, as scikit-learn's imputer leaves it out.
///
/// A numeric column is first divided by the power of two at or below its largest reference magnitude, so
/// that its values lie within ±2: exact in binary, so the figures are those of the values themselves, while
/// the squares of a column near 1e154 or 1e-160 neither overflow nor underflow. A column of one value is
/// centred on that value exactly (its deviations 0, not the rounding of a mean).
public struct DataReconstruction: Sendable {
    /// The columns used, in the reference's order.
    public let features: [String]
    /// Components kept, and the share of the reference's variance each explains (all of them).
    public let components: Int
    public let explainedVarianceRatio: [Double]

    private enum Encoding: Sendable {
        /// A number is multiplied by `unit` (a power of two); a missing one becomes the mean, in those units.
        /// `constant`: every reference value is the same (then `mean` is that value exactly).
        case numeric(mean: Double, unit: Double, constant: Bool)
        /// A category becomes its share of the reference; a missing one is `mode`.
        case categorical(shares: [String: Double], mode: String)

        /// What a value was multiplied by: 1 for a share.
        var unit: Double {
            if case .numeric(_, let unit, _) = self { unit } else { 1 }
        }
    }
    private let encodings: [Encoding]
    private let scaleMean: [Double], scale: [Double]
    /// The PCA's centre (of the standardised reference: zero up to rounding, kept as scikit-learn keeps it)
    /// and its kept axes, `components` rows of `features.count`.
    private let centre: [Double]
    private let axes: [[Double]]
    /// Each reference row's error (`errors(reference)`), measured as the PCA was fitted.
    public let referenceErrors: [Double]

    /// Fits on the reference; `nil` when fewer than two columns have values, fewer than two rows, a spread that is
    /// no finite number, or when the PCA keeps every component (nothing is left for an error to measure).
    /// `categoryCounts`: a categorical or boolean column's category counts when the caller has them already
    /// (its reference profile's), by column name; others are counted here.
    public init?(reference: FeatureTable, varianceShare: Double = 0.65, categoryCounts: [String: [String: Int]] = [:]) {
        // Each column's encoding (a numeric column's mean, a category's share), the columns side by side.
        let found = concurrentMap(reference.columns.count) { k -> Encoding? in
            let column = reference.columns[k]
            if case .numeric(let values) = column.values {
                let present = values.filter { !$0.isNaN }
                guard !present.isEmpty else { return nil }
                let largest = present.reduce(0) { max($0, abs($1)) }
                // 2^-e for a largest magnitude in [2^e, 2^(e+1)): exact, as 1/2^1023 is a (subnormal) double too.
                let unit = largest.isNormal ? Double(sign: .plus, exponent: -largest.exponent, significand: 1) : 1
                let constant = present.allSatisfy { $0 == present[0] }
                let mean = constant ? present[0] * unit : present.reduce(0) { $0 + $1 * unit } / Double(present.count)
                return .numeric(mean: mean, unit: unit, constant: constant)
            }
            var counts: [String: Int]
            if let known = categoryCounts[column.name] {
                counts = known
            } else {
                counts = [:]
                for case let cell? in Self.categories(column.values) ?? [] { counts[cell, default: 0] += 1 }
            }
            // scikit-learn's most_frequent: the least (by code points) of the commonest.
            guard let top = counts.values.max(),
                  let mode = counts.filter({ $0.value == top }).keys.min(by: Self.codePointOrder)
            else { return nil }
            let total = reference.rowCount
            counts[mode, default: 0] += total - counts.values.reduce(0, +)
            return .categorical(shares: counts.mapValues { Double($0) / Double(total) }, mode: mode)
        }
        let used = found.indices.filter { found[$0] != nil }
        let names = used.map { reference.columns[$0].name }, encodings = used.map { found[$0]! }
        let rows = reference.rowCount, p = names.count
        guard p >= 2, rows >= 2 else { return nil }
        self.features = names
        self.encodings = encodings
        // The reference encoded block by block, row-major (blocks of a fixed size, summed in order, so the
        // figures do not depend on the cores); its column means, then in one more pass the sums of the
        // deviations d from them, of their squares and of their products.
        let columns = Self.columns(reference, names: names), blocks = Self.blocks(rows)
        let encoded = concurrentMap(blocks.count) { Self.encode(columns, rows: blocks[$0], encodings: encodings) }
        let n = Double(rows)
        let sums = concurrentMap(encoded.count) { b in
            encoded[b].withUnsafeBufferPointer { x in
                var sum = [Double](repeating: 0, count: p)
                for i in 0..<(x.count / p) { for j in 0..<p { sum[j] += x[i * p + j] } }
                return sum
            }
        }
        // A column of one value is centred on it exactly, not on the rounding of its sum (which at 1e154 would
        // be a spread squaring past a double).
        let scaleMean = (0..<p).map { j in
            if case .numeric(let mean, _, true) = encodings[j] { return mean }
            return sums.reduce(0) { $0 + $1[j] } / n
        }
        let moments = concurrentMap(encoded.count) { b in
            encoded[b].withUnsafeBufferPointer { x in
                var deviations = [Double](repeating: 0, count: p), products = [Double](repeating: 0, count: p * p)
                var d = [Double](repeating: 0, count: p)
                for i in 0..<(x.count / p) {
                    for j in 0..<p {
                        d[j] = x[i * p + j] - scaleMean[j]
                        deviations[j] += d[j]
                    }
                    for a in 0..<p { for c in a..<p { products[a * p + c] += d[a] * d[c] } }
                }
                return (deviations, products)
            }
        }
        let deviations = (0..<p).map { j in moments.reduce(0) { $0 + $1.0[j] } }
        let products = (0..<(p * p)).map { k in moments.reduce(0) { $0 + $1.1[k] } }
        var scale = [Double](repeating: 1, count: p)
        for j in 0..<p {
            let variance = products[j * p + j] / n, mean = scaleMean[j], eps = Double.ulpOfOne
            // scikit-learn's StandardScaler leaves a constant column unscaled (`_is_constant_feature`), in its own
            // units: divided by the unit it was encoded in.
            let constant = variance <= n * eps * variance + (n * mean * eps) * (n * mean * eps)
            scale[j] = constant ? encodings[j].unit : variance.squareRoot()
        }
        (self.scaleMean, self.scale) = (scaleMean, scale)
        // The standardised reference z = d / scale: its centre (zero up to rounding) and the sums of products of
        // its deviations from that centre, Σ(z_a − c_a)(z_b − c_b) = (Σd_a·d_b − n·e_a·e_b) / (s_a·s_b), e the
        // mean deviation.
        let centre = (0..<p).map { j in deviations[j] / n / scale[j] }
        var covariance = [Double](repeating: 0, count: p * p)
        for a in 0..<p {
            for b in a..<p {
                let sum = products[a * p + b] - n * (deviations[a] / n) * (deviations[b] / n)
                // 0 beside a column of one value, whose unit's square may be below a double's range.
                let value = sum == 0 ? 0 : sum / (scale[a] * scale[b])
                (covariance[a * p + b], covariance[b * p + a]) = (value, value)
            }
        }
        // Numeric columns are within ±2 here (`Encoding.numeric`), shares within 0…1: only a value that is no
        // number (an infinity), or a column constant but for rounding at 1e160 and beyond (unscaled, as
        // scikit-learn leaves it), leaves no finite spread to fit.
        guard covariance.allSatisfy(\.isFinite), scale.allSatisfy(\.isFinite) else { return nil }
        let (values, vectors) = symmetricEigen(covariance, n: p)
        let total = values.reduce(0) { $0 + max($1, 0) }
        let ratios = values.map { total > 0 ? max($0, 0) / total : 0 }
        // scikit-learn: the fewest components whose cumulative ratio exceeds the share (searchsorted, right).
        var kept = 0, cumulative = 0.0
        while kept < p {
            cumulative += ratios[kept]
            kept += 1
            if cumulative > varianceShare { break }
        }
        // Every component kept reconstructs every row: the error is rounding, not a measure.
        guard kept < p else { return nil }
        self.components = kept
        self.explainedVarianceRatio = ratios
        self.centre = centre
        let axes = (0..<kept).map { k in (0..<p).map { vectors[$0 * p + k] } }
        self.axes = axes
        // The reference's own errors, from the blocks already encoded.
        let flat = axes.flatMap { $0 }, fitted = (scale: scale, components: kept)
        referenceErrors = concurrentMap(encoded.count) { b in
            var block = encoded[b]
            return Self.measure(&block, scaleMean: scaleMean, scale: fitted.scale, centre: centre, axes: flat,
                                components: fitted.components)
        }.flatMap { $0 }
    }

    /// Each row's reconstruction error: the Euclidean distance between its standardised values and their
    /// projection back from the components. Columns are found by name; an absent one counts as missing.
    /// Row blocks are encoded and measured side by side on the cores; each row's error is its own.
    public func errors(_ table: FeatureTable) -> [Double] {
        let columns = Self.columns(table, names: features)
        let axes = self.axes.prefix(components).flatMap { $0 }  // component after component, p values each
        let blocks = Self.blocks(table.rowCount)
        return concurrentMap(blocks.count) { errors(blocks[$0], of: columns, axes: axes) }.flatMap { $0 }
    }

    private func errors(_ range: Range<Int>, of columns: [FeatureTable.Values?], axes: [Double]) -> [Double] {
        var x = Self.encode(columns, rows: range, encodings: encodings)
        return Self.measure(&x, scaleMean: scaleMean, scale: scale, centre: centre, axes: axes, components: components)
    }

    /// The errors of encoded rows `x` (row-major, `scaleMean.count` values a row), standardised in place.
    private static func measure(_ x: inout [Double], scaleMean: [Double], scale: [Double], centre: [Double],
                                axes: [Double], components: Int) -> [Double]
    {
        let p = scaleMean.count, rows = x.count / max(p, 1)
        var errors = [Double](repeating: 0, count: rows)
        var scores = [Double](repeating: 0, count: components)
        x.withUnsafeMutableBufferPointer { x in
            axes.withUnsafeBufferPointer { axes in
                scores.withUnsafeMutableBufferPointer { scores in
                    for i in 0..<rows {
                        let row = UnsafeMutableBufferPointer(rebasing: x[(i * p)..<((i + 1) * p)])
                        // A value a hundred orders of magnitude out (a sentinel such as the largest double) counts
                        // as that far: its square must stay a number, so the mean error can be reported.
                        for j in 0..<p { row[j] = min(max((row[j] - scaleMean[j]) / scale[j] - centre[j], -1e100), 1e100) }
                        for k in 0..<components {
                            var score = 0.0
                            for j in 0..<p { score += axes[k * p + j] * row[j] }
                            scores[k] = score
                        }
                        var squared = 0.0
                        for j in 0..<p {
                            var back = 0.0
                            for k in 0..<components { back += scores[k] * axes[k * p + j] }
                            squared += (row[j] - back) * (row[j] - back)
                        }
                        errors[i] = squared.squareRoot()
                    }
                }
            }
        }
        return errors
    }

    /// A column's cells as categories (categorical and boolean columns), `nil` for a numeric one.
    private static func categories(_ values: FeatureTable.Values) -> [String?]? {
        switch values {
        case .categorical(let cells): cells
        case .boolean(let flags): flags.map { $0.isNaN ? nil : $0 != 0 ? "true" : "false" }
        case .numeric: nil
        }
    }

    private static func codePointOrder(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    /// The columns of `table` named `names`, in that order (nil for one it lacks).
    private static func columns(_ table: FeatureTable, names: [String]) -> [FeatureTable.Values?] {
        names.map { name in table.columns.first { $0.name == name }?.values }
    }

    /// `0..<rows` cut into blocks of 32,768 rows (the last shorter), the same on any machine.
    private static func blocks(_ rows: Int) -> [Range<Int>] {
        stride(from: 0, to: max(rows, 1), by: 32_768).map { $0..<min($0 + 32_768, rows) }
    }

    /// The rows `range` encoded and imputed, row-major over `columns`.
    private static func encode(_ columns: [FeatureTable.Values?], rows range: Range<Int>, encodings: [Encoding])
        -> [Double]
    {
        let p = columns.count
        var x = [Double](repeating: 0, count: range.count * p)
        for (j, values) in columns.enumerated() {
            switch encodings[j] {
            case .numeric(let mean, let unit, _):
                let numbers: [Double]?
                if case .numeric(let v)? = values { numbers = v } else { numbers = nil }
                for (i, row) in range.enumerated() {
                    let value = numbers?[row] ?? .nan
                    x[i * p + j] = value.isNaN ? mean : value * unit
                }
            case .categorical(let shares, let mode):
                // A few categories are found faster by comparing than by hashing.
                let few = shares.count <= 16 ? Array(shares) : nil
                let code = { (cell: String?) in
                    let cell = cell ?? mode
                    return few.map { few in few.first { $0.key == cell }?.value ?? 0 } ?? shares[cell] ?? 0
                }
                switch values {
                case .categorical(let cells)?: for (i, row) in range.enumerated() { x[i * p + j] = code(cells[row]) }
                case .boolean(let flags)?:
                    for (i, row) in range.enumerated() {
                        x[i * p + j] = code(flags[row].isNaN ? nil : flags[row] != 0 ? "true" : "false")
                    }
                case .numeric?, nil: for i in 0..<range.count { x[i * p + j] = code(nil) }
                }
            }
        }
        return x
    }

}

/// A window's mean reconstruction error against the reference's, as a drift verdict.
///
/// NannyML draws its band from the reference cut into chunks of the window's size: the mean of the chunks'
/// errors ± 3 standard deviations of them (`nannyMLBand`). That needs a reference many windows long; the
/// evaluator's is one window. So the band here is the same idea made to hold for any reference of m rows
/// against a window of n:
/// - the reference is cut into m / n equal batches (chunks of the window's size) when it holds ten windows,
///   else into ten; their spread, scaled to n rows by √(batch / n), is the batch-means estimate of a mean's
///   spread, which also holds for rows correlated over less than a batch (hourly data);
/// - the reference's own mean is a sample too: the spread of the difference is √(1 + n/m) times that;
/// - the band's half-width takes Student's t quantile with (chunks − 1) degrees of freedom at the two-sided
///   level of 3 standard deviations (0.27 %), since the spread is estimated from few chunks (4.09 for ten).
/// With a reference of ten windows or more this is NannyML's band, widened by at most 5 % for the
/// reference mean's error and by the t quantile's excess over 3. The lower end is dropped when it falls to 0
/// or below, as NannyML drops it. The window drifts when its mean error is above the band or below it.
public struct ReconstructionDrift: Sendable, Codable, Equatable {
    public var features: [String]
    public var components: Int
    /// Rows in the window.
    public var rows: Int
    /// The window's mean error, and its standard error (the window's own spread over √rows).
    public var value: Double
    public var samplingError: Double
    /// The mean error of the reference's rows, and the band around it.
    public var reference: Double
    public var lower: Double?
    public var upper: Double
    public var drifted: Bool
    /// This window's verdict before persistence, and how many windows in a row it has held (as `FeatureDrift`).
    public var signal: Bool?
    public var consecutive: Int?

    enum CodingKeys: String, CodingKey {
        case features, components, rows, value, samplingError = "sampling_error", reference, lower, upper, drifted,
             signal, consecutive
    }

    /// The storage row's name among the drift rows, beside the features, `prediction` and `target`.
    public static let column = "multivariate"

    /// The fewest chunks a reference is cut into.
    static let batches = 10

    /// The window's errors against the reference's (`DataReconstruction.errors` of each); `nil` when the
    /// reference has fewer than ten rows or the window fewer than two.
    public init?(_ reconstruction: DataReconstruction, referenceErrors: [Double], windowErrors: [Double]) {
        let m = referenceErrors.count, n = windowErrors.count
        guard m >= Self.batches, n >= 2 else { return nil }
        // Equal batches (numpy's array_split): NannyML's chunks of the window's size when they divide the
        // reference, never a short last one whose mean would spread the band.
        let means = batchMeans(referenceErrors, batches: max(Self.batches, m / n))
        let batch = Double(m) / Double(means.count)
        let centre = Self.mean(referenceErrors[...])
        let spread = ConfidenceBasedEstimation.populationStandardDeviation(means) * (batch / Double(n)).squareRoot()
            * (1 + Double(n) / Double(m)).squareRoot()
        let halfWidth = studentTQuantile(Self.threeSigmaTail, degreesOfFreedom: Double(means.count - 1)) * spread
        let mean = Self.mean(windowErrors[...])
        let variance = windowErrors.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        self.features = reconstruction.features
        self.components = reconstruction.components
        self.rows = n
        self.value = mean
        self.samplingError = variance.squareRoot() / Double(n).squareRoot()
        self.reference = centre
        self.lower = centre - halfWidth > 0 ? centre - halfWidth : nil
        self.upper = centre + halfWidth
        // On the band's edge is inside, as NannyML alerts only beyond a threshold: a reference whose errors do not
        // vary (a column constant but for rounding, reconstructed exactly) has a band of no width, and a window
        // the same as it sits on that band.
        self.drifted = !((self.lower ?? -.infinity) <= mean && mean <= upper)
    }

    /// The upper tail beyond 3 standard deviations of a normal distribution.
    static let threeSigmaTail = erfc(3 / 2.0.squareRoot()) / 2

    static func mean(_ values: ArraySlice<Double>) -> Double { values.reduce(0, +) / Double(values.count) }

    /// NannyML's band for chunks of `chunkSize` rows: the mean of the reference chunks' mean errors ± 3 of
    /// their population standard deviations, the lower end `nil` at 0 or below.
    public static func nannyMLBand(referenceErrors: [Double], chunkSize: Int) -> (lower: Double?, upper: Double) {
        let means = ConfidenceBasedEstimation.chunks(referenceErrors.count, size: chunkSize).map { mean(referenceErrors[$0]) }
        let centre = means.reduce(0, +) / Double(means.count)
        let deviation = ConfidenceBasedEstimation.populationStandardDeviation(means)
        return (centre - 3 * deviation > 0 ? centre - 3 * deviation : nil, centre + 3 * deviation)
    }

    /// The check of `window` against `reference`, fitted on the reference; `nil` when it cannot be fitted or
    /// either side is too short.
    public init?(reference: FeatureTable, window: FeatureTable, varianceShare: Double = 0.65,
                 categoryCounts: [String: [String: Int]] = [:])
    {
        guard let reconstruction = DataReconstruction(reference: reference, varianceShare: varianceShare,
                                                      categoryCounts: categoryCounts)
        else { return nil }
        self.init(reconstruction, referenceErrors: reconstruction.referenceErrors,
                  windowErrors: reconstruction.errors(window))
    }

    /// Drifting only once the check has drifted `options.persistence` windows in a row.
    public mutating func applyPersistence(previous: [String: Int], options: DriftOptions) {
        var row = self.row
        row.applyPersistence(previous: previous, options: options)
        (signal, consecutive, drifted) = (row.signal, row.consecutive, row.drifted)
    }

    /// The verdict as a drift row: the mean error as its statistic, the upper band as its threshold.
    public var row: FeatureDrift {
        var row = FeatureDrift(feature: Self.column, kind: .numeric, test: .reconstruction, statistic: value, pValue: nil,
                               threshold: upper, drifted: drifted, psi: nil, stability: nil, rows: rows, missing: 0,
                               invalid: 0, missingRate: nil, referenceMissingRate: 0)
        (row.signal, row.consecutive) = (signal, consecutive)
        return row
    }

    /// What the drift row's `detail` adds: the reference's mean, the band's lower end, the window's standard
    /// error, and the PCA's columns and components.
    public var detail: [String: JSONValue] {
        ["reference": .number(reference), "lower": lower.map(JSONValue.number) ?? .null,
         "sampling_error": .number(samplingError), "components": .number(Double(components)),
         "features": .array(features.map(JSONValue.string))]
    }

    public var text: String {
        String(format: "mean reconstruction error %.4g over %d rows (PCA, %d of %d components) against the reference's %.4g, band [%@, %.4g]: %@",
               value, rows, components, features.count, reference, lower.map { String(format: "%.4g", $0) } ?? "–", upper,
               drifted ? "DRIFT" : signal == true ? "drifted \(consecutive ?? 1) window(s) in a row, not yet reported" : "ok")
    }
}

/// The eigenvalues of a symmetric `n × n` matrix (row-major), largest first, and its eigenvectors as the
/// columns of a row-major matrix, by cyclic Jacobi rotations (exact to rounding for the small matrices here).
public func symmetricEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] } }
        var diagonal = 0.0
        for i in 0..<n { diagonal += a[i * n + i] * a[i * n + i] }
        if off <= 1e-30 * max(diagonal, Double.leastNormalMagnitude) { break }
        for p in 0..<n {
            for q in (p + 1)..<n where a[p * n + q] != 0 {
                let apq = a[p * n + q]
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k * n + p], akq = a[k * n + q]
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p * n + k], aqk = a[q * n + k]
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let vkp = v[k * n + p], vkq = v[k * n + q]
                    v[k * n + p] = c * vkp - s * vkq
                    v[k * n + q] = s * vkp + c * vkq
                }
            }
        }
    }
    let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
    var vectors = [Double](repeating: 0, count: n * n)
    for (column, k) in order.enumerated() { for i in 0..<n { vectors[i * n + column] = v[i * n + k] } }
    return (order.map { a[$0 * n + $0] }, vectors)
}
