import CycloneModel
import Foundation

/// When a column counts as drifted: Evidently's defaults.
public struct DriftOptions: Sendable, Equatable {
    /// References of at most this many rows are tested for significance (KS, chi-squared, Z-test); larger ones
    /// by distance (Wasserstein, Jensen–Shannon), since with many rows any tiny difference is significant.
    public var smallReference = 1_000
    /// Significance level of the tests on small references.
    public var pValue = 0.05
    /// Wasserstein distance in units of the reference's standard deviation.
    public var wasserstein = 0.1
    /// Jensen–Shannon distance (natural log, at most √ln 2).
    public var jensenShannon = 0.1
    /// The dataset drifts when at least this share of its features (with values in the window) drift.
    public var datasetShare = 0.5
    /// How the p-values of the features tested for significance are corrected for testing many at once.
    public var correction = Correction.benjaminiHochberg
    /// A column is reported as drifting once its test has drifted in this many consecutive windows.
    public var persistence = 1

    public enum Correction: String, Sendable, Equatable, CaseIterable {
        /// Each feature at `pValue` alone: with many features some drift by chance in every window.
        case none
        /// Benjamini and Hochberg's false discovery rate at `pValue` over the features of one window.
        case benjaminiHochberg = "bh"
    }

    public init() {}
}

/// How one column of the window compares with the reference: the drift test Evidently would choose, its
/// verdict, the PSI, and the data-quality counts (missing, invalid, out of range, unseen categories).
///
/// Numeric columns are compared through the reference's 100 quantile bins (`NumericBinning`), so the
/// statistics are those of the binned window, within a stated tolerance of the exact ones:
/// - KS: the CDFs are compared at the bin edges, which can miss at most the largest reference bin's share
///   (1 % of the reference) of the exact statistic; the p-value is exact for that statistic.
/// - Wasserstein: each window bin's values sit at their mean, and the reference at its own values (kept for
///   references of at most 1,000 rows) or at its bin midpoints; the error is at most the window's mass times
///   the width of the bins it falls in, about 1 % of the reference standard deviation for smooth data.
/// - PSI: exact, over the reference deciles (every tenth edge of the profile).
public struct FeatureDrift: Sendable, Equatable, Codable {
    public enum Test: String, Sendable, Codable {
        case kolmogorovSmirnov = "ks"
        case chiSquared = "chi_squared"
        case zTest = "z_test"
        case wasserstein = "wasserstein_normed"
        case jensenShannon = "jensen_shannon"
        /// The multivariate check's mean PCA reconstruction error (`ReconstructionDrift`).
        case reconstruction = "pca_reconstruction"
    }

    public enum Stability: String, Sendable, Codable {
        /// PSI below 0.1.
        case stable
        /// PSI from 0.1 to 0.25.
        case moderate
        /// PSI of 0.25 or more.
        case major

        public init(psi: Double) {
            self = psi < 0.1 ? .stable : psi < 0.25 ? .moderate : .major
        }
    }

    public var feature: String
    public var kind: Feature.Kind
    public var test: Test
    /// The test's statistic (for a p-value test) or distance; `nil` when either side has no values.
    public var statistic: Double?
    public var pValue: Double?
    /// The p-value below which, or the distance at or above which, the column drifts.
    public var threshold: Double
    public var drifted: Bool
    public var psi: Double?
    public var stability: Stability?

    /// Rows in the window, and of those: without a value, with a value of the wrong type.
    public var rows: Int
    public var missing: Int
    public var invalid: Int
    /// Missing share in the window (`nil` when it is empty) and in the reference.
    public var missingRate: Double?
    public var referenceMissingRate: Double
    /// Numeric: values below the reference minimum or above its maximum.
    public var outOfRange: Int?
    /// Categorical: rows whose category the reference never saw, and the ten commonest such categories.
    public var unseen: Int?
    public var unseenCategories: [String: Int]?
    /// Why there is no verdict, when there is none.
    public var note: String?
    /// The p-value adjusted for the window's other tests (Benjamini–Hochberg), which `drifted` then compares.
    public var adjustedPValue: Double?
    /// This window's verdict of the test alone; `drifted` is it once it has held `DriftOptions.persistence`
    /// windows in a row (`consecutive`). `nil`: the same as `drifted`.
    public var signal: Bool?
    public var consecutive: Int?

