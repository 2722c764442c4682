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

    /// What is left to gain from `value`, the quantity a relative improvement is taken of: an error as it is,
    /// and a score's shortfall from a perfect 1 (R², accuracy, ROC AUC…), so that an R² of 0.995 against 0.99
    /// halves what was left, where as a share of 0.99 it would be half a percent.
    public func shortfall(_ value: Double) -> Double { higherIsBetter ? 1 - value : value }

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
/// By default (`trigger` `.loss`) when the serving version's loss has grown against its own reference
/// window, its first full live window: a one-sided Welch t-test of the newest labelled rows' mean loss
/// against the reference's, on batch means (`LossShift`), at level `alpha` (the share of false alarms on a model whose error has not
/// changed), and a mean loss at least `minimumLossRatio` times the reference's (a change too small to be
/// worth a retrain does not fire, however many labels show it). When the version kept its holdout's losses,
/// the newest window is also tested against them, the loss it was expected to have (from its first
/// `minimumLabels` labels on; after a challenger to it is turned down, once a window of fresh labels has come,
/// twice that after a second, and so on: `EvaluationWindows.holdoutTestArmed`). The tests a cycle takes (these
/// two, and the estimate's when `source` reads one) share `alpha` evenly, so that together they raise false
/// alarms at `alpha`. A `threshold` set explicitly is a floor besides. With `trigger` `.threshold`, the
/// watched metric breaches when it is worse than the threshold: absolute (`R² < 0.4`) or relative to the
/// model's own holdout value (`RMSE > 1.25 × holdout`).
///
/// Under the loss trigger a challenger is also asked for once the data has grown by `dataGrowth` since the
/// serving version was trained. No decision is taken on fewer than `minimumLabels` labels. Drift alone asks for a retrain only when
/// `retrainOnDrift` is set. The cooldown, the wait for fresh labels after a discarded challenger and the
/// one-retrain-at-a-time rule depend on the store's state and are applied there.
public struct RetrainPolicy: Sendable, Equatable {
    /// What asks for a retrain.
    public enum Trigger: String, Sendable, Equatable, CaseIterable {
        /// The loss has grown against the reference window (and an explicit threshold, as a floor).
        case loss
        /// The watched metric passes the threshold (by default relative to the holdout value).
        case threshold
    }

