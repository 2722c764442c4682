import CycloneModel

/// One column (a feature, or the prediction) of the current window, counted so it can be set against the
/// reference profile: the evaluator fills it from the summed drift rollups (`DriftLayout.columns`), tests and
/// small callers with `add`.
///
/// Numeric values are counted per bin of the reference's `NumericBinning` with their sum per bin (the sums
/// place each bin's mass for the Wasserstein distance). Categories are counted by name. Nothing is dropped:
/// a row is either a value, missing (absent or `null`), or invalid (a value of the wrong type).
public struct WindowColumn: Sendable, Equatable {
    /// Rows with a usable value.
    public var count = 0
    /// Rows where the column is absent or `null`.
    public var missing = 0
    /// Rows whose value has the wrong type for the column.
    public var invalid = 0
    /// Numeric: rows and the sum of their values per bin of `NumericBinning`.
    public var binCounts: [Int]
    public var binSums: [Double]
    /// Categorical and boolean: rows per category.
    public var categories: [String: Int] = [:]
    /// Categorical: rows of categories the reference never saw whose names were not kept (`DriftTally` keeps
    /// the commonest names only); they count towards `count` and drift like the named ones.
    public var unnamedUnseen = 0

    /// An empty column; numeric ones pass their binning.
    public init(binning: NumericBinning? = nil) {
        binCounts = [Int](repeating: 0, count: binning?.binCount ?? 0)
        binSums = [Double](repeating: 0, count: binning?.binCount ?? 0)
    }

    /// Counts one numeric value; NaN counts as missing.
    public mutating func add(_ value: Double, binning: NumericBinning) {
        guard !value.isNaN else { missing += 1; return }
        let bin = binning.bin(of: value)
        binCounts[bin] += 1
        binSums[bin] += value
        count += 1
    }

    /// Counts numbers in ascending order (as `sortedNumbers` gives them), walking the thresholds beside them
    /// rather than searching for each one's bin: the counts `add` would make (NaN counts as missing), with
    /// each bin's sum taken in ascending order.
    public mutating func add(sorted values: [Double], binning: NumericBinning) {
        let thresholds = binning.thresholds
        var bin = 0
        for value in values {
            guard !value.isNaN else { missing += 1; continue }
            while bin < thresholds.count, thresholds[bin] <= value { bin += 1 }
            binCounts[bin] += 1
            binSums[bin] += value
            count += 1
        }
    }

    /// Counts one category; `nil` counts as missing.
    public mutating func add(category: String?) {
        guard let category else { missing += 1; return }
        categories[category, default: 0] += 1
        count += 1
    }

    /// All rows of the window, whatever they held.
    public var rows: Int { count + missing + invalid }
}

/// The bins a numeric column of the window is counted in: the reference profile's quantile bins, plus a bin
/// of its own on each side for values outside the reference range.
///
/// `thresholds` are the reference minimum, the 99 inner quantile edges and the value just above the maximum;
/// a value's bin is PostgreSQL's `width_bucket(x, thresholds)` (a test holds the two together). Bin 0 then
/// holds values below the reference range, bins 1…100 are the profile's bins (the same rule as `binIndex`),
/// bin 101 holds values above the range.
public struct NumericBinning: Sendable, Equatable {
    public let thresholds: [Double]
    /// The reference's rows per bin (the outer two are 0 by construction).
    public let referenceCounts: [Int]

    /// `nil` when the profile has no numeric values to bin.
    public init?(_ profile: FeatureProfile) {
        guard let edges = profile.edges, let counts = profile.counts, let min = profile.min, let max = profile.max,
              edges.count == counts.count + 1, counts.count >= 1
        else { return nil }
        thresholds = [min] + edges[1..<(edges.count - 1)] + [max.nextUp]
        referenceCounts = [0] + counts + [0]
    }

    public var binCount: Int { thresholds.count + 1 }

    public func bin(of value: Double) -> Int { binIndex(thresholds, value) }
}
