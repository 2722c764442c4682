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
        let table: FeatureTable
        do { table = try FeatureTable(csv: reference, columns: names, kinds: kinds) } catch {
            throw Failure(description: "the reference's \(error)")
        }
        let profile = ReferenceProfile(table: table)
        var windows: [String: WindowColumn] = [:]
        var currentValues: [String: [Double]] = [:]
        // The current file typed as the reference (a cell of another type missing), for the multivariate check.
        var currentColumns: [FeatureTable.Column] = []
        for column in table.columns {
            let cells = current.column(column.name)!
            let kind = column.values.kind
            let binning = profile.features[column.name].flatMap { kind == .numeric ? NumericBinning($0) : nil }
            var window = WindowColumn(binning: binning)
            var values: [Double] = [], typed: [Double] = [], categories: [String?] = []
            if kind == .categorical { categories.reserveCapacity(cells.count) } else { typed.reserveCapacity(cells.count) }
            if kind == .numeric { values.reserveCapacity(cells.count) }
            func gap() { if kind == .categorical { categories.append(nil) } else { typed.append(.nan) } }
            for cell in cells {
                switch FeatureTable.read(cell, as: kind) {
                case .missing:
                    window.missing += 1
                    gap()
                case .invalid:
                    window.invalid += 1
                    gap()
                case .number(let x):
                    if let binning { window.add(x, binning: binning) } else { window.count += 1 }
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
            windows[column.name] = window
            if kind == .numeric { currentValues[column.name] = values }
            currentColumns.append(.init(name: column.name, values: kind == .categorical ? .categorical(categories)
                                        : kind == .boolean ? .boolean(typed) : .numeric(typed)))
        }
        var drift = profile.drift(against: windows, prediction: nil, order: names, options: options)
        for (k, feature) in drift.features.enumerated() where feature.kind == .numeric && feature.isTested {
            guard let column = table.columns.first(where: { $0.name == feature.feature }),
                  case .numeric(let raw) = column.values, let current = currentValues[feature.feature]
            else { continue }
            let reference = raw.filter { !$0.isNaN }
            var exact = feature
            switch feature.test {
            case .kolmogorovSmirnov:
                guard let test = kolmogorovSmirnovTest(reference: reference, current: current) else { continue }
                exact.statistic = test.statistic
                exact.pValue = test.pValue
                exact.drifted = test.pValue < options.pValue
            case .wasserstein:
                let std = profile.features[feature.feature]?.std ?? 0
                let distance = wassersteinDistance(reference: reference, current: current)
                    / max(std, FeatureProfile.smallestScale)
                exact.statistic = distance
                exact.drifted = distance >= options.wasserstein
            default: continue
            }
            drift.features[k] = exact
        }
        drift.correct(options: options)
        self.init(referenceRows: reference.rows.count, currentRows: current.rows.count, drift: drift,
                  dataQuality: drift.dataQuality(refused: 0, rows: current.rows.count, options: quality),
                  multivariate: ReconstructionDrift(reference: table, window: FeatureTable(columns: currentColumns)))
        // No requests were refused: a file has no such thing.
        dataQuality.checks.removeAll { $0.check == .refused }
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
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(referenceRows, forKey: .referenceRows)
        try container.encode(currentRows, forKey: .currentRows)
        try container.encode(drift.features, forKey: .columns)
        try container.encode(drift.tested, forKey: .tested)
        try container.encode(drift.drifted, forKey: .drifted)
        try container.encode(drift.driftedShare, forKey: .driftedShare)
        try container.encode(drift.datasetDrift, forKey: .datasetDrift)
        try container.encode(dataQuality, forKey: .dataQuality)
        try container.encode(multivariate, forKey: .multivariate)
    }
}
