import CycloneModel
import CycloneMonitoring
import Foundation

/// Settings of a retrain: the windows candidates train on, what they are judged on and how much better the
/// chosen one must be.
public struct RetrainOptions: Sendable, Equatable {
    /// The share of the newest window (`windows.first`, or every row read), newest rows first, held out of
    /// training to judge the candidates.
    public var holdout = 0.2
    /// The candidate windows, in rows before the holdout, newest rows first (e.g. the newest N, 3N and every
    /// row read): one candidate trains on each, and the holdout picks. Empty: one candidate on every row.
    public var windows: [Int] = []
    /// Families tried besides the live model's own (which is always tried, first): each trains a candidate on
    /// every window, and the holdout picks among them all. A family that cannot model the live model's task
    /// (`ridge` for a classifier, `logistic` for a regressor) is passed over. Empty: the live model's family alone.
    /// Another family starts from its defaults (the live model's settings are its own family's).
    public var families: [Family] = []
    /// The most cells (rows × encoded columns) another family's dense design matrix may have: a linear model
    /// one-hot encodes categories, so on a wide window it is passed over rather than risk the job's memory
    /// (20 million cells, 160 MB). The live model's own family is never limited, as before.
    public var maximumDesignCells = 20_000_000
    /// Whether the chosen candidate, once it has beaten the live model, is trained again on its window and
    /// the holdout rows together before it is registered: the newest rows are the most telling, and the
    /// verdict has been given.
    public var refit = true
    /// How much better than the live model the candidate must score on the holdout, relative to the live
    /// model's error (0.01: 1 % lower), or to its score's shortfall from 1 (R², accuracy…: 1 % less of it;
    /// `PerformanceMetric.shortfall`).
    public var minimumImprovement = 0.01
    /// The metric the gate compares; `nil`: the task's default, as the retrain policy watches it.
    public var metric: PerformanceMetric?
    /// Fewer labelled rows to train on than this is an error, not a model.
    public var minimumRows = 100

    public init() {}
}

/// A trained candidate and the champion/challenger verdict on it.
public struct RetrainOutcome: Sendable, Equatable {
    /// The chosen candidate: when accepted and `refit`, trained again on its window and the holdout.
    public var candidate: ModelArtifact
    public var accepted: Bool
    public var reason: String
    /// The compared metric, and both models' metrics on the same holdout rows.
    public var metric: PerformanceMetric
    public var candidateMetrics: [String: Double]
    public var liveMetrics: [String: Double]
    /// Rows the registered candidate was trained on (its window, and the holdout when refitted), and holdout
    /// rows the two were compared on.
    public var trainingRows: Int
    public var comparedRows: Int
    /// Every candidate tried, in order (the live model's family first, each family's windows narrowest first):
    /// its family, window in rows, value of `metric` on the holdout (`nil`: undefined, or not trained), and
    /// why another family's candidate was not trained (`skipped`); the chosen one is `chosenFamily` on
    /// `chosenWindow`.
    public var windows: [(family: String, rows: Int, value: Double?, skipped: String?)]
    public var chosenWindow: Int
    public var chosenFamily: String
    /// The rows (indices into the data, oldest first) the registered candidate was trained on.
    public var trainedOn: Range<Int>
    /// Whether the candidate was trained again on its window and the holdout.
    public var refitted: Bool

    public static func == (a: Self, b: Self) -> Bool {
        a.candidate == b.candidate && a.accepted == b.accepted && a.reason == b.reason && a.metric == b.metric
            && a.candidateMetrics == b.candidateMetrics && a.liveMetrics == b.liveMetrics
            && a.trainingRows == b.trainingRows && a.comparedRows == b.comparedRows
            && a.windows.map(\.rows) == b.windows.map(\.rows) && a.windows.map(\.family) == b.windows.map(\.family)
            && a.chosenWindow == b.chosenWindow && a.chosenFamily == b.chosenFamily
            && a.trainedOn == b.trainedOn && a.refitted == b.refitted
    }
}

/// Trains candidates of the live model's family, settings and feature schema (and of `families` besides) on
/// windows of the older rows, picks the one that scores best on the newest (the holdout), and judges it
/// against the live model there:
/// the candidate's predictions against the live model's *stored* predictions (what production actually
/// served) on the holdout rows the live version served. An accepted candidate is then refitted on its window
/// and the holdout together (`refit`).
public struct Retrainer: Sendable {
    public var options: RetrainOptions