    enum CodingKeys: String, CodingKey {
        case feature, kind, test, statistic, pValue = "p_value", threshold, drifted, psi, stability, rows, missing,
             invalid, missingRate = "missing_rate", referenceMissingRate = "reference_missing_rate",
             outOfRange = "out_of_range", unseen, unseenCategories = "unseen_categories", note,
             adjustedPValue = "p_value_adjusted", signal, consecutive
    }

    /// This window's verdict, before persistence.
    public var windowVerdict: Bool { signal ?? drifted }

    /// Drifting only once the test has drifted `options.persistence` windows in a row; `previous[feature]` is
    /// the run before this window.
    public mutating func applyPersistence(previous: [String: Int], options: DriftOptions) {
        let signal = windowVerdict
        let run = signal ? (previous[feature] ?? 0) + 1 : 0
        self.signal = signal
        consecutive = run
        drifted = signal && run >= options.persistence
    }

    /// Target drift: the labels of a window against the labels of the reference window, by the test a
    /// feature of their kind gets (numbers for a regression, classes for a classifier). `nil` with fewer than
    /// `minimumLabels` labels in the window, or none in the reference.
    public static func target(reference: FeatureTable.Values, current: FeatureTable.Values, minimumLabels: Int = 1,
                              options: DriftOptions = DriftOptions()) -> FeatureDrift?
    {
        switch (reference, current) {
        case (.numeric(let reference), .numeric(let current)):
            let profile = FeatureProfile.numeric(reference)
            guard profile.count > 0, let binning = NumericBinning(profile) else { return nil }
            var window = WindowColumn(binning: binning)
            for value in current where !value.isNaN { window.add(value, binning: binning) }
            guard window.count >= max(1, minimumLabels) else { return nil }
            return profile.drift(against: window, feature: "target", referenceRows: profile.count, options: options)
        case (.categorical(let reference), .categorical(let current)):
            let profile = FeatureProfile.categorical(reference.filter { $0 != nil })
            var window = WindowColumn()
            for value in current { if let value { window.add(category: value) } }
            guard profile.count > 0, window.count >= max(1, minimumLabels) else { return nil }
            return profile.drift(against: window, feature: "target", referenceRows: profile.count, options: options)
        default:
            return nil
        }
    }

    /// Whether the column had values on both sides, so that it counts towards dataset drift.
    public var isTested: Bool { statistic != nil }
}

extension FeatureDrift {
    /// Reads what `encode(to:)` writes, and also a `drifted` that is `null`: a column `cyclone drift` could not
    /// test has no verdict in its JSON (`FileDrift`), and reads back as not drifted and not tested.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            feature: try c.decode(String.self, forKey: .feature), kind: try c.decode(Feature.Kind.self, forKey: .kind),
            test: try c.decode(Test.self, forKey: .test), statistic: try c.decodeIfPresent(Double.self, forKey: .statistic),
            pValue: try c.decodeIfPresent(Double.self, forKey: .pValue), threshold: try c.decode(Double.self, forKey: .threshold),
            drifted: try c.decodeIfPresent(Bool.self, forKey: .drifted) ?? false,
            psi: try c.decodeIfPresent(Double.self, forKey: .psi), stability: try c.decodeIfPresent(Stability.self, forKey: .stability),
            rows: try c.decode(Int.self, forKey: .rows), missing: try c.decode(Int.self, forKey: .missing),
            invalid: try c.decode(Int.self, forKey: .invalid), missingRate: try c.decodeIfPresent(Double.self, forKey: .missingRate),
            referenceMissingRate: try c.decode(Double.self, forKey: .referenceMissingRate),
            outOfRange: try c.decodeIfPresent(Int.self, forKey: .outOfRange), unseen: try c.decodeIfPresent(Int.self, forKey: .unseen),
            unseenCategories: try c.decodeIfPresent([String: Int].self, forKey: .unseenCategories),
            note: try c.decodeIfPresent(String.self, forKey: .note),
            adjustedPValue: try c.decodeIfPresent(Double.self, forKey: .adjustedPValue),
            signal: try c.decodeIfPresent(Bool.self, forKey: .signal), consecutive: try c.decodeIfPresent(Int.self, forKey: .consecutive))
    }
}

