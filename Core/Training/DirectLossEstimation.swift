import CycloneModel
import CycloneMonitoring
import Foundation

/// Direct loss estimation (DLE) for a regressor, as NannyML 0.13 computes it: on reference rows with labels,
/// a gradient-boosted model learns each row's loss (the absolute error for MAE, the squared error for MSE and
/// RMSE) from the model's features and its prediction; on a window without labels the loss models predict
/// every row's loss, and the window's MAE is their mean (RMSE the root of the mean), with a band of ± 3
/// sampling errors and the reference's alert thresholds (mean ± 3 standard deviations of the realised
/// metric over reference chunks; never below 0).
///
/// Given the same per-row loss predictions it equals nannyml's estimates, sampling errors, bands and
/// thresholds (`DirectLossEstimationTests`, on the fixture `scripts/fixtures/nannyml/dle_fixture.py`
/// writes). The loss models are Cyclone's own gradient boosting with LightGBM's default settings (100 trees,
/// learning rate 0.1, 31 leaves, no depth limit, 20 rows a leaf, no L2 penalty), not LightGBM itself, so
/// its estimates are within a stated tolerance of nannyml's, not equal: the trees bin and split as LightGBM
/// does but differ in its details (categorical splits, bin boundaries from a sample, feature bundling).
public struct DirectLossEstimation: Sendable {
    public enum Metric: String, CaseIterable, Sendable, Codable {
        case mae, mse, rmse

        /// Whether the loss model learns the squared error (else the absolute error).
        var squared: Bool { self != .mae }
    }

    /// A metric estimated on one window: `value` ± 3 sampling errors, at least 0 and without upper limit.
    public typealias Estimate = ConfidenceBasedEstimation.Estimate

    /// Why an estimation cannot be fitted.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public let metrics: [Metric]
    /// Per metric: the reference's alert thresholds.
    public let thresholds: [Metric: (lower: Double, upper: Double)]
    /// The per-row loss model of the absolute error and of the squared error (when a metric needs it).
    let absoluteLoss: ModelArtifact?, squaredLoss: ModelArtifact?
    /// The reference's per-row losses: their population standard deviation and mean, per metric.
    let components: [Metric: (deviation: Double, mean: Double)]
    /// The feature columns the loss models read, then the prediction's.
    let features: [String]
    static let predictionColumn = "__prediction"

    /// Fits on the labelled reference: `table` holds the model's features, `predictions` and `labels` one
    /// value per row; rows without a label or prediction are left out of the loss models. Thresholds come
    /// from chunks of `chunkSize` rows.
    public init(reference table: FeatureTable, predictions: [Double], labels: [Double], chunkSize: Int,
                metrics: [Metric] = [.mae, .rmse]) throws(Failure)
    {
        guard predictions.count == table.rowCount, labels.count == table.rowCount else {
            throw Failure(description: "\(table.rowCount) rows, \(predictions.count) predictions and \(labels.count) labels")
        }
        guard chunkSize > 0 else { throw Failure(description: "the chunk size must be at least 1") }
        let known = (0..<table.rowCount).filter { predictions[$0].isFinite && labels[$0].isFinite }
        guard known.count >= 2 * BoostingOptions.lightGBMDefaults.minDataInLeaf else {
            throw Failure(description: "\(known.count) reference rows with a label and a prediction; direct loss estimation needs at least \(2 * BoostingOptions.lightGBMDefaults.minDataInLeaf)")
        }
        self.metrics = metrics
        features = table.columns.map(\.name)
        let errors = known.map { labels[$0] - predictions[$0] }
        let absolute = errors.map { abs($0) }, squared = errors.map { $0 * $0 }
        var components: [Metric: (Double, Double)] = [:]
        for metric in metrics {
            let losses = metric.squared ? squared : absolute
            components[metric] = (ConfidenceBasedEstimation.populationStandardDeviation(losses),
                                  losses.reduce(0, +) / Double(losses.count))
        }
        self.components = components
        // Thresholds from every chunk of the reference, its realised metric over the rows it has labels for.
        var thresholds: [Metric: (Double, Double)] = [:]
        for metric in metrics {
            let realised = ConfidenceBasedEstimation.chunks(table.rowCount, size: chunkSize).map { range in
                Self.realised(metric, predictions: Array(predictions[range]), labels: Array(labels[range]))
            }
            let present = realised.filter { !$0.isNaN }
            let mean = present.reduce(0, +) / Double(max(1, present.count))
            let deviation = ConfidenceBasedEstimation.populationStandardDeviation(present)
            thresholds[metric] = present.isEmpty ? (0, .infinity) : (max(0, mean - 3 * deviation), mean + 3 * deviation)
        }
        self.thresholds = thresholds
        // The loss models: the features and the prediction, on the rows with a label.
        let input = Self.input(table, predictions: predictions, rows: known)
        func lossModel(_ losses: [Double]) throws(Failure) -> ModelArtifact {
            var options = TrainingOptions(family: .gbdt)
            options.boosting = .lightGBMDefaults
            do {
                return try Trainer(options: options).train(
                    name: "loss", version: "1", features: input,
                    target: FeatureTable.Column(name: "__loss", values: .numeric(losses)))
            } catch {
                throw Failure(description: "the loss model could not be trained: \(error)")
            }
        }
        absoluteLoss = metrics.contains(.mae) ? try lossModel(absolute) : nil
        squaredLoss = metrics.contains { $0.squared } ? try lossModel(squared) : nil
    }

