import CycloneMonitoring
import Foundation

/// What one evaluation cycle found and did: `POST /evaluate` answers it as JSON, `cyclone evaluate` prints it.
public struct EvaluationReport: Sendable, Codable, Equatable {
    public var evaluatedAt: Date
    public var models: [ModelEvaluation]
    /// The canaries judged this cycle.
    public var canaries: [CanaryDecision] = []
    /// The shadows judged this cycle.
    public var shadows: [ShadowDecision] = []
    /// Names `EVALUATE_MODELS` lists that the registry does not hold (a typo, or a model not registered
    /// yet): nothing of theirs was judged.
    public var unknownModels: [String] = []

    enum CodingKeys: String, CodingKey {
        case evaluatedAt = "evaluated_at", models, canaries, shadows, unknownModels = "unknown_models"
    }

    public init(evaluatedAt: Date, models: [ModelEvaluation], canaries: [CanaryDecision] = [],
                shadows: [ShadowDecision] = [], unknownModels: [String] = [])
    {
        (self.evaluatedAt, self.models, self.canaries, self.shadows) = (evaluatedAt, models, canaries, shadows)
        self.unknownModels = unknownModels
    }

    /// A report of an evaluate from before `unknown_models` reads as naming none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        evaluatedAt = try container.decode(Date.self, forKey: .evaluatedAt)
        models = try container.decode([ModelEvaluation].self, forKey: .models)
        canaries = try container.decode([CanaryDecision].self, forKey: .canaries)
        shadows = try container.decode([ShadowDecision].self, forKey: .shadows)
        unknownModels = try container.decodeIfPresent([String].self, forKey: .unknownModels) ?? []
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// One model version's evaluation.
public struct ModelEvaluation: Sendable, Codable, Equatable {
    public struct Performance: Sendable, Codable, Equatable {
        public var labelled: Int
        public var invalidLabels: Int
        public var windowStart: Date?
        public var windowEnd: Date?
        public var metrics: [String: Double]

        enum CodingKeys: String, CodingKey {
            case labelled, invalidLabels = "invalid_labels", windowStart = "window_start", windowEnd = "window_end",
                 metrics
        }
    }

    public struct Drift: Sendable, Codable, Equatable {
        public var rows: Int
        /// Instances predict refused as bad input in the window's time (data quality): a refused request counts
        /// the instances it carried, 1 when it could not be read.
        public var rejectedRequests: Int
        public var windowStart: Date?
        public var windowEnd: Date?
        public var report: DriftReport

        enum CodingKeys: String, CodingKey {
            case rows, rejectedRequests = "rejected_requests", windowStart = "window_start", windowEnd = "window_end",
                 report
        }
    }

    /// What the cycle did about the judgement.
    public struct Action: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable {
            /// Nothing was needed, or nothing could be decided.
            case none
            /// A retrain was requested and the platform started it.
            case retrainStarted = "retrain_started"
            /// A retrain was needed, but one is already running.
            case retrainRunning = "retrain_running"
            /// A retrain was needed, but the model was deployed or retrained too recently.
            case coolingDown = "cooling_down"
            /// A retrain was requested, but the platform could not start it.
            case retrainFailed = "retrain_failed"
            /// A retrain was needed, but the last challenger was discarded and too few labels have come since.
            case awaitingLabels = "awaiting_labels"
        }

        public var kind: Kind
        public var detail: String
        public var eventID: Int64?
        public var execution: String?

        public init(kind: Kind, detail: String, eventID: Int64? = nil, execution: String? = nil) {
            self.kind = kind
            self.detail = detail
            self.eventID = eventID
            self.execution = execution
        }

        enum CodingKeys: String, CodingKey { case kind, detail, eventID = "event_id", execution }
    }

    public var name: String
    public var version: String
    /// Whether this is the newest version of its model to serve; only that one can ask for a retrain.
    public var serving: Bool
    public var lastPrediction: Date
    public var note: String?
    public var performance: Performance?
    public var drift: Drift?
    /// The data-quality verdicts of the drift window (with the reference profile that drift needs).
    public var dataQuality: DataQualityReport?
    /// Performance estimated on the newest predictions before their labels (CBPE, DLE), once the version's
    /// reference window is full.
    public var estimate: PerformanceEstimate?
    /// The labels of the newest predictions against the reference window's, once `MIN_LABELS` have arrived.
    public var targetDrift: FeatureDrift?
    /// The same predictions' PCA reconstruction error against the reference window's, once the reference is
    /// full and the window holds `MIN_LABELS` predictions.
    public var multivariateDrift: ReconstructionDrift?
    public var judgement: Judgement?
    public var action: Action

