import CycloneModel
import Foundation

/// Two CSV files compared as the evaluator compares a window with its reference (`cyclone drift`): the same
/// per-column tests with the same choice of test and threshold, the same PSI and the same data-quality
/// verdicts. The reference file is profiled as training data is; the current file is read with the
/// reference's column types, a cell of another type counting as invalid.
///
/// With both samples at hand, numeric statistics come from the raw values (SciPy's exact KS test and
/// Wasserstein distance) rather than from the reference's quantile bins, which the stored windows need.
public struct FileDrift: Sendable, Equatable, Codable {
    public var referenceRows: Int
    public var currentRows: Int
    public var drift: DriftReport
    public var dataQuality: DataQualityReport
    /// The multivariate check (PCA reconstruction error, `ReconstructionDrift`) over the compared columns,
    /// the current file as one window; `nil` with fewer than two columns with values.
    public var multivariate: ReconstructionDrift?

    /// Why the files cannot be compared.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    enum CodingKeys: String, CodingKey {
        case referenceRows = "reference_rows", currentRows = "current_rows", columns, tested, drifted,
             driftedShare = "drifted_share", datasetDrift = "dataset_drift", dataQuality = "data_quality",
             multivariate = "multivariate_drift"
    }

    public init(referenceRows: Int, currentRows: Int, drift: DriftReport, dataQuality: DataQualityReport,
                multivariate: ReconstructionDrift? = nil)
    {
        self.referenceRows = referenceRows
        self.currentRows = currentRows
        self.drift = drift
        self.dataQuality = dataQuality
        self.multivariate = multivariate
    }

    /// Compares `columns` of the two files (by default every column of the reference).
    /// - Parameter kinds: column types that override the inference from the reference.
    public init(reference: CSV, current: CSV, columns: [String]? = nil, kinds: [String: Feature.Kind] = [:],
                options: DriftOptions = DriftOptions(), quality: DataQualityOptions = DataQualityOptions())
        throws(Failure)
    {
        let names = columns ?? reference.header
        if let absent = names.first(where: { !current.header.contains($0) }) {
            throw Failure(description: "column '\(absent)' is in the reference but not in the current file (its columns: \(current.header.prefix(20).joined(separator: ", ")))")
        }
        // A job a column (typed, profiled, counted against the reference, tested), spread over the cores.
        let results = concurrentMap(names.count) { k in
            Result { () throws(Failure) in
                try Self.compare(column: names[k], reference: reference, current: current, kind: kinds[names[k]],
                                 options: options)
            }
        }
        var compared: [Compared] = []
        for result in results {
            switch result {
            case .success(let column): compared.append(column)
            case .failure(let failure): throw failure
            }
        }
        var drift = DriftReport(features: compared.map(\.drift), prediction: nil, tested: 0, drifted: 0, driftedShare: nil,
                                datasetDrift: false)
        drift.correct(options: options)
        self.init(referenceRows: reference.rowCount, currentRows: current.rowCount, drift: drift,
                  dataQuality: drift.dataQuality(refused: 0, rows: current.rowCount, options: quality),
                  multivariate: ReconstructionDrift(
                      reference: FeatureTable(columns: compared.map(\.reference)),
                      window: FeatureTable(columns: compared.map(\.current)),
                      categoryCounts: Dictionary(compared.compactMap { column in
                          column.categories.map { (column.reference.name, $0) }
                      }, uniquingKeysWith: { first, _ in first })))
        // No requests were refused: a file has no such thing.
        dataQuality.checks.removeAll { $0.check == .refused }
    }

    /// One column compared: the reference's typed, the current file's typed as the reference's (a cell of another
    /// type missing), and the test.
    private struct Compared: Sendable {
        var reference: FeatureTable.Column
        var current: FeatureTable.Column
        var drift: FeatureDrift
        /// The reference's category counts (categorical and boolean columns), from its profile.
        var categories: [String: Int]?
    }

    /// Types the reference's column (as `kind`, or inferred), profiles it, reads the current file's column
    /// with its type into a window and tests the two; numeric statistics from the raw values.
    private static func compare(column name: String, reference: CSV, current: CSV, kind: Feature.Kind?,
                                options: DriftOptions) throws(Failure) -> Compared
    {
        let column: FeatureTable.Column
        do {
            column = try FeatureTable(csv: reference, columns: [name], kinds: kind.map { [name: $0] } ?? [:]).columns[0]
        } catch {
            throw Failure(description: "the reference's \(error)")
        }
        // A numeric reference is sorted once, for its profile and for the test on the raw values.
        var sortedReference: [Double] = []
        let profile: FeatureProfile
        if case .numeric(let raw) = column.values {
            sortedReference = sortedNumbers(raw.filter { !$0.isNaN })
            profile = .numeric(sorted: sortedReference, missing: raw.count - sortedReference.count)
        } else {
            profile = ReferenceProfile(table: FeatureTable(columns: [column])).features[name]!
        }
        let cells = current.cells(name)!
        let kind = column.values.kind
        let binning = kind == .numeric ? NumericBinning(profile) : nil
        var window = WindowColumn(binning: binning)
        var values: [Double] = [], typed: [Double] = [], categories: [String?] = []
        if kind == .categorical { categories.reserveCapacity(cells.count) } else { typed.reserveCapacity(cells.count) }
        if kind == .numeric { values.reserveCapacity(cells.count) }
        func gap() { if kind == .categorical { categories.append(nil) } else { typed.append(.nan) } }
        cells.withBytes { _, cell in
            switch FeatureTable.read(cell, as: kind) {
            case .missing:
                window.missing += 1
                gap()
            case .invalid:
                window.invalid += 1
                gap()
            case .number(let x):
                values.append(x)
                typed.append(x)
            case .flag(let flag):
                window.add(category: flag ? "true" : "false")
                typed.append(flag ? 1 : 0)
            case .category(let text):
                window.add(category: text)
                categories.append(text)
            }
        }
        // The current numbers sorted once, for their bins and for the test on the raw values.
        let sortedCurrent = kind == .numeric ? sortedNumbers(values) : []
        if let binning { window.add(sorted: sortedCurrent, binning: binning) } else { window.count += values.count }
        let currentColumn = FeatureTable.Column(
            name: name, values: kind == .categorical ? .categorical(categories) : kind == .boolean ? .boolean(typed) : .numeric(typed))
        var drift = profile.drift(against: window, feature: name, referenceRows: reference.rowCount, options: options)
        if kind == .numeric, drift.isTested {
            switch drift.test {
            case .kolmogorovSmirnov:
                if let test = kolmogorovSmirnovTest(sortedReference: sortedReference, sortedCurrent: sortedCurrent) {
                    drift.statistic = test.statistic
                    drift.pValue = test.pValue
                    drift.drifted = test.pValue < options.pValue
                }
            case .wasserstein:
                let distance = wassersteinDistance(sortedReference: sortedReference, sortedCurrent: sortedCurrent)
                    / max(profile.std ?? 0, FeatureProfile.smallestScale)
                drift.statistic = distance
                drift.drifted = distance >= options.wasserstein
            default: break
            }
        }
        return Compared(reference: column, current: currentColumn, drift: drift, categories: profile.categories)
    }

    /// A column as the JSON has it: `FeatureDrift`'s keys, `drifted` `null` when the column was not tested
    /// (`FeatureDrift.init(from:)` reads that back).
    private struct Column: Encodable {
        var drift: FeatureDrift

        func encode(to encoder: any Encoder) throws {
            try drift.encode(to: encoder)
            guard !drift.isTested else { return }
            var container = encoder.container(keyedBy: FeatureDrift.CodingKeys.self)
            try container.encodeNil(forKey: .drifted)  // in place of the `false` just written
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        referenceRows = try container.decode(Int.self, forKey: .referenceRows)
        currentRows = try container.decode(Int.self, forKey: .currentRows)
        let features = try container.decode([FeatureDrift].self, forKey: .columns)
        drift = DriftReport(features: features, prediction: nil, tested: try container.decode(Int.self, forKey: .tested),
                            drifted: try container.decode(Int.self, forKey: .drifted),
                            driftedShare: try container.decodeIfPresent(Double.self, forKey: .driftedShare),
                            datasetDrift: try container.decode(Bool.self, forKey: .datasetDrift))
        dataQuality = try container.decode(DataQualityReport.self, forKey: .dataQuality)
        multivariate = try container.decodeIfPresent(ReconstructionDrift.self, forKey: .multivariate)
    }

    /// `{"reference_rows", "current_rows", "columns": [FeatureDrift…], "tested", "drifted", "drifted_share",
    /// "dataset_drift", "data_quality", "multivariate_drift"}` (`multivariate_drift` `null` when there is no check).
    /// A column that was not tested (no values on a side; `note` says which) has `drifted` `null`: no verdict.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(referenceRows, forKey: .referenceRows)
        try container.encode(currentRows, forKey: .currentRows)
        try container.encode(drift.features.map(Column.init), forKey: .columns)
        try container.encode(drift.tested, forKey: .tested)
        try container.encode(drift.drifted, forKey: .drifted)
        try container.encode(drift.driftedShare, forKey: .driftedShare)
        try container.encode(drift.datasetDrift, forKey: .datasetDrift)
        try container.encode(dataQuality, forKey: .dataQuality)
        try container.encode(multivariate, forKey: .multivariate)
    }
}
