import Foundation

/// Error of a regression model over a window of labelled predictions.
///
/// Built from sums, so the same numbers come from rows in Swift or from SQL aggregates over a window.
/// Matches scikit-learn (`root_mean_squared_error`, `mean_absolute_error`, `r2_score`,
/// `mean_absolute_percentage_error`) on `Tests/Fixtures/metrics/cases.json` to 1e-12, with these conventions:
/// - an empty window has no metrics (`nil`), never NaN;
/// - `r2` is `nil` for fewer than 2 rows or constant labels (scikit-learn would answer 1.0, 0.0 or NaN);
/// - `mape` leaves out rows whose label is 0 (they would divide by zero) and counts them in `mapeSkipped`;
///   it is a fraction (0.1 = 10 %), as in scikit-learn.
public struct RegressionMetrics: Sendable, Equatable {
    /// Running sums over (label, prediction) pairs.
    public struct Sums: Sendable, Equatable {
        public var count = 0
        /// Σ (prediction − label)
        public var error = 0.0
        /// Σ |prediction − label|
        public var absoluteError = 0.0
        /// Σ (prediction − label)²
        public var squaredError = 0.0
        /// Σ label and Σ label², for the variance of the labels.
        public var label = 0.0
        public var squaredLabel = 0.0
        /// Σ |prediction − label| / |label| over labels ≠ 0, and how many labels were 0.
        public var relativeError = 0.0
        public var zeroLabels = 0

        public init() {}

        public mutating func add(label: Double, prediction: Double) {
            let e = prediction - label
            count += 1
            error += e
            absoluteError += abs(e)
            squaredError += e * e
            self.label += label
            squaredLabel += label * label
            if label == 0 { zeroLabels += 1 } else { relativeError += abs(e) / abs(label) }
        }
    }

    public var count: Int
    public var rmse: Double?
    public var mae: Double?
    /// Mean of prediction − label: positive when the model over-predicts.
    public var meanError: Double?
    public var r2: Double?
    public var mape: Double?
    public var mapeSkipped: Int

    public init(sums s: Sums) {
        count = s.count
        mapeSkipped = s.zeroLabels
        guard s.count > 0 else {
            rmse = nil; mae = nil; meanError = nil; r2 = nil; mape = nil
            return
        }
        let n = Double(s.count)
        rmse = (s.squaredError / n).squareRoot()
        mae = s.absoluteError / n
        meanError = s.error / n
        let mean = s.label / n
        let totalSquares = s.squaredLabel - n * mean * mean
        // Relative to the labels' scale, a variance at round-off level is a constant column.
        r2 = s.count >= 2 && totalSquares > 1e-12 * max(1, s.squaredLabel) ? 1 - s.squaredError / totalSquares : nil
        let nonZero = s.count - s.zeroLabels
        mape = nonZero > 0 ? s.relativeError / Double(nonZero) : nil
    }

    public init(labels: some Sequence<Double>, predictions: some Sequence<Double>) {
        var sums = Sums()
        for (label, prediction) in zip(labels, predictions) { sums.add(label: label, prediction: prediction) }
        self.init(sums: sums)
    }
}

extension RegressionMetrics {
    /// The defined metrics by `PerformanceMetric` name, with `mean_error`.
    public var values: [String: Double] {
        var values = metricValues([.rmse: rmse, .mae: mae, .mape: mape, .r2: r2])
        values["mean_error"] = meanError
        return values
    }
}
