import CycloneModel
import CycloneMonitoring
import Foundation

extension ModelArtifact {
    /// The model's output for every row of `table` (its features, typed as in training), through the same
    /// preprocessing and predictor that serve it.
    public func outputs(for table: FeatureTable) -> [Output] {
        let x = FittedPreprocessing(features: features, preprocessing: preprocessing).designMatrix(table)
        let p = preprocessing.width
        return x.withUnsafeBufferPointer { x in
            (0..<table.rowCount).map { i in predictor.predict(UnsafeBufferPointer(rebasing: x[(i * p)..<((i + 1) * p)])) }
        }
    }

    /// The model's metrics (`PerformanceMetric` names) for `outputs` against `labels`: numbers for a
    /// regression, class names for a classifier. Rows without a usable label or output are left out.
    public func metrics(outputs: [Output?], labels: FeatureTable.Values) -> [String: Double] {
        switch (task, labels) {
        case (.regression, .numeric(let y)):
            var truth: [Double] = [], predictions: [Double] = []
            for (label, output) in zip(y, outputs) {
                guard !label.isNaN, case .value(let value)? = output else { continue }
                truth.append(label)
                predictions.append(value)
            }
            return RegressionMetrics(labels: truth, predictions: predictions).values
        case (.binary, .categorical(let y)), (.multiclass, .categorical(let y)):
            let classes = self.classes ?? []
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            var positives: [Bool] = [], scores: [Double] = []
            var sums = MulticlassMetrics.Sums(classCount: classes.count)
            for (label, output) in zip(y, outputs) {
                guard let label, let k = index[label], case .classification(_, let probabilities)? = output,
                      probabilities.count == classes.count
                else { continue }
                positives.append(k == 1)
                scores.append(probabilities.count == 2 ? probabilities[1] : 0)
                sums.add(label: k, probabilities: probabilities)
            }
            return task == .binary ? BinaryMetrics(positives: positives, scores: scores).values
                                   : MulticlassMetrics(sums: sums).values
        default:
            return [:]
        }
    }

    /// The per-row loss of each row with a usable label and output, in order, as the loss trigger reads it
    /// from the store: the absolute error of a regression, the log loss of a classifier (the label's
    /// probability clipped to [ε, 1 − ε], as for the metrics).
    public func losses(outputs: [Output?], labels: FeatureTable.Values) -> [Double] {
        switch (task, labels) {
        case (.regression, .numeric(let y)):
            return zip(y, outputs).compactMap { label, output in
                guard !label.isNaN, case .value(let value)? = output else { return nil }
                return abs(value - label)
            }
        case (.binary, .categorical(let y)), (.multiclass, .categorical(let y)):
            let index = Dictionary(uniqueKeysWithValues: (classes ?? []).enumerated().map { ($1, $0) })
            return zip(y, outputs).compactMap { label, output in
                guard let label, let k = index[label], case .classification(_, let probabilities)? = output,
                      probabilities.count == index.count
                else { return nil }
                return -log(min(max(probabilities[k], logLossEpsilon), 1 - logLossEpsilon))
            }
        default:
            return []
        }
    }
}