    /// What the policy judges by: the labels' realised performance, the estimate (CBPE, DLE) of the newest
    /// predictions, or the estimate while too few labels have arrived.
    public enum Source: String, Sendable, Equatable, CaseIterable {
        case realised, estimated, auto
    }

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
    /// Whether a data-quality breach alone asks for a retrain. Off by default: a broken pipeline is not
    /// mended by retraining on its output; the breach is an alert.
    public var retrainOnDataQuality = false
    public var trigger = Trigger.loss
    /// `realised`: decisions on labels only; `estimated`: on the estimate whenever there is one; `auto`: on the
    /// estimate while the window has fewer than `minimumLabels` labels.
    public var source = Source.realised
    /// The loss test's level: its false-alarm rate on a model whose error has not changed.
    public var alpha = 0.01
    /// The least growth of the mean loss, against the reference's, that asks for a retrain.
    public var minimumLossRatio = 1.1
    /// Under the loss trigger, a challenger is also asked for once the labels made since the serving version
    /// was trained (or since a retrain was last asked for on its behalf) number `dataGrowth − 1` times the rows
    /// it was trained on (and at least a window, `referenceSize`, and `minimumLabels`): the data has grown by that factor, and a model trained on it may do better even where
    /// the loss has not grown (a version mediocre from the start, a world that drifts slowly). The challenger
    /// is judged in shadow like any other, so one that is no better is discarded. `nil`: off. The waits grow
    /// with the training rows (the doubling of online learning) up to the rows a retrain may train on
    /// (`TRAINING_MAX_ROWS`): a stationary stream gets a few such challenges, spaced wider, then one per that
    /// many labels.
    public var dataGrowth: Double? = 2

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
        // The loss trigger holds a version to a threshold only when one is set.
        if trigger == .loss && self.threshold == nil { return nil }
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
    ///   - lossShift: the loss test of the window against the version's reference window; `nil` while the
    ///     reference is filling (`referenceLabels` of the `referenceSize` it needs).
    ///   - newData: the labels since the version was trained (or its last challenger was turned down) and the
    ///     rows it was trained on, for `dataGrowth`.
    public func judge(task: ModelArtifact.Task, metrics: [String: Double], labels: Int, holdout: [String: Double]?,
                      drift: DriftReport?, dataQuality: DataQualityReport? = nil, lossShift: LossShift? = nil,
                      holdoutLossShift: LossShift? = nil, referenceLabels: Int = 0, referenceSize: Int = 0,
                      newData: (labels: Int, trainingRows: Int)? = nil, estimate: PerformanceEstimate? = nil) -> Judgement
    {
        if trigger == .loss {
            var judgement = judgeLoss(task: task, metrics: metrics, labels: labels, holdout: holdout, drift: drift,
                                      dataQuality: dataQuality, estimate: estimate, lossShift: lossShift,
                                      holdoutLossShift: holdoutLossShift, referenceLabels: referenceLabels,
                                      referenceSize: referenceSize)
            if !judgement.retrain, let growth = dataGrowth, let newData, newData.trainingRows > 0,
               Double(newData.labels) >= max((growth - 1) * Double(newData.trainingRows), Double(max(referenceSize, minimumLabels)))
            {
                judgement.retrain = true
                judgement.reason = "\(newData.labels) labels since it was trained on \(newData.trainingRows) rows: the data has grown ×\(formatted(growth)) (RETRAIN_DATA_GROWTH), a challenger may learn more; " + judgement.reason
            }
            return judgement
        }
        let (metric, threshold) = resolved(for: task)
        var judgement = Judgement(metric: metric.rawValue, threshold: threshold.description, labels: labels)
        judgement.datasetDrift = drift?.datasetDrift ?? false
        judgement.dataQualityBreached = dataQuality?.breached
        guard PerformanceMetric.available(for: task).contains(metric) else {
            judgement.reason = "\(metric.rawValue) is not a \(task.rawValue) metric; choose one of \(PerformanceMetric.available(for: task).map(\.rawValue).joined(separator: ", "))"
            return judgement
        }
        // An estimate counts on at least `minimumLabels` predictions, as labels do.
        let estimated = estimate.flatMap { estimate in
            estimate.rows >= minimumLabels
                ? estimate.metrics[metric.rawValue].flatMap { $0.value.isFinite ? (estimate, $0) : nil } : nil
        }
        let onEstimate = estimated != nil && (source == .estimated || (source == .auto && labels < minimumLabels))
        guard labels >= minimumLabels || onEstimate else {
            judgement.reason = "\(labels) labels, fewer than the \(minimumLabels) needed for a decision"
                + (source == .realised ? "" : estimate == nil ? "; no estimate (the reference window is not full)"
                                                              : "; \(metric.rawValue) cannot be estimated")
            return judgement
        }
        guard let limit = limit(task: task, holdout: holdout) else {
            judgement.reason = "the model has no holdout \(metric.rawValue) for the relative threshold \(threshold)"
            return judgement
        }
        judgement.limit = limit
        guard let value = onEstimate ? estimated?.1.value : metrics[metric.rawValue] else {
            judgement.reason = "\(metric.rawValue) is undefined on this window"
            return judgement
        }
        judgement.value = value
        judgement.estimated = onEstimate ? true : nil
        // An estimate breaches only when its whole band (± 3 sampling errors) is past the limit.
        let band = onEstimate ? estimated!.1 : nil
        let breached = metric.higherIsBetter ? (band?.upper ?? value) < limit : (band?.lower ?? value) > limit
        judgement.breached = breached
        let comparison = metric.higherIsBetter ? (breached ? "<" : "≥") : (breached ? ">" : "≤")
        let statement = onEstimate
            ? "estimated \(metric.rawValue) \(formatted(value)) [\(formatted(band!.lower)), \(formatted(band!.upper))] \(comparison) \(formatted(limit)) (\(estimated!.0.method.uppercased()) on \(estimated!.0.rows) predictions, \(labels) labels)"
            : "\(metric.rawValue) \(formatted(value)) \(comparison) \(formatted(limit)) on \(labels) labels"
        conclude(&judgement, fired: breached, statement: statement, drift: drift, dataQuality: dataQuality)
        return judgement
    }