extension FeatureProfile {
    /// The least standard deviation a distance is divided by (`max(std, 0.001)`, as Evidently).
    public static let smallestScale = 0.001

    /// Compares the window's column with this reference column.
    /// - Parameters:
    ///   - referenceRows: rows in the whole reference (`ReferenceProfile.rows`). The test is chosen, as
    ///     Evidently chooses it, by the column's values in the reference (its rows less those missing).
    ///   - seasonal: a window of the same column one season earlier (counted on this profile's bins), which
    ///     then stands in for the profile as the reference: its values, categories and missing share. The
    ///     profile still gives the bins, the range and the scale of a distance.
    public func drift(against window: WindowColumn, feature: String, referenceRows: Int,
                      options: DriftOptions = DriftOptions(), seasonal: WindowColumn? = nil) -> FeatureDrift
    {
        let referenceCount = seasonal?.count ?? Swift.min(referenceRows, count)
        let small = referenceCount <= options.smallReference
        var result = FeatureDrift(
            feature: feature, kind: kind, test: .kolmogorovSmirnov, statistic: nil, pValue: nil,
            threshold: options.pValue, drifted: false, psi: nil, stability: nil, rows: window.rows,
            missing: window.missing, invalid: window.invalid,
            missingRate: window.rows == 0 ? nil : Double(window.missing) / Double(window.rows),
            referenceMissingRate: missingRate)
        switch kind {
        case .numeric: numericDrift(window, small: small, options: options, seasonal: seasonal, into: &result)
        case .categorical, .boolean:
            categoricalDrift(window, small: small, options: options, seasonal: seasonal, into: &result)
        }
        if result.statistic == nil, result.note == nil {
            result.note = window.count == 0 ? "no values in the window" : "no values in the reference"
        }
        return result
    }

