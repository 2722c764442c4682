import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTraining
import Foundation

/// Fits and applies the estimations. A regressor's loss models are trained once per reference and kept
/// (an evaluate process judges the same versions cycle after cycle).
public actor PerformanceEstimator {
    /// A regressor's fitted estimation by version and reference (`nil`: it could not be fitted), the most
    /// recently used last; at most `kept` are kept.
    private var lossModels: [String: DirectLossEstimation?] = [:]
    private var used: [String] = []
    static let kept = 64

    public init() {}

    /// The estimate of `rows.window` against `rows.reference`, `nil` when the reference is not full
    /// (`referenceSize` labelled rows), the window is empty, or the reference cannot be fitted (a class it lacks).
    public func estimate(_ artifact: ModelArtifact, rows: EstimationRows, referenceSize: Int) -> PerformanceEstimate? {
        guard rows.referenceCount >= referenceSize, rows.window.count > 0 else { return nil }
        var estimate: PerformanceEstimate?
        switch artifact.task {
        case .binary, .multiclass: estimate = classification(artifact, rows)
        case .regression: estimate = regression(artifact, rows)
        }
        estimate?.windowStart = rows.windowStart
        estimate?.windowEnd = rows.windowEnd
        return estimate
    }

    private func classification(_ artifact: ModelArtifact, _ rows: EstimationRows) -> PerformanceEstimate? {
        let classes = artifact.classes ?? []
        let index = Dictionary(classes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        func side(_ rows: LabelledPredictions) -> [(probabilities: [Double], predicted: Int, label: Int?)] {
            guard case .categorical(let labels) = rows.target.values else { return [] }
            return zip(rows.served, labels).compactMap { served, label in
                guard case .classification(let predicted, let probabilities)? = served, probabilities.count == classes.count
                else { return nil }
                return (probabilities, predicted, label.flatMap { index[$0] })
            }
        }
        let reference = side(rows.reference).filter { $0.label != nil }, window = side(rows.window)
        guard !reference.isEmpty, !window.isEmpty else { return nil }
        let clip = { (p: Double) in min(max(p, 2.220446049250313e-16), 1 - 2.220446049250313e-16) }
        var metrics: [String: PerformanceEstimate.Metric] = [:]
        // The log loss each row is expected to have under the calibrated probabilities, on both sides: the
        // reference's realised loss would differ from its expected one by the calibration's own error.
        let expectedLosses: [Double], referenceLosses: [Double]
        if classes.count == 2 {
            typealias Row = ConfidenceBasedEstimation.Row
            let referenceRows = reference.map { Row(probability: $0.probabilities[1], predicted: $0.predicted, label: $0.label) }
            guard let estimation = ConfidenceBasedEstimation(reference: referenceRows, chunkSize: referenceRows.count)
            else { return nil }
            let windowRows = window.map { Row(probability: $0.probabilities[1], predicted: $0.predicted) }
            for (metric, estimate) in estimation.estimate(windowRows) {
                let realised = ConfidenceBasedEstimation.realised(
                    metric, labels: referenceRows.map { $0.label! }, predicted: referenceRows.map(\.predicted),
                    probabilities: referenceRows.map(\.probability))
                metrics[metric.rawValue] = .init(estimate, reference: realised)
            }
            func expected(_ rows: [Row]) -> [Double] {
                zip(rows, estimation.calibrated(rows.map(\.probability))).map { row, q in
                    -(q * log(clip(row.probability)) + (1 - q) * log(clip(1 - row.probability)))
                }
            }
            (expectedLosses, referenceLosses) = (expected(windowRows), expected(referenceRows))
        } else {
            typealias Row = MulticlassConfidenceBasedEstimation.Row
            let referenceRows = reference.map { Row(probabilities: $0.probabilities, predicted: $0.predicted, label: $0.label) }
            guard let estimation = MulticlassConfidenceBasedEstimation(reference: referenceRows, classCount: classes.count,
                                                                       chunkSize: referenceRows.count)
            else { return nil }
            let windowRows = window.map { Row(probabilities: $0.probabilities, predicted: $0.predicted) }
            for (metric, estimate) in estimation.estimate(windowRows) {
                let realised = MulticlassConfidenceBasedEstimation.realised(metric, referenceRows, classCount: classes.count)
                // Macro-averaged, as the policy's multiclass metric is named.
                metrics[metric == .f1 ? "macro_f1" : metric.rawValue] = .init(estimate, reference: realised)
            }
            func expected(_ rows: [Row]) -> [Double] {
                zip(rows, estimation.calibrated(rows)).map { row, q in
                    -zip(q, row.probabilities).reduce(0) { $0 + $1.0 * log(clip($1.1)) }
                }
            }
            (expectedLosses, referenceLosses) = (expected(windowRows), expected(referenceRows))
        }
        return PerformanceEstimate(method: "cbpe", rows: window.count, labelled: window.filter { $0.label != nil }.count,
                                   referenceRows: reference.count, metrics: metrics,
                                   loss: .init(estimated: expectedLosses, reference: referenceLosses))
    }

    private func regression(_ artifact: ModelArtifact, _ rows: EstimationRows) -> PerformanceEstimate? {
        func values(_ side: LabelledPredictions) -> (predictions: [Double], labels: [Double]) {
            let predictions = side.served.map { served -> Double in
                if case .value(let value)? = served { return value }
                return .nan
            }
            guard case .numeric(let labels) = side.target.values else { return (predictions, []) }
            return (predictions, labels)
        }
        let reference = values(rows.reference), window = values(rows.window)
        // One fit per version and reference: a reference is its first rows, named by their count and the time
        // of the last (it changes only when a turned-down challenger restarts it).
        let key = "\(artifact.name)\u{1f}\(artifact.version)\u{1f}\(reference.labels.count)\u{1f}"
            + "\(rows.referenceEnd?.timeIntervalSince1970.bitPattern ?? 0)"
        let fitted: DirectLossEstimation?
        if let known = lossModels[key] {
            fitted = known
            used.removeAll { $0 == key }
        } else {
            fitted = try? DirectLossEstimation(reference: rows.reference.features, predictions: reference.predictions,
                                               labels: reference.labels, chunkSize: reference.labels.count)
            lossModels[key] = .some(fitted)
            if used.count >= Self.kept { lossModels[used.removeFirst()] = nil }
        }
        used.append(key)
        guard let estimation = fitted else { return nil }
        var metrics: [String: PerformanceEstimate.Metric] = [:]
        for (metric, estimate) in estimation.estimate(rows.window.features, predictions: window.predictions) {
            let realised = DirectLossEstimation.realised(metric, predictions: reference.predictions, labels: reference.labels)
            metrics[metric.rawValue] = .init(value: estimate.value, samplingError: estimate.samplingError,
                                             lower: estimate.lower, upper: estimate.upper, reference: realised,
                                             alert: abs(estimate.value - realised) > 3 * estimate.samplingError)
        }
        let referenceLosses = zip(reference.predictions, reference.labels).filter { $0.0.isFinite && $0.1.isFinite }
            .map { abs($0.1 - $0.0) }
        let labelled = window.labels.filter(\.isFinite).count
        guard let mae = metrics["mae"] else { return nil }
        // The expected absolute error of the window is the MAE estimate; its rows are the predictions it read.
        let rowsRead = window.predictions.filter(\.isFinite).count
        return PerformanceEstimate(method: "dle", rows: window.predictions.count, labelled: labelled,
                                   referenceRows: referenceLosses.count, metrics: metrics,
                                   loss: .init(estimated: mae.value, rows: rowsRead, reference: referenceLosses))
    }
}
