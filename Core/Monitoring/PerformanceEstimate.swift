import Foundation

/// A version's performance on its newest predictions estimated before their labels arrive: NannyML's CBPE for
/// a classifier, DLE for a regressor, fitted on the version's reference (its first labelled window).
public struct PerformanceEstimate: Sendable, Codable, Equatable {
    /// One metric's estimate on the window beside its realised value on the reference.
    public struct Metric: Sendable, Codable, Equatable {
        public var value: Double
        public var samplingError: Double
        public var lower: Double
        public var upper: Double
        /// The metric realised on the reference's labelled rows.
        public var reference: Double
        /// Whether the estimate is more than 3 sampling errors from the reference's value, the band NannyML
        /// draws from reference chunks of the window's size (the reference holds too few such chunks).
        public var alert: Bool

        enum CodingKeys: String, CodingKey {
            case value, samplingError = "sampling_error", lower, upper, reference, alert
        }

        public init(value: Double, samplingError: Double, lower: Double, upper: Double, reference: Double, alert: Bool) {
            (self.value, self.samplingError, self.lower, self.upper, self.reference, self.alert)
                = (value, samplingError, lower, upper, reference, alert)
        }

        /// A figure that is not a number (ROC AUC of one class) is `null`.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func number(_ key: CodingKeys) throws -> Double { try c.decodeIfPresent(Double.self, forKey: key) ?? .nan }
            self.init(value: try number(.value), samplingError: try number(.samplingError), lower: try number(.lower),
                      upper: try number(.upper), reference: try number(.reference),
                      alert: try c.decode(Bool.self, forKey: .alert))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            for (key, value) in [(CodingKeys.value, value), (.samplingError, samplingError), (.lower, lower),
                                 (.upper, upper), (.reference, reference)] {
                try c.encode(value.isFinite ? value : nil, forKey: key)
            }
            try c.encode(alert, forKey: .alert)
        }
    }

    /// The loss trigger's per-row loss (absolute error, log loss) expected on the window against the mean the
    /// reference realised, with a one-sided z-test of the difference.
    public struct Loss: Sendable, Codable, Equatable {
        public var estimated: Double
        public var reference: Double
        public var ratio: Double
        public var pValue: Double

        enum CodingKeys: String, CodingKey { case estimated, reference, ratio, pValue = "p_value" }

        public init(estimated: Double, reference: Double, ratio: Double, pValue: Double) {
            (self.estimated, self.reference, self.ratio, self.pValue) = (estimated, reference, ratio, pValue)
        }

        /// A ratio against a reference without loss is `null`.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func number(_ key: CodingKeys) throws -> Double { try c.decodeIfPresent(Double.self, forKey: key) ?? .nan }
            self.init(estimated: try number(.estimated), reference: try number(.reference), ratio: try number(.ratio),
                      pValue: try number(.pValue))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            for (key, value) in [(CodingKeys.estimated, estimated), (.reference, reference), (.ratio, ratio), (.pValue, pValue)] {
                try c.encode(value.isFinite ? value : nil, forKey: key)
            }
        }
    }

    /// `cbpe` or `dle`.
    public var method: String
    /// Predictions in the window, and how many of them have labels already.
    public var rows: Int
    public var labelled: Int
    public var referenceRows: Int
    public var windowStart: Date?
    public var windowEnd: Date?
    public var metrics: [String: Metric]
    public var loss: Loss?

    public init(method: String, rows: Int, labelled: Int, referenceRows: Int, windowStart: Date? = nil,
                windowEnd: Date? = nil, metrics: [String: Metric], loss: Loss?)
    {
        (self.method, self.rows, self.labelled, self.referenceRows) = (method, rows, labelled, referenceRows)
        (self.windowStart, self.windowEnd, self.metrics, self.loss) = (windowStart, windowEnd, metrics, loss)
    }

    enum CodingKeys: String, CodingKey {
        case method, rows, labelled, referenceRows = "reference_rows", windowStart = "window_start",
             windowEnd = "window_end", metrics, loss
    }

    public var text: String {
        let values = metrics.sorted { $0.key < $1.key }.map { name, metric in
            String(format: "%@ %.4g [%.4g, %.4g] (reference %.4g)%@", name, metric.value, metric.lower, metric.upper,
                   metric.reference, metric.alert ? " ALERT" : "")
        }
        var line = "estimated (\(method.uppercased()), \(rows) predictions, \(labelled) labelled): " + values.joined(separator: ", ")
        if let loss {
            line += String(format: "; mean loss %.4g against the reference's %.4g (×%.3g, p = %.2g)", loss.estimated,
                           loss.reference, loss.ratio, loss.pValue)
        }
        return line
    }
}

extension PerformanceEstimate.Metric {
    /// A CBPE estimate beside the reference's realised value; it alerts beyond 3 sampling errors of it.
    public init(_ estimate: ConfidenceBasedEstimation.Estimate, reference: Double) {
        self.init(value: estimate.value, samplingError: estimate.samplingError, lower: estimate.lower,
                  upper: estimate.upper, reference: reference,
                  alert: abs(estimate.value - reference) > 3 * estimate.samplingError)
    }
}

extension PerformanceEstimate.Loss {
    /// The mean of per-row expected losses against the reference's realised ones.
    public init?(estimated: [Double], reference: [Double]) {
        let present = estimated.filter(\.isFinite)
        guard !present.isEmpty else { return nil }
        self.init(estimated: present.reduce(0, +) / Double(present.count), rows: present.count, reference: reference)
    }

    /// A window's mean expected loss over `rows` predictions against the reference's realised per-row losses:
    /// the z-test takes the reference's spread for both sides (the expected losses vary less than realised
    /// ones, so the test errs towards not firing).
    public init?(estimated: Double, rows: Int, reference: [Double]) {
        guard !reference.isEmpty, rows > 0, estimated.isFinite else { return nil }
        let n = Double(reference.count)
        let mean = reference.reduce(0, +) / n
        let deviation = ConfidenceBasedEstimation.populationStandardDeviation(reference)
        let error = deviation * (1 / Double(rows) + 1 / n).squareRoot()
        let z = error > 0 ? (estimated - mean) / error : (estimated > mean ? .infinity : 0)
        self.init(estimated: estimated, reference: mean, ratio: mean > 0 ? estimated / mean : .infinity,
                  pValue: erfc(z / 2.0.squareRoot()) / 2)
    }
}