    private func numericDrift(_ window: WindowColumn, small: Bool, options: DriftOptions, seasonal: WindowColumn?,
                              into result: inout FeatureDrift)
    {
        result.test = small ? .kolmogorovSmirnov : .wasserstein
        result.threshold = small ? options.pValue : options.wasserstein
        guard let binning = NumericBinning(self) else { return }
        guard window.binCounts.count == binning.binCount else {
            result.note = "the window was counted on \(window.binCounts.count) bins, not the reference's \(binning.binCount)"
            return
        }
        result.outOfRange = window.binCounts[0] + window.binCounts[binning.binCount - 1]
        if let seasonal, seasonal.binCounts.count != binning.binCount { return }
        let n1 = seasonal?.count ?? count, n2 = window.count
        guard n1 > 0, n2 > 0 else { return }
        let reference = seasonal?.binCounts ?? binning.referenceCounts
        let current = window.binCounts

        if small {
            // The CDFs at every bin boundary; both are exact there.
            var r = 0, c = 0
            var largest = 0.0
            for k in 0..<binning.binCount {
                r += reference[k]
                c += current[k]
                largest = Swift.max(largest, abs(Double(r) / Double(n1) - Double(c) / Double(n2)))
            }
            let p = kolmogorovSmirnovPValue(statistic: largest, n1: n1, n2: n2)
            result.statistic = largest
            result.pValue = p
            result.drifted = p < options.pValue
        } else {
            var referenceMasses: [(Double, Double)] = []
            if let seasonal {
                for k in 0..<binning.binCount where reference[k] > 0 {
                    referenceMasses.append((seasonal.binSums[k] / Double(reference[k]), Double(reference[k])))
                }
            } else if let values {
                referenceMasses = values.map { ($0, 1) }
            } else if let edges {
                for k in 1...(edges.count - 1) where reference[k] > 0 {
                    referenceMasses.append(((edges[k - 1] + edges[k]) / 2, Double(reference[k])))
                }
            }
            var currentMasses: [(Double, Double)] = []
            for k in 0..<binning.binCount where current[k] > 0 {
                currentMasses.append((window.binSums[k] / Double(current[k]), Double(current[k])))
            }
            let distance = weightedWassersteinDistance(referenceMasses, currentMasses)
            // Evidently's floor on the scale: a constant reference drifts at a tenth of a thousandth.
            let scale = Swift.max(std ?? 0, Self.smallestScale)
            if (std ?? 0) < Self.smallestScale { result.note = "the reference hardly varies; the distance is over 0.001, as Evidently takes it" }
            result.statistic = distance / scale
            result.drifted = distance / scale >= options.wasserstein
        }

        // PSI over the reference deciles: profile bins 10k…10k+9 form decile k; the outer bins stay open.
        var referenceDeciles = [Int](repeating: 0, count: 10)
        var currentDeciles = [Int](repeating: 0, count: 10)
        let inner = binning.binCount - 2
        for k in 0..<binning.binCount {
            let decile = Swift.min(Swift.max(k - 1, 0), inner - 1) * 10 / inner
            referenceDeciles[decile] += reference[k]
            currentDeciles[decile] += current[k]
        }
        let psi = populationStabilityIndex(referenceShares: psiShares(referenceDeciles),
                                           currentShares: psiShares(currentDeciles))
        result.psi = psi
        result.stability = .init(psi: psi)
    }

    private func categoricalDrift(_ window: WindowColumn, small: Bool, options: DriftOptions, seasonal: WindowColumn?,
                                  into result: inout FeatureDrift)
    {
        // Unseen categories (data quality) are those the training profile never saw; the test compares with
        // the reference, the profile's categories or, with a seasonal reference, those of the earlier window.
        let trained = categories ?? [:]
        let unseen = window.categories.filter { trained[$0.key] == nil }
        result.unseen = unseen.values.reduce(0, +) + window.unnamedUnseen
        if !unseen.isEmpty {
            let commonest = unseen.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(10)
            result.unseenCategories = Dictionary(uniqueKeysWithValues: commonest.map { ($0.key, $0.value) })
        }
        let referenceCategories = seasonal?.categories ?? trained
        let referenceCount = seasonal.map { $0.count } ?? count
        let names = referenceCategories.keys.sorted()
        // Evidently counts the categories of both sides: a new one makes a two-valued column a many-valued one.
        let seen = Set(names).union(window.categories.keys).count + (window.unnamedUnseen > 0 ? 1 : 0)
        let twoValued = kind == .boolean || seen <= 2
        // Against a window a season earlier both sides are samples: two-valued columns keep the (two-sample)
        // Z-test, the others take the two-sample chi-squared test of independence, whatever their size.
        result.test = seasonal != nil && !twoValued ? .chiSquared : small ? (twoValued ? .zTest : .chiSquared) : .jensenShannon
        result.threshold = result.test == .jensenShannon ? options.jensenShannon : options.pValue
        guard referenceCount > 0, window.count > 0 else { return }
        if let seasonal, !twoValued {
            let all = Set(referenceCategories.keys).union(window.categories.keys).sorted()
            let then = all.map { seasonal.categories[$0] ?? 0 } + [seasonal.unnamedUnseen]
            let now = all.map { window.categories[$0] ?? 0 } + [window.unnamedUnseen]
            let test = chiSquaredContingency(then, now) ?? (0, 1)
            result.statistic = test.statistic
            result.pValue = test.pValue
            result.drifted = test.pValue < options.pValue
            let psi = populationStabilityIndex(referenceShares: psiShares(then), currentShares: psiShares(now))
            result.psi = psi
            result.stability = .init(psi: psi)
            return
        }
        // The reference's categories, then one bin for everything it did not have.
        let newToReference = window.categories.filter { referenceCategories[$0.key] == nil }.values.reduce(0, +)
            + window.unnamedUnseen
        let reference = names.map { referenceCategories[$0]! } + [0]
        let current = names.map { window.categories[$0] ?? 0 } + [newToReference]

        if small, twoValued {
            // The share of the first category (for booleans, of `true`), new categories counting against it.
            let first = kind == .boolean ? "true" : names.first ?? ""
            let test = twoProportionZTest(
                referenceSuccesses: referenceCategories[first] ?? 0, referenceCount: referenceCount,
                currentSuccesses: window.categories[first] ?? 0, currentCount: window.count)!
            result.statistic = test.statistic
            result.pValue = test.pValue
            result.drifted = test.pValue < options.pValue
        } else if small {
            // A new category is expected at the PSI floor's share: seeing it at all counts heavily.
            var weights = reference.map(Double.init)
            weights[weights.count - 1] = Double(referenceCount) * psiFloor
            let used = newToReference > 0 ? weights.count : weights.count - 1
            if let test = chiSquaredTest(referenceWeights: Array(weights.prefix(used)),
                                         currentCounts: Array(current.prefix(used)))
            {
                result.statistic = test.statistic
                result.pValue = test.pValue
                result.drifted = test.pValue < options.pValue
            } else {
                // A single category on both sides: nothing to test, and nothing changed.
                result.statistic = 0
                result.pValue = 1
            }
        } else {
            let distance = jensenShannonDistance(reference.map(Double.init), current.map(Double.init))
            result.statistic = distance
            result.drifted = distance >= options.jensenShannon
        }
        let psi = populationStabilityIndex(referenceShares: psiShares(reference), currentShares: psiShares(current))
        result.psi = psi
        result.stability = .init(psi: psi)
    }
}