    /// Asks for a retrain when the trigger `fired`, else on dataset drift when `retrainOnDrift` is set, else
    /// on a data-quality breach when `retrainOnDataQuality` is set, and says why in `reason`.
    private func conclude(_ judgement: inout Judgement, fired: Bool, statement: String, drift: DriftReport?,
                          dataQuality: DataQualityReport?)
    {
        let drifted = drift?.datasetDrift ?? false
        let broken = dataQuality?.summary
        if fired {
            judgement.retrain = true
            judgement.reason = statement
        } else if drifted && retrainOnDrift {
            judgement.retrain = true
            judgement.reason = "dataset drift (\(drift?.drifted ?? 0) of \(drift?.tested ?? 0) features); \(statement)"
        } else if let broken, retrainOnDataQuality {
            judgement.retrain = true
            judgement.reason = "data quality (\(broken)); \(statement)"
        } else {
            judgement.reason = statement + (drifted ? "; dataset drift, but RETRAIN_ON_DRIFT is off" : "")
                + (broken != nil ? "; data quality breached, an alert and no retrain (RETRAIN_ON_DATA_QUALITY is off)" : "")
        }
    }

    private func judgeLoss(task: ModelArtifact.Task, metrics: [String: Double], labels: Int, holdout: [String: Double]?,
                           drift: DriftReport?, dataQuality: DataQualityReport?, estimate: PerformanceEstimate?,
                           lossShift: LossShift?, holdoutLossShift: LossShift?, referenceLabels: Int,
                           referenceSize: Int)
        -> Judgement
    {
        let metric = resolved(for: task).metric
        var judgement = Judgement(metric: metric.rawValue, threshold: threshold?.description ?? "", labels: labels)
        judgement.trigger = trigger.rawValue
        judgement.datasetDrift = drift?.datasetDrift ?? false
        judgement.dataQualityBreached = dataQuality?.breached
        judgement.value = metrics[metric.rawValue]
        guard PerformanceMetric.available(for: task).contains(metric) else {
            judgement.reason = "\(metric.rawValue) is not a \(task.rawValue) metric; choose one of \(PerformanceMetric.available(for: task).map(\.rawValue).joined(separator: ", "))"
            return judgement
        }
        // An explicit threshold is a floor: its breach asks for a retrain whatever the loss test says.
        var floor: String?
        if threshold != nil, labels >= minimumLabels, let limit = limit(task: task, holdout: holdout),
           let value = judgement.value
        {
            judgement.limit = limit
            if metric.higherIsBetter ? value < limit : value > limit {
                floor = "\(metric.rawValue) \(formatted(value)) \(metric.higherIsBetter ? "<" : ">") \(formatted(limit)) on \(labels) labels"
            }
        }
        var statement: String
        var fired = false
        judgement.lossShift = lossShift
        judgement.holdoutLossShift = holdoutLossShift
        // Labels short (or estimates preferred): the estimate's expected loss against the reference's as well.
        // Short means too few labels since the reference window: the holdout test reads older labels too.
        let labelsShort = (lossShift?.currentRows ?? 0) < minimumLabels
        let estimated = estimate.flatMap { estimate in
            estimate.loss.flatMap { loss in
                estimate.rows >= minimumLabels && (source == .estimated || (source == .auto && labelsShort))
                    ? (estimate, loss) : nil
            }
        }
        // The tests taken (the first window's, the holdout's, the estimate's) share the level (Bonferroni): the
        // false alarms of them together stay at `alpha`.
        let decisive = [lossShift, holdoutLossShift].filter { ($0?.currentRows ?? 0) >= minimumLabels }.count
        let level = alpha / Double(max(decisive + (estimated == nil ? 0 : 1), 1))
        func verdict(_ pValue: Double, _ ratio: Double) -> (grown: Bool, why: String) {
            let grown = pValue < level && ratio >= minimumLossRatio
            return (grown, grown ? "" : pValue < level ? "; below the least growth of ×\(formatted(minimumLossRatio))"
                                                       : "; not significant at \(formatted(level))")
        }
        func test(_ shift: LossShift, against reference: String) -> String {
            let growth = shift.ratio.isFinite ? "×\(formatted(shift.ratio))" : "from nothing"
            let (grown, why) = verdict(shift.pValue, shift.ratio)
            fired = fired || grown
            return "mean loss \(growth) \(reference) on \(shift.currentRows) labels against \(shift.referenceRows) (Welch p = \(String(format: "%.3g", shift.pValue)))" + why
        }
        if let shift = lossShift, shift.currentRows >= minimumLabels {
            statement = test(shift, against: "the reference's")
        } else if let shift = lossShift {
            statement = "\(shift.currentRows) labels since the reference window, fewer than the \(minimumLabels) needed for a decision"
        } else if referenceLabels < referenceSize {
            statement = "the reference window is filling: \(referenceLabels) of \(referenceSize) labels"
        } else {
            statement = "no labels since the reference window"
        }
        if let shift = holdoutLossShift, shift.currentRows >= minimumLabels {
            statement += "; " + test(shift, against: "its holdout's")
        }
        if let (estimate, loss) = estimated {
            let (grown, why) = verdict(loss.pValue, loss.ratio)
            // The decision rests on the estimate unless a test of labels asked for the retrain.
            judgement.estimated = !fired
            let figures = "estimated (\(estimate.method.uppercased()) on \(estimate.rows) predictions, \(estimate.labelled) labelled): mean loss ×\(formatted(loss.ratio)) the reference's (z-test p = \(String(format: "%.2g", loss.pValue)))" + why
            statement = labelsShort && decisive == 0 ? figures : statement + "; " + figures
            fired = fired || grown
        } else if source == .estimated, !fired {
            statement += "; no estimate (the reference window is not full, or the window is empty)"
        }
        if let floor { statement = floor + "; " + statement }
        judgement.breached = fired || floor != nil
        conclude(&judgement, fired: fired || floor != nil, statement: statement, drift: drift,
                 dataQuality: dataQuality)
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
    /// Whether a data-quality check of the window breached (`nil`: not checked, no reference profile).
    public var dataQualityBreached: Bool?
    public var retrain = false
    public var reason = ""
    /// `loss` or `threshold` (absent: `threshold`, as before the loss trigger).
    public var trigger: String?
    /// True when the decision rested on an estimate (CBPE, DLE) rather than on labels.
    public var estimated: Bool?
    /// The loss test, under the loss trigger once the reference window is full.
    public var lossShift: LossShift?
    /// The newest window's loss against the version's holdout loss, under the loss trigger.
    public var holdoutLossShift: LossShift?

    public init(metric: String, threshold: String, labels: Int) {
        self.metric = metric
        self.threshold = threshold
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case metric, threshold, labels, limit, value, breached, datasetDrift = "dataset_drift",
             dataQualityBreached = "data_quality_breached", retrain, reason, trigger, estimated,
             lossShift = "loss_shift", holdoutLossShift = "holdout_loss_shift"
    }
}

private func formatted(_ value: Double) -> String {
    let rounded = (value * 10_000).rounded() / 10_000
    return "\(rounded)"
}
