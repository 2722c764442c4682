import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTraining
import Foundation
import Logging
import PostgresNIO

/// One retrain, stage by stage: read the live model and its labelled rows, train and judge a candidate,
/// register it. Cancellation (SIGTERM) is honoured between stages; the registration is one statement, so a
/// run stopped at any point leaves either a whole `model` row or none, and the live model untouched.
struct RetrainJob: Sendable {
    let settings: RetrainSettings
    let client: PostgresClient
    let platform: any Platform
    let logger: Logger

    init(settings: RetrainSettings, client: PostgresClient, platform: (any Platform)? = nil, logger: Logger) throws {
        self.settings = settings
        self.client = client
        self.platform = try platform ?? settings.platform.platform()
        self.logger = logger
    }

    /// What the run did, for the event trail and the one line it prints.
    struct Report: Sendable, Equatable {
        var version: String
        var accepted: Bool
        var reason: String
        var rows: Int
        var readSeconds: Double
        var trainSeconds: Double
        var registerSeconds: Double
        /// Where an accepted candidate was deployed; `nil` when it was not (rejected, or recording only).
        var deployment: String?

        var line: String {
            "\(accepted ? "accepted" : "rejected") candidate \(version) trained on \(rows) rows: \(reason)"
                + (deployment.map { "; deployed: \($0)" } ?? (accepted ? "; not deployed (no MODEL_DIR)" : ""))
        }
    }

    func run() async throws -> Report {
        let registry = ModelRegistry(client: client, logger: logger)
        let clock = ContinuousClock()
        let started = clock.now
        guard let live = try await registry.artifact(name: settings.modelName, version: settings.parentVersion) else {
            throw RetrainError("\(settings.modelName)@\(settings.parentVersion) is not in the model registry")
        }
        try Task.checkCancellation()
        let rows = try await LabelledRows.read(model: live, bounds: settings.windows.read(holdout: settings.options.holdout), client: client, logger: logger)
        guard rows.start != nil, rows.end != nil else {
            throw RetrainError("no labelled predictions of \(live.name) in the training window (TRAINING_WINDOW_MAX_AGE)")
        }
        let read = clock.now
        try Task.checkCancellation()

        let outcome: RetrainOutcome
        do {
            // Numbered when registered: "next" is a placeholder until then.
            outcome = try Retrainer(options: settings.options).retrain(live, on: rows.predictions, version: "next")
        } catch {
            throw RetrainError("\(error)")
        }
        let trained = clock.now
        try Task.checkCancellation()

        // From here on cancellation (SIGTERM) does not reach: a registered candidate is reported and, if
        // accepted, deployed and recorded, rather than left half-way (an unstructured task inherits no
        // cancellation; the job's main gives it the time Cloud Run leaves).
        return try await Task {
            let candidate = try await registry.registerRetrained(
                outcome.candidate, status: outcome.accepted ? .candidate : .rejected,
                window: (rows.times[outcome.trainedOn].min()!, rows.times[outcome.trainedOn].max()!),
                metric: outcome.metric.rawValue, candidateMetrics: outcome.candidateMetrics,
                liveMetrics: outcome.liveMetrics, comparedRows: outcome.comparedRows, reason: outcome.reason)
            let version = candidate.version
            var report = Report(version: version, accepted: outcome.accepted, reason: outcome.reason,
                                rows: outcome.trainingRows, readSeconds: (read - started).seconds,
                                trainSeconds: (trained - read).seconds, registerSeconds: (clock.now - trained).seconds)
            let store = EvaluationStore(client: client, logger: logger)
            try await store.event(
                .retrainFinished, name: live.name, version: version,
                detail: .object([
                    "parent": .string(live.version), "status": .string(outcome.accepted ? "candidate" : "rejected"),
                    "reason": .string(outcome.reason), "metric": .string(outcome.metric.rawValue),
                    "candidate": .object(outcome.candidateMetrics.mapValues { .number($0) }),
                    "live": .object(outcome.liveMetrics.mapValues { .number($0) }),
                    "training_rows": .number(Double(outcome.trainingRows)),
                    "windows": .array(outcome.windows.map { window in
                        var entry: [String: JSONValue] = ["family": .string(window.family), "rows": .number(Double(window.rows)),
                                                          "value": window.value.map(JSONValue.number) ?? .null]
                        if let skipped = window.skipped { entry["skipped"] = .string(skipped) }
                        return .object(entry)
                    }),
                    "chosen_window": .number(Double(outcome.chosenWindow)), "chosen_family": .string(outcome.chosenFamily),
                    "refitted": .bool(outcome.refitted),
                    "compared_rows": .number(Double(outcome.comparedRows)),
                    "request_event": settings.eventID.map { .number(Double($0)) } ?? .null,
                ]))
            guard outcome.accepted else { return report }

            // Deploy first, then record (`Rollout`): a run killed in between leaves a candidate that serves until
            // the next deployment, never `live` naming a version whose file or revision never came.
            let (percent, role) = (settings.platform.canaryPercent, settings.platform.newVersionRole)
            let deployment: Deployment
            do {
                let rollout = Rollout(platform: platform, registry: registry, store: store)
                guard let deployed = try await rollout.deploy(candidate, parent: live, as: role,
                                                              canaryPercent: percent)
                else { return report }
                deployment = deployed
            } catch let failed as Rollout.DeploymentFailed {
                throw RetrainError("candidate \(version) is registered but its deployment failed: \(failed)")
            }
            report.deployment = switch role {
            case .live: deployment.detail
            case .canary: "as a canary for \(percent) % of requests, " + deployment.detail
            case .shadow: "as the live version's shadow, " + deployment.detail
            }
            return report
        }.value
    }
}

/// A retrain that cannot go on, in one sentence.
struct RetrainError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
