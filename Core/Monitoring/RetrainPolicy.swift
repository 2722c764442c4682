import CycloneModel
import Foundation

/// A performance metric the policy can watch, and which way is better.
public enum PerformanceMetric: String, Sendable, Codable, CaseIterable {
    case rmse, mae, mape, r2
    case accuracy, precision, recall, f1
    case rocAUC = "roc_auc"
    case logLoss = "log_loss"
    case brier
    case macroF1 = "macro_f1"

    public var higherIsBetter: Bool {
        switch self {
        case .r2, .accuracy, .precision, .recall, .f1, .rocAUC, .macroF1: true
        case .rmse, .mae, .mape, .logLoss, .brier: false
        }
    }

    /// The metrics a task reports.
    public static func available(for task: ModelArtifact.Task) -> [PerformanceMetric] {
        switch task {
        case .regression: [.rmse, .mae, .mape, .r2]
        case .binary: [.accuracy, .precision, .recall, .f1, .rocAUC, .logLoss, .brier]
        case .multiclass: [.accuracy, .macroF1, .logLoss]
        }
    }

    /// What the policy watches when `RETRAIN_METRIC` is unset.
    public static func defaultMetric(for task: ModelArtifact.Task) -> PerformanceMetric {
        switch task {
        case .regression: .r2
        case .binary: .rocAUC
        case .multiclass: .accuracy
        }
    }
}

/// The defined metrics, keyed by their names.
func metricValues(_ metrics: [PerformanceMetric: Double?]) -> [String: Double] {
    var values: [String: Double] = [:]
    for (metric, value) in metrics { values[metric.rawValue] = value }
    return values
}

/// When the evaluator asks for a retrain.
///
/// The watched metric breaches when it is worse than the threshold: absolute (`R² < 0.4`) or relative to the
/// model's own holdout value (`RMSE > 1.25 × holdout`, `accuracy < 0.9 × holdout`). No decision is taken on
/// fewer than `minimumLabels` labels. Drift alone asks for a retrain only when `retrainOnDrift` is set. The
/// cooldown and the one-retrain-at-a-time rule depend on the store's state and are applied there.
public struct RetrainPolicy: Sendable, Equatable {
    public enum Threshold: Sendable, Equatable, CustomStringConvertible {
        case absolute(Double)
        /// A factor of the model's holdout value of the metric (of its magnitude, for a negative value).
        case relative(Double)

        /// `0.4` is absolute; `1.25x` (or `x1.25`) is relative.
        public init?(_ text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
            if trimmed.hasSuffix("x") || trimmed.hasPrefix("x") {
                let number = trimmed.hasSuffix("x") ? trimmed.dropLast() : trimmed.dropFirst()
                guard let factor = Double(number), factor.isFinite, factor > 0 else { return nil }
                self = .relative(factor)
            } else {
                guard let value = Double(trimmed), value.isFinite else { return nil }
                self = .absolute(value)
            }
        }

        public var description: String {
            switch self {
            case .absolute(let value): "\(value)"
            case .relative(let factor): "\(factor)x"
            }
        }
    }

    /// `nil`: the task's default metric.
    public var metric: PerformanceMetric?
    /// `nil`: R² below 0.4, any other metric 10 % worse than its holdout value (0.9x or 1.1x).
    public var threshold: Threshold?
    public var minimumLabels = 100
    /// After a deploy or a retrain request, no new retrain is asked for during this long.
    public var cooldown: Duration = .seconds(3_600)
    public var retrainOnDrift = false

    public init() {}

    /// The metric and threshold that apply to a model of `task`.
    public func resolved(for task: ModelArtifact.Task) -> (metric: PerformanceMetric, threshold: Threshold) {
        let metric = metric ?? PerformanceMetric.defaultMetric(for: task)
        if let threshold { return (metric, threshold) }
        if metric == .r2 { return (metric, .absolute(0.4)) }
        return (metric, .relative(metric.higherIsBetter ? 0.9 : 1.1))
    }

    /// The value a model of `task` with these holdout metrics is held to, or `nil` for a relative threshold
    /// without the holdout value.
    public func limit(task: ModelArtifact.Task, holdout: [String: Double]?) -> Double? {
        let (metric, threshold) = resolved(for: task)
        switch threshold {
        case .absolute(let value): return value
        case .relative(let factor):
            guard let base = holdout?[metric.rawValue] else { return nil }
            // The factor scales the baseline's magnitude, so a negative baseline (an R² below zero, say) still
            // allows the same share of slack in the right direction: 0.9x of -0.4 is -0.44, not -0.36.
            return base + (factor - 1) * abs(base)
        }
    }

    /// Judges one model version's window.
    /// - Parameters:
    ///   - metrics: the window's metrics by `PerformanceMetric` raw value.
    ///   - labels: labelled predictions in the window.
    ///   - holdout: the model's holdout metrics, for a relative threshold.
    public func judge(task: ModelArtifact.Task, metrics: [String: Double], labels: Int, holdout: [String: Double]?,
                      drift: DriftReport?) -> Judgement
    {
        let (metric, threshold) = resolved(for: task)
        var judgement = Judgement(metric: metric.rawValue, threshold: threshold.description, labels: labels)
        let drifted = drift?.datasetDrift ?? false
        judgement.datasetDrift = drifted
        guard PerformanceMetric.available(for: task).contains(metric) else {
            judgement.reason = "\(metric.rawValue) is not a \(task.rawValue) metric; choose one of \(PerformanceMetric.available(for: task).map(\.rawValue).joined(separator: ", "))"
            return judgement
        }
        guard labels >= minimumLabels else {
            judgement.reason = "\(labels) labels, fewer than the \(minimumLabels) needed for a decision"
            return judgement
        }
        guard let limit = limit(task: task, holdout: holdout) else {
            judgement.reason = "the model has no holdout \(metric.rawValue) for the relative threshold \(threshold)"
            return judgement
        }
        judgement.limit = limit
        guard let value = metrics[metric.rawValue] else {
            judgement.reason = "\(metric.rawValue) is undefined on this window"
            return judgement
        }
        judgement.value = value
        let breached = metric.higherIsBetter ? value < limit : value > limit
        judgement.breached = breached
        let comparison = metric.higherIsBetter ? (breached ? "<" : "≥") : (breached ? ">" : "≤")
        let statement = "\(metric.rawValue) \(formatted(value)) \(comparison) \(formatted(limit)) on \(labels) labels"
        if breached {
            judgement.retrain = true
            judgement.reason = statement
        } else if drifted && retrainOnDrift {
            judgement.retrain = true
            judgement.reason = "dataset drift (\(drift?.drifted ?? 0) of \(drift?.tested ?? 0) features); \(statement)"
        } else {
            judgement.reason = statement + (drifted ? "; dataset drift, but RETRAIN_ON_DRIFT is off" : "")
        }
        return judgement
    }
}

/// What the policy concluded for one model version.
public struct Judgement: Sendable, Equatable, Codable {
    public var metric: String
    public var threshold: String
    public var labels: Int
    /// The threshold as a number (a relative one resolved against the holdout value).
    public var limit: Double?
    public var value: Double?
    /// `nil` when no decision could be taken.
    public var breached: Bool?
    public var datasetDrift = false
    public var retrain = false
    public var reason = ""

    public init(metric: String, threshold: String, labels: Int) {
        self.metric = metric
        self.threshold = threshold
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case metric, threshold, labels, limit, value, breached, datasetDrift = "dataset_drift", retrain, reason
    }
}

private func formatted(_ value: Double) -> String {
    let rounded = (value * 10_000).rounded() / 10_000
    return "\(rounded)"
}