    enum CodingKeys: String, CodingKey {
        case name, version, serving, lastPrediction = "last_prediction", note, performance, drift,
             dataQuality = "data_quality", estimate, targetDrift = "target_drift",
             multivariateDrift = "multivariate_drift", judgement, action
    }
}

extension EvaluationReport {
    /// The report for a terminal: a block per model version.
    public var text: String {
        let unknown = unknownModels.isEmpty ? [] : [Self.unknownText(unknownModels)]
        guard !models.isEmpty else { return (unknown + ["no model version served in the evaluation windows"]).joined(separator: "\n\n") }
        return (unknown + canaries.map(\.text) + shadows.map(\.text) + models.map(\.text)).joined(separator: "\n\n")
    }

    static func unknownText(_ names: [String]) -> String {
        "EVALUATE_MODELS names \(names.map { "'\($0)'" }.joined(separator: ", ")), which the registry does not hold: "
            + "not evaluated (a typo, or a model predict has not registered yet)"
    }
}

extension ModelEvaluation {
    var text: String {
        var lines = ["\(name)@\(version)\(serving ? " (serving)" : "") — last prediction \(lastPrediction.formatted(.iso8601))"]
        if let note { lines.append("  note: \(note)") }
        if let performance {
            let metrics = performance.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(number($0.value))" }
            lines.append("  performance: \(performance.labelled) labels" +
                         (performance.invalidLabels > 0 ? " (\(performance.invalidLabels) unusable)" : "") +
                         (metrics.isEmpty ? "" : ": " + metrics.joined(separator: ", ")))
        }
        if let drift {
            let report = drift.report
            lines.append("  drift: \(report.drifted) of \(report.tested) features drifted over \(drift.rows) predictions" +
                         (drift.rejectedRequests > 0 ? " (\(drift.rejectedRequests) instances refused)" : "") +
                         "; dataset drift \(report.datasetDrift ? "YES" : "no")")
            for feature in report.features + (report.prediction.map { [$0] } ?? []) {
                lines.append("    " + feature.text)
            }
        }
        if let estimate { lines.append("  " + estimate.text) }
        if let targetDrift { lines.append("  target drift: " + targetDrift.text) }
        if let multivariateDrift { lines.append("  multivariate drift: " + multivariateDrift.text) }
        if let dataQuality {
            let breaches = dataQuality.breaches
            lines.append("  data quality: " + dataQuality.verdict)
            for check in breaches { lines.append("    " + check.text) }
        }
        if let judgement { lines.append("  policy: \(judgement.reason)") }
        lines.append("  action: \(action.kind.rawValue)\(action.detail.isEmpty ? "" : " — \(action.detail)")")
        return lines.joined(separator: "\n")
    }
}

extension FeatureDrift {
    /// One line: the feature, its test, statistic, p-value, verdict, PSI and data-quality counts.
    public var text: String {
        var parts = [feature.padding(toLength: max(feature.count, 14), withPad: " ", startingAt: 0), test.rawValue]
        if let statistic { parts.append("statistic \(number(statistic))") }
        if let pValue { parts.append("p \(number(pValue))") }
        if let adjustedPValue, adjustedPValue != pValue { parts.append("adjusted \(number(adjustedPValue))") }
        parts.append(!isTested ? "not tested" : drifted ? "DRIFT"
            : signal == true ? "drifted \(consecutive ?? 1) window(s) in a row, not yet reported" : "ok")
        if let psi, let stability { parts.append("psi \(number(psi)) (\(stability.rawValue))") }
        if let missingRate, missing > 0 || referenceMissingRate > 0 {
            parts.append("missing \(number(100 * missingRate))% (reference \(number(100 * referenceMissingRate))%)")
        }
        if invalid > 0 { parts.append("\(invalid) invalid") }
        if let outOfRange, outOfRange > 0 { parts.append("\(outOfRange) out of range") }
        if let unseen, unseen > 0 { parts.append("\(unseen) unseen categories") }
        if let note { parts.append("(\(note))") }
        return parts.joined(separator: "  ")
    }
}

private func number(_ value: Double) -> String {
    abs(value) >= 1e-3 || value == 0 ? String(format: "%.4g", value) : String(format: "%.2e", value)
}