/// The first Wasserstein distance between two distributions of weighted point masses (weights need not sum
/// to 1; each side is normalised): the area between their CDFs.
public func weightedWassersteinDistance(_ a: [(Double, Double)], _ b: [(Double, Double)]) -> Double {
    let totalA = a.reduce(0) { $0 + $1.1 }, totalB = b.reduce(0) { $0 + $1.1 }
    guard totalA > 0, totalB > 0 else { return 0 }
    // Signed masses on one sorted line: F_a − F_b changes by +w/totalA at a's points, −w/totalB at b's.
    let steps = (a.map { ($0.0, $0.1 / totalA) } + b.map { ($0.0, -$0.1 / totalB) }).sorted { $0.0 < $1.0 }
    var distance = 0.0
    var difference = 0.0
    for k in 0..<(steps.count - 1) {
        difference += steps[k].1
        distance += abs(difference) * (steps[k + 1].0 - steps[k].0)
    }
    return distance
}

/// Drift of every feature and of the prediction, and whether the dataset as a whole drifted.
public struct DriftReport: Sendable, Equatable, Codable {
    public var features: [FeatureDrift]
    public var prediction: FeatureDrift?
    /// Features with values on both sides, and how many of them drifted.
    public var tested: Int
    public var drifted: Int
    /// `drifted / tested`, `nil` when no feature could be tested.
    public var driftedShare: Double?
    public var datasetDrift: Bool
    /// What the window was compared with when not the training profile: `the same window 7d earlier (N rows)`.
    public var reference: String?

    public init(features: [FeatureDrift], prediction: FeatureDrift?, tested: Int, drifted: Int, driftedShare: Double?,
                datasetDrift: Bool)
    {
        self.features = features
        self.prediction = prediction
        self.tested = tested
        self.drifted = drifted
        self.driftedShare = driftedShare
        self.datasetDrift = datasetDrift
    }

