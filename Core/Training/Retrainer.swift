import CycloneModel
import CycloneMonitoring
import Foundation

/// Settings of a retrain: what the candidate is judged on and how much better it must be.
public struct RetrainOptions: Sendable, Equatable {
    /// The share of the labelled rows, newest first, held out of training to judge the candidate.
    public var holdout = 0.2
    /// How much better than the live model the candidate must score on the holdout, relative to the live
    /// model's value (0.01: 1 % lower error, or 1 % higher R², accuracy…).
    public var minimumImprovement = 0.01
    /// The metric the gate compares; `nil`: the task's default, as the retrain policy watches it.
    public var metric: PerformanceMetric?
    /// Fewer labelled rows to train on than this is an error, not a model.
    public var minimumRows = 100

    public init() {}
}

/// A trained candidate and the champion/challenger verdict on it.
public struct RetrainOutcome: Sendable, Equatable {
    public var candidate: ModelArtifact
    public var accepted: Bool
    public var reason: String
    /// The compared metric, and both models' metrics on the same holdout rows.
    public var metric: PerformanceMetric
    public var candidateMetrics: [String: Double]
    public var liveMetrics: [String: Double]
    /// Rows trained on, and holdout rows the two were compared on.
    public var trainingRows: Int
    public var comparedRows: Int
}

/// Trains a candidate of the live model's family, settings and feature schema on the older rows, and judges
/// it against the live model on the newest: the candidate's predictions against the live model's *stored*
/// predictions (what production actually served) on the holdout rows the live version served.
public struct Retrainer: Sendable {
    public var options: RetrainOptions

    public init(options: RetrainOptions) { self.options = options }

    public func retrain(_ live: ModelArtifact, on data: LabelledPredictions, version: String, trainedAt: Date = Date())
        throws(TrainingError) -> RetrainOutcome
    {
        let n = data.versions.count
        let held = Int((Double(n) * options.holdout).rounded())
        guard n - held >= options.minimumRows else {
            throw TrainingError("\(n) labelled rows leave \(n - held) to train on after the holdout; at least \(options.minimumRows) are needed (MIN_TRAINING_ROWS)")
        }
        guard held > 0 else { throw TrainingError("the holdout is empty: \(n) rows and a holdout share of \(options.holdout)") }
        guard let family = Family(rawValue: live.training?.family ?? live.predictor.family) else {
            throw TrainingError("the live model's family '\(live.training?.family ?? "")' cannot be retrained")
        }
        var training = TrainingOptions(family: family)
        if let alpha = live.training?.parameters["alpha"] { training.alpha = alpha }
        if let c = live.training?.parameters["C"] { training.c = c }
        // Trees keep the live model's shape: its trees (an imported model's count), depth, leaves and rate.
        if family == .gbdt, let parameters = live.training?.parameters {
            training.boosting = BoostingOptions(parameters: parameters)
        }
        training.optionalFeatures = Set(live.features.filter { !$0.required }.map(\.name))

        let trainRows = Array(0..<(n - held))
        var candidate = try Trainer(options: training).train(
            name: live.name, version: version, features: data.features.selecting(rows: trainRows),
            target: FeatureTable.Column(name: data.target.name, values: data.target.values.selecting(rows: trainRows)),
            trainedAt: trainedAt)
        guard candidate.task == live.task, candidate.classes == live.classes else {
            throw TrainingError("the training window's labels make a \(candidate.task.rawValue) model with classes \(candidate.classes ?? []), not the live model's \(live.task.rawValue) with \(live.classes ?? [])")
        }

        // Judge on the holdout rows the live version served; when it served none there (it is new), on all.
        let holdout = Array((n - held)..<n)
        // Only rows whose stored prediction reads back, so both sides are scored on the same rows.
        let readable = holdout.filter { data.served[$0] != nil }
        let servedByLive = readable.filter { data.versions[$0] == live.version }
        let compared = servedByLive.isEmpty ? readable : servedByLive
        guard !compared.isEmpty else {
            throw TrainingError("no held-out row has a stored prediction to compare the candidate with")
        }
        let labels = data.target.values.selecting(rows: compared)
        let liveMetrics = live.metrics(outputs: compared.map { data.served[$0] }, labels: labels)
        let candidateMetrics = candidate.metrics(outputs: candidate.outputs(for: data.features.selecting(rows: compared)),
                                                 labels: labels)
        candidate.training?.parentVersion = live.version
        candidate.training?.holdoutMetrics = candidateMetrics
        candidate.training?.holdoutRows = compared.count

        let metric = options.metric ?? PerformanceMetric.defaultMetric(for: live.task)
        let (accepted, reason) = verdict(metric: metric, candidate: candidateMetrics[metric.rawValue],
                                         live: liveMetrics[metric.rawValue], rows: compared.count,
                                         servedByLive: !servedByLive.isEmpty)
        return RetrainOutcome(candidate: candidate, accepted: accepted, reason: reason, metric: metric,
                              candidateMetrics: candidateMetrics, liveMetrics: liveMetrics,
                              trainingRows: trainRows.count, comparedRows: compared.count)
    }

    private func verdict(metric: PerformanceMetric, candidate: Double?, live: Double?, rows: Int, servedByLive: Bool)
        -> (Bool, String)
    {
        let on = "on \(rows) holdout rows" + (servedByLive ? "" : " (none served by the live version: against what served them)")
        guard let candidate else { return (false, "the candidate's \(metric.rawValue) is undefined \(on)") }
        guard let live else { return (true, "\(metric.rawValue) \(format(candidate)) \(on); the live model's is undefined") }
        let margin = options.minimumImprovement * abs(live)
        let better = metric.higherIsBetter ? candidate > live + margin : candidate < live - margin
        let comparison = "\(metric.rawValue) \(format(candidate)) against the live model's \(format(live)) \(on)"
        if better { return (true, comparison) }
        return (false, comparison + "; not \(format(options.minimumImprovement * 100)) % better")
    }

    private func format(_ value: Double) -> String { String(format: "%.4g", value) }
}