    public init(options: RetrainOptions) { self.options = options }

    public func retrain(_ live: ModelArtifact, on data: LabelledPredictions, version: String, trainedAt: Date = Date())
        throws(TrainingError) -> RetrainOutcome
    {
        let n = data.versions.count
        // The holdout is a share of the newest window of labelled *predictions*: the model's history (rows it
        // never served, version "") is trained on but cannot be judged on, having no stored prediction.
        let predictions = data.versions.reduce(0) { $0 + ($1.isEmpty ? 0 : 1) }
        guard predictions > 0 else {
            throw TrainingError("no labelled prediction to judge a candidate on: the \(n) labelled rows are all the model's history")
        }
        // However much history there is, the holdout is drawn from as many predictions as a retrain without any
        // would need.
        guard predictions >= options.minimumRows else {
            throw TrainingError("\(predictions) labelled predictions (and \(n - predictions) rows of history); at least \(options.minimumRows) predictions are needed to judge a candidate on (MIN_TRAINING_ROWS)")
        }
        let newest = min(predictions, options.windows.first ?? n)
        let held = Int((Double(newest) * options.holdout).rounded())
        guard n - held >= options.minimumRows else {
            throw TrainingError("\(n) labelled rows leave \(n - held) to train on after the holdout; at least \(options.minimumRows) are needed (MIN_TRAINING_ROWS)")
        }
        guard held > 0 else { throw TrainingError("the holdout is empty: \(predictions) labelled predictions and a holdout share of \(options.holdout)") }
        guard let liveFamily = Family(rawValue: live.training?.family ?? live.predictor.family) else {
            throw TrainingError("the live model's family '\(live.training?.family ?? "")' cannot be retrained")
        }
        // The live model's family first (its ties win), then the others that can model its task.
        let families = [liveFamily] + options.families.filter { family in
            family != liveFamily && (family == .gbdt || (family == .ridge) == (live.task == .regression))
        }.reduce(into: [Family]()) { if !$0.contains($1) { $0.append($1) } }
        var base = TrainingOptions(family: liveFamily)
        // The live model's settings carry over to its own family; another starts from its defaults.
        if liveFamily == .ridge, let alpha = live.training?.parameters["alpha"] { base.alpha = alpha }
        if liveFamily == .logistic, let c = live.training?.parameters["C"] { base.c = c }
        // Trees keep the live model's shape: its trees (an imported model's count), depth, leaves and rate.
        if liveFamily == .gbdt, let parameters = live.training?.parameters {
            base.boosting = BoostingOptions(parameters: parameters)
        }
        base.optionalFeatures = Set(live.features.filter { !$0.required }.map(\.name))
        func train(_ family: Family, _ rows: Range<Int>) throws(TrainingError) -> ModelArtifact {
            let rows = Array(rows)
            var training = base
            training.family = family
            if family != liveFamily { training.maximumDesignCells = options.maximumDesignCells }
            let candidate = try Trainer(options: training).train(
                name: live.name, version: version, features: data.features.selecting(rows: rows),
                target: FeatureTable.Column(name: data.target.name, values: data.target.values.selecting(rows: rows)),
                trainedAt: trainedAt)
            guard candidate.task == live.task, candidate.classes == live.classes else {
                throw TrainingError("the training window's labels make a \(candidate.task.rawValue) model with classes \(candidate.classes ?? []), not the live model's \(live.task.rawValue) with \(live.classes ?? [])")
            }
            return candidate
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
        let features = data.features.selecting(rows: compared)
        let metric = options.metric ?? PerformanceMetric.defaultMetric(for: live.task)

        // One candidate per window (windows wider than the rows there are all become every row, tried once);
        // the best on the holdout is chosen, the narrowest on a tie.
        let available = n - held
        var sizes: [Int] = []
        for window in (options.windows.isEmpty ? [available] : options.windows.sorted()).map({ min($0, available) })
        where window >= options.minimumRows && !sizes.contains(window) {
            sizes.append(window)
        }
        if sizes.isEmpty { sizes = [available] }
        var tried: [(family: String, rows: Int, value: Double?, skipped: String?)] = []
        var best: (candidate: ModelArtifact, outputs: [Output], metrics: [String: Double], rows: Int, family: Family)?
        for family in families {
            for size in sizes {
                let candidate: ModelArtifact
                do {
                    candidate = try train(family, (available - size)..<available)
                } catch where family != liveFamily && !Task.isCancelled {
                    // Another family that cannot fit these rows (values too large to standardize, too wide a
                    // design matrix) is passed over; the live model's own failing is the retrain's error, as it
                    // always was, and so is a cancellation.
                    tried.append((family.rawValue, size, nil, error.description))
                    continue
                }
                let outputs = candidate.outputs(for: features)
                let metrics = candidate.metrics(outputs: outputs, labels: labels)
                let value = metrics[metric.rawValue]
                tried.append((family.rawValue, size, value, nil))
                guard let value else { continue }
                if let incumbent = best?.metrics[metric.rawValue] {
                    let better = metric.higherIsBetter ? value > incumbent : value < incumbent
                    if !better { continue }
                }
                best = (candidate, outputs, metrics, size, family)
            }
        }
        if best == nil {
            // Every candidate's metric is undefined: the live family's first is judged (and refused) as before.
            let candidate = try train(liveFamily, (available - sizes[0])..<available)
            let outputs = candidate.outputs(for: features)
            best = (candidate, outputs, candidate.metrics(outputs: outputs, labels: labels), sizes[0], liveFamily)
        }
        var (candidate, outputs, candidateMetrics, window, family) = best!
        let liveMetrics = live.metrics(outputs: compared.map { data.served[$0] }, labels: labels)

        let (accepted, reason) = verdict(metric: metric, candidate: candidateMetrics[metric.rawValue],
                                         live: liveMetrics[metric.rawValue], rows: compared.count,
                                         servedByLive: !servedByLive.isEmpty)
        var trainedOn = (available - window)..<available
        var refitted = accepted && options.refit
        if refitted {
            // The gate has spoken; the newest rows should not be thrown away. A refit that fails (the holdout
            // brings a class the window lacked, say) leaves the candidate the gate judged.
            do {
                candidate = try train(family, (available - window)..<n)
                trainedOn = (available - window)..<n
            } catch {
                refitted = false
            }
        }
        candidate.training?.parentVersion = live.version
        candidate.training?.holdoutMetrics = candidateMetrics
        candidate.training?.holdoutRows = compared.count
        // What the candidate lost on the holdout before any refit: the loss it is expected to have, unseen rows.
        let holdoutLoss = LossShift.summary(candidate.losses(outputs: outputs, labels: labels))
        candidate.training?.holdoutLoss = holdoutLoss
        // Windows alone while one family is tried, as they always read; with more, each names its family.
        let named = families.count > 1
        func label(_ family: String, _ rows: Int) -> String { named ? "\(family) \(rows)" : "\(rows)" }
        let windows = tried.count > 1 ? "; windows " + tried.map { "\(label($0.family, $0.rows)): \($0.skipped.map { "not trained (\($0))" } ?? $0.value.map(format) ?? "undefined")" }
            .joined(separator: ", ") + ", chose \(label(family.rawValue, window))" : ""
        return RetrainOutcome(candidate: candidate, accepted: accepted, reason: reason + windows, metric: metric,
                              candidateMetrics: candidateMetrics, liveMetrics: liveMetrics,
                              trainingRows: trainedOn.count, comparedRows: compared.count, windows: tried,
                              chosenWindow: window, chosenFamily: family.rawValue, trainedOn: trainedOn,
                              refitted: refitted)
    }

    private func verdict(metric: PerformanceMetric, candidate: Double?, live: Double?, rows: Int, servedByLive: Bool)
        -> (Bool, String)
    {
        let on = "on \(rows) holdout rows" + (servedByLive ? "" : " (none served by the live version: against what served them)")
        guard let candidate else { return (false, "the candidate's \(metric.rawValue) is undefined \(on)") }
        guard let live else { return (true, "\(metric.rawValue) \(format(candidate)) \(on); the live model's is undefined") }
        let (left, candidateLeft) = (metric.shortfall(live), metric.shortfall(candidate))
        let better = candidateLeft < left - options.minimumImprovement * abs(left)
        let comparison = "\(metric.rawValue) \(format(candidate)) against the live model's \(format(live)) \(on)"
        if better { return (true, comparison) }
        return (false, comparison + "; not \(format(options.minimumImprovement * 100)) % "
                + (metric.higherIsBetter ? "closer to 1" : "better"))
    }

    private func format(_ value: Double) -> String { String(format: "%.4g", value) }
}