    enum CodingKeys: String, CodingKey {
        case features, prediction, tested, drifted, driftedShare = "drifted_share", datasetDrift = "dataset_drift",
             reference
    }
}

extension ReferenceProfile {
    /// Compares every feature of the window with this reference, in `order` (features the profile lacks are
    /// left out), and the window's predictions with the reference predictions.
    /// - Parameter seasonal: the same columns one season earlier, to compare with instead of the profile
    ///   (`FeatureProfile.drift(against:feature:referenceRows:options:seasonal:)`).
    public func drift(against columns: [String: WindowColumn], prediction: WindowColumn?, order: [String],
                      options: DriftOptions = DriftOptions(),
                      seasonal: (features: [String: WindowColumn], prediction: WindowColumn?)? = nil) -> DriftReport
    {
        let features = order.compactMap { name -> FeatureDrift? in
            guard let profile = self.features[name] else { return nil }
            let empty = WindowColumn(binning: NumericBinning(profile))
            return profile.drift(against: columns[name] ?? empty, feature: name, referenceRows: rows, options: options,
                                 seasonal: seasonal.map { $0.features[name] ?? empty })
        }
        var predictionDrift: FeatureDrift?
        if let reference = self.prediction, let prediction {
            predictionDrift = reference.drift(against: prediction, feature: "prediction", referenceRows: rows,
                                              options: options,
                                              seasonal: seasonal.map { $0.prediction ?? WindowColumn(binning: NumericBinning(reference)) })
        }
        var report = DriftReport(features: features, prediction: predictionDrift, tested: 0, drifted: 0,
                                 driftedShare: nil, datasetDrift: false)
        report.correct(options: options)
        return report
    }
}

extension DriftReport {
    /// Applies `options.correction` to the features' p-values (those tested for significance; distances
    /// have none), then counts the verdicts again. The prediction is judged alone.
    public mutating func correct(options: DriftOptions) {
        if options.correction == .benjaminiHochberg {
            let tested = features.indices.filter { features[$0].pValue != nil }
            let adjusted = benjaminiHochberg(tested.map { features[$0].pValue! })
            for (k, index) in tested.enumerated() {
                features[index].adjustedPValue = adjusted[k]
                features[index].drifted = adjusted[k] < options.pValue
            }
        }
        recount(options: options)
    }

    /// Reports a column as drifting only once its test has drifted `options.persistence` windows in a row:
    /// `previous` holds, per column (`prediction` for the prediction), how many windows in a row before this
    /// one its test drifted.
    public mutating func applyPersistence(previous: [String: Int], options: DriftOptions) {
        for index in features.indices { features[index].applyPersistence(previous: previous, options: options) }
        prediction?.applyPersistence(previous: previous, options: options)
        recount(options: options)
    }

    /// Counts the tested and drifted features and the dataset verdict from the features' verdicts.
    public mutating func recount(options: DriftOptions) {
        let tested = features.filter(\.isTested)
        self.tested = tested.count
        drifted = tested.filter(\.drifted).count
        driftedShare = tested.isEmpty ? nil : Double(drifted) / Double(tested.count)
        datasetDrift = driftedShare.map { $0 >= options.datasetShare } ?? false
    }
}

/// Benjamini and Hochberg's adjusted p-values (as `scipy.stats.false_discovery_control(ps, method="bh")`), in
/// the input's order: the p-value of rank k of m times m/k, made monotone from the largest down, at most 1.
public func benjaminiHochberg(_ pValues: [Double]) -> [Double] {
    let m = pValues.count
    guard m > 0 else { return [] }
    let order = pValues.indices.sorted { pValues[$0] < pValues[$1] }
    var adjusted = [Double](repeating: 1, count: m)
    var smallest = 1.0
    for rank in stride(from: m, through: 1, by: -1) {
        let index = order[rank - 1]
        smallest = min(smallest, pValues[index] * Double(m) / Double(rank))
        adjusted[index] = smallest
    }
    return adjusted
}