    /// Each metric estimated on one window: `table` with the reference's feature columns, and the model's
    /// `predictions`. Rows without a finite prediction are left out.
    public func estimate(_ table: FeatureTable, predictions: [Double]) -> [Metric: Estimate] {
        let rows = (0..<min(table.rowCount, predictions.count)).filter { predictions[$0].isFinite }
        let input = Self.input(table, predictions: predictions, rows: rows)
        func losses(_ model: ModelArtifact?) -> [Double] {
            guard let model, !rows.isEmpty else { return [] }
            return model.outputs(for: input).map { output in
                if case .value(let loss) = output { return loss }
                return .nan
            }
        }
        let absolute = losses(absoluteLoss), squared = losses(squaredLoss)
        return Dictionary(uniqueKeysWithValues: metrics.map { metric in
            (metric, estimate(metric, predictedLosses: metric.squared ? squared : absolute))
        })
    }

    /// A metric's estimate from each row's predicted loss (negative ones count as 0), as nannyml aggregates
    /// its loss model's predictions.
    public func estimate(_ metric: Metric, predictedLosses: [Double]) -> Estimate {
        let thresholds = thresholds[metric] ?? (0, .infinity)
        let n = Double(predictedLosses.count)
        guard n > 0, let (deviation, mean) = components[metric] else {
            return Estimate(value: .nan, samplingError: .nan, thresholds: thresholds, upperLimit: .infinity)
        }
        let average = predictedLosses.reduce(0) { $0 + max(0, $1) } / n
        switch metric {
        case .mae, .mse:
            return Estimate(value: average, samplingError: deviation / n.squareRoot(), thresholds: thresholds,
                            upperLimit: .infinity)
        case .rmse:
            return Estimate(value: average.squareRoot(),
                            samplingError: (deviation * deviation / (4 * n * mean)).squareRoot(), thresholds: thresholds,
                            upperLimit: .infinity)
        }
    }

    /// The metric on labelled rows (those with a finite prediction and label), NaN when there are none.
    public static func realised(_ metric: Metric, predictions: [Double], labels: [Double]) -> Double {
        let errors = zip(predictions, labels).filter { $0.0.isFinite && $0.1.isFinite }.map { $0.1 - $0.0 }
        guard !errors.isEmpty else { return .nan }
        let n = Double(errors.count)
        switch metric {
        case .mae: return errors.reduce(0) { $0 + abs($1) } / n
        case .mse: return errors.reduce(0) { $0 + $1 * $1 } / n
        case .rmse: return (errors.reduce(0) { $0 + $1 * $1 } / n).squareRoot()
        }
    }

    /// The loss models' input: the chosen rows of the feature columns, and the prediction as one more.
    static func input(_ table: FeatureTable, predictions: [Double], rows: [Int]) -> FeatureTable {
        var input = table.selecting(rows: rows)
        input.columns.append(.init(name: predictionColumn, values: .numeric(rows.map { predictions[$0] })))
        return input
    }
}

extension BoostingOptions {
    /// LightGBM's `LGBMRegressor()` defaults, which nannyml's loss models use: 100 trees, learning rate 0.1,
    /// 31 leaves, no depth limit, 20 rows a leaf, no L2 penalty, every row, every round (no early stopping).
    public static var lightGBMDefaults: BoostingOptions {
        var options = BoostingOptions()
        options.trees = 100
        options.learningRate = 0.1
        options.maxLeaves = 31
        options.maxDepth = 0
        options.minDataInLeaf = 20
        options.lambda = 0
        options.subsample = 1
        options.validation = 0
        return options
    }
}
