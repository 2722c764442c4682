import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import Foundation
import Logging
import PostgresNIO

/// One evaluation cycle, the loop's judge: for every model version that served within the windows it
/// computes the performance and drift windows in PostgreSQL, writes the `metric` and `drift` rows, applies
/// the policy, raises alerts and, when the serving version needs it, claims and starts one retrain.
public struct Evaluator: Sendable {
    public var settings: EvaluationSettings
    public let windows: EvaluationWindows
    public let store: EvaluationStore
    public let registry: ModelRegistry
    public let platform: any Platform
    public let alerts: AlertNotifier
    public let logger: Logger
    /// The fewest predictions a window one season earlier needs to stand in for the training profile.
    public static let seasonalRows = 100
    /// Performance estimated before labels; it keeps a regressor's loss models from cycle to cycle.
    public let estimator = PerformanceEstimator()

    public init(client: PostgresClient, settings: EvaluationSettings, platform: any Platform, alerts: AlertNotifier,
                logger: Logger)
    {
        self.settings = settings
        windows = EvaluationWindows(client: client, logger: logger)
        store = EvaluationStore(client: client, logger: logger)
        registry = ModelRegistry(client: client, logger: logger)
        self.platform = platform
        self.alerts = alerts
        self.logger = logger
    }

    public func run(now: Date = Date()) async throws -> EvaluationReport {
        let oldest = max(settings.performance.maxAge, settings.drift.maxAge)
        let versions = try await windows.servedVersions(since: now.addingTimeInterval(-oldest.seconds))
            .filter { settings.models?.contains($0.name) ?? true }
        // Challengers first: a canary or shadow judged this cycle changes which version is live.
        var canaries: [CanaryDecision] = [], shadows: [ShadowDecision] = []
        var challengerRunning: Set<String> = []
        for name in Set(versions.map(\.name)).sorted() {
            if let decision = try await judgeCanary(of: name, now: now) {
                canaries.append(decision)
                if decision.action == .waiting || decision.action == .failed { challengerRunning.insert(name) }
            }
            if let decision = try await judgeShadow(of: name, now: now) {
                shadows.append(decision)
                if decision.action == .waiting || decision.action == .failed { challengerRunning.insert(name) }
            }
        }
        var servingVersions: [String: String] = [:]
        for (name, served) in Dictionary(grouping: versions, by: \.name) {
            let live = try await registry.version(of: name, status: .live)
            servingVersions[name] = ModelRegistry.servingVersion(
                live: live.map { [($0.artifact.version, $0.since)] } ?? [],
                predicted: served.map { ($0.version, $0.lastPrediction) })
        }
        var models: [ModelEvaluation] = []
        for version in versions {
            let serving = servingVersions[version.name] == version.version
            var evaluation = try await evaluate(version, serving: serving && !challengerRunning.contains(version.name),
                                                now: now)
            if serving, challengerRunning.contains(version.name), evaluation.judgement?.retrain == true {
                evaluation.action.detail = "a challenger (canary or shadow) is being judged; its verdict comes first"
            }
            evaluation.serving = serving
            models.append(evaluation)
        }
        var unknown: [String] = []
        if let named = settings.models {
            let known = try await registry.known(named.sorted())
            unknown = named.filter { !known.contains($0) }.sorted()
            if !unknown.isEmpty { logger.warning("\(EvaluationReport.unknownText(unknown))") }
        }
        return EvaluationReport(evaluatedAt: now, models: models, canaries: canaries, shadows: shadows,
                                unknownModels: unknown)
    }

    private func evaluate(_ served: ServedVersion, serving: Bool, now: Date) async throws -> ModelEvaluation {
        var evaluation = ModelEvaluation(name: served.name, version: served.version, serving: serving,
                                         lastPrediction: served.lastPrediction,
                                         action: .init(kind: .none, detail: ""))
        let artifact: ModelArtifact
        do {
            guard let registered = try await registry.artifact(name: served.name, version: served.version) else {
                evaluation.note = "this version is not in the model registry; predict registers the model it serves when it starts"
                return evaluation
            }
            artifact = registered
        } catch let error as ArtifactError {
            evaluation.note = "the registered artifact does not load: \(error)"
            return evaluation
        }

        // The two windows are independent reads: run them side by side on two connections.
        async let performanceWindow = windows.performance(of: artifact, bounds: settings.performance, now: now)
        async let driftWindow = artifact.profile == nil
            ? nil : windows.drift(of: artifact, bounds: settings.drift, now: now)
        let performance = try await performanceWindow
        try await store.record(performance, name: served.name, version: served.version, at: now)
        evaluation.performance = .init(labelled: performance.labelled, invalidLabels: performance.invalidLabels,
                                       windowStart: performance.start, windowEnd: performance.end,
                                       metrics: performance.metrics)

        var driftReport: DriftReport?, dataQuality: DataQualityReport?
        if let profile = artifact.profile, let window = try await driftWindow {
            let options = settings.driftOptions
            // A seasonal reference: the same window one season earlier, where the version served enough then.
            var seasonal: DriftWindow?, seasonNote: String?
            if let season = settings.driftSeason {
                let then = now.addingTimeInterval(-season.seconds)
                let earlier = try await windows.drift(of: artifact, bounds: settings.drift, now: then, until: then)
                if earlier.rows >= Self.seasonalRows {
                    seasonal = earlier
                } else {
                    seasonNote = "the same window \(season.settingText) earlier holds \(earlier.rows) predictions, fewer than \(Self.seasonalRows): compared with the training profile"
                }
            }
            var report = profile.drift(against: window.columns, prediction: window.prediction,
                                       order: artifact.features.map(\.name), options: options,
                                       seasonal: seasonal.map { ($0.columns, $0.prediction) })
            if let seasonal, let season = settings.driftSeason {
                report.reference = "the same window \(season.settingText) earlier (\(seasonal.rows) predictions)"
            } else {
                report.reference = seasonNote
            }
            if options.persistence > 1 {
                let columns = report.features.map(\.feature) + (report.prediction.map { [$0.feature] } ?? [])
                let previous = try await store.driftRuns(name: served.name, version: served.version, columns: columns,
                                                         windows: options.persistence - 1)
                report.applyPersistence(previous: previous, options: options)
            }
            // Refusals count for the version whatever profile its rows were counted against: so do the rows.
            let quality = report.dataQuality(refused: window.rejected, rows: window.rows + window.otherProfileRows,
                                             options: settings.dataQuality)
            try await store.record(report, window: window, name: served.name, version: served.version, at: now,
                                   datasetShare: options.datasetShare, dataQuality: quality)
            evaluation.drift = .init(rows: window.rows, rejectedRequests: window.rejected, windowStart: window.start,
                                     windowEnd: window.end, report: report)
            evaluation.dataQuality = quality
            dataQuality = quality
            if window.otherProfileRows > 0 {
                evaluation.note = "\(window.otherProfileRows) predictions in the drift window were counted against another reference profile than the registered one (the model file predict serves differs from the registry's); they are left out of drift"
            }
            driftReport = report
        } else {
            evaluation.note = "the model has no reference profile, so drift is not measured (add one with cyclone profile)"
        }

        // Performance estimated before labels (CBPE, DLE): the newest predictions against the reference window.
        let referenceSize = settings.performance.rows
        let estimationRows = try await windows.estimationRows(of: artifact, referenceRows: referenceSize,
                                                              bounds: settings.performance,
                                                              sample: settings.estimationSample, now: now)
        let estimate = await estimator.estimate(artifact, rows: estimationRows, referenceSize: referenceSize)
        if let estimate {
            try await store.record(estimate, name: served.name, version: served.version, at: now)
            evaluation.estimate = estimate
        }
        // Target drift: the labels that have arrived for those predictions against the reference's labels.
        if var target = FeatureDrift.target(reference: estimationRows.reference.target.values,
                                            current: estimationRows.window.target.values,
                                            minimumLabels: settings.policy.minimumLabels, options: settings.driftOptions)
        {
            if settings.driftOptions.persistence > 1 {
                target.applyPersistence(
                    previous: try await store.driftRuns(name: served.name, version: served.version, columns: ["target"],
                                                        windows: settings.driftOptions.persistence - 1),
                    options: settings.driftOptions)
            }
            try await store.record(target, name: served.name, version: served.version,
                                   start: estimationRows.windowStart, end: estimationRows.windowEnd, at: now)
            evaluation.targetDrift = target
        }
        // Multivariate drift: the same rows' PCA reconstruction error against the reference window's.
        if estimationRows.referenceCount >= referenceSize,
           estimationRows.window.served.count >= settings.policy.minimumLabels,
           var multivariate = ReconstructionDrift(reference: estimationRows.reference.features,
                                                  window: estimationRows.window.features)
        {
            if settings.driftOptions.persistence > 1 {
                multivariate.applyPersistence(
                    previous: try await store.driftRuns(name: served.name, version: served.version,
                                                        columns: [ReconstructionDrift.column],
                                                        windows: settings.driftOptions.persistence - 1),
                    options: settings.driftOptions)
            }
            try await store.record(multivariate.row, detail: multivariate.detail, name: served.name,
                                   version: served.version, start: estimationRows.windowStart,
                                   end: estimationRows.windowEnd, at: now)
            evaluation.multivariateDrift = multivariate
        }

        // The loss tests: the window's per-row losses against the version's reference window (its first full
        // one), and the newest window's against the loss its holdout promised, except for a while after a
        // challenger to it was turned down (a model trained since did no better: what the holdout promised
        // was out of reach; the wait doubles with each turn-down).
        var lossShift: LossShift?, holdoutLossShift: LossShift?, referenceLabels = 0
        if settings.policy.trigger == .loss {
            let losses = try await windows.losses(of: artifact, rows: referenceSize, bounds: settings.performance, now: now)
            referenceLabels = losses.reference.count
            if referenceLabels == referenceSize { lossShift = LossShift(current: losses.current, reference: losses.reference) }
            if let expected = artifact.training?.holdoutLoss,
               EvaluationWindows.holdoutTestArmed(turnDowns: losses.turnDowns,
                                                  labelsSinceTurnDown: losses.labelsSinceTurnDown, window: referenceSize)
            {
                holdoutLossShift = LossShift(current: losses.newest, expected: expected)
            }
        }
        // New data since training, for the data-growth challenge: counted for the serving version only.
        var newData: (labels: Int, trainingRows: Int)?
        if serving, settings.policy.trigger == .loss, let growth = settings.policy.dataGrowth,
           let trainingRows = artifact.training?.rows, trainingRows > 0
        {
            // At least a performance window of labels, whatever the training rows: a challenger needs new rows
            // to learn from and to be judged on.
            let enough = max(Int(min((growth - 1) * Double(trainingRows), 1e9).rounded(.up)), referenceSize,
                             settings.policy.minimumLabels)
            newData = try await store.labelsSinceTraining(name: served.name, version: served.version, enough: enough)
                .map { ($0, trainingRows) }
        }
        let judgement = settings.policy.judge(task: artifact.task, metrics: performance.metrics,
                                              labels: performance.labels,
                                              holdout: artifact.training?.holdoutMetrics, drift: driftReport,
                                              dataQuality: dataQuality, lossShift: lossShift,
                                              holdoutLossShift: holdoutLossShift, referenceLabels: referenceLabels,
                                              referenceSize: referenceSize, newData: newData, estimate: estimate)
        evaluation.judgement = judgement
        await raiseAlerts(for: evaluation, judgement: judgement)
        guard judgement.retrain else { return evaluation }
        guard serving else {
            evaluation.action.detail = "a newer version serves; only it can ask for a retrain"
            return evaluation
        }
        // After a discarded challenger, a new one only on a window of fresh labels: the same evidence would
        // ask for the same retrain again, day after day.
        if let discard = try await store.sinceDiscard(name: served.name, version: served.version, enough: referenceSize),
           discard.labels < referenceSize
        {
            evaluation.action = .init(kind: .awaitingLabels, detail: "the last challenger was discarded at \(discard.at.formatted(.iso8601)); \(discard.labels) of the \(referenceSize) labels needed since (PERFORMANCE_WINDOW_ROWS)")
            return evaluation
        }
        evaluation.action = try await requestRetrain(artifact, reason: judgement.reason, judgement: judgement,
                                                     estimate: judgement.estimated == true ? estimate : nil)
        return evaluation
    }

    private func requestRetrain(_ artifact: ModelArtifact, reason: String, judgement: Judgement,
                                estimate: PerformanceEstimate?) async throws -> ModelEvaluation.Action
    {
        var detail: JSONValue = .object([
            "reason": .string(reason), "metric": .string(judgement.metric),
            "value": judgement.value.map(JSONValue.number) ?? .null,
            "limit": judgement.limit.map(JSONValue.number) ?? .null,
            "labels": .number(Double(judgement.labels)), "dataset_drift": .bool(judgement.datasetDrift),
            "estimated": .bool(judgement.estimated == true),
        ])
        if let estimate, case .object(var fields) = detail {
            // The figures the decision rested on: the estimate's method, rows and expected loss.
            fields["estimate"] = .object([
                "method": .string(estimate.method), "rows": .number(Double(estimate.rows)),
                "labelled": .number(Double(estimate.labelled)),
                "estimated_loss": estimate.loss.map { .number($0.estimated) } ?? .null,
                "reference_loss": estimate.loss.map { .number($0.reference) } ?? .null,
                "loss_ratio": estimate.loss.flatMap { $0.ratio.isFinite ? .number($0.ratio) : nil } ?? .null,
                "p_value": estimate.loss.map { .number($0.pValue) } ?? .null,
            ])
            detail = .object(fields)
        }
        let claim = try await store.claimRetrain(name: artifact.name, version: artifact.version,
                                                 cooldown: settings.policy.cooldown,
                                                 timeout: settings.retrainTimeout, detail: detail)
        switch claim {
        case .running(let since):
            return .init(kind: .retrainRunning, detail: "a retrain requested at \(since.formatted(.iso8601)) has not finished")
        case .coolingDown(let until):
            return .init(kind: .coolingDown, detail: "no retrain before \(until.formatted(.iso8601)) (RETRAIN_COOLDOWN)")
        case .claimed(let eventID):
            let request = RetrainRequest(modelName: artifact.name, modelVersion: artifact.version, reason: reason,
                                         eventID: eventID, settings: settings.trainingWindow)
            do {
                let execution = try await platform.startRetrain(request)
                if let exitStatus = execution.exitStatus { watch(exitStatus, of: request) }
                try await store.event(.retrainStarted, name: artifact.name, version: artifact.version, detail: .object([
                    "request": .number(Double(eventID)), "execution": .string(execution.id),
                    "detail": .string(execution.detail),
                ]))
                logger.notice("retrain started", metadata: [
                    "model": "\(artifact.name)", "version": "\(artifact.version)", "execution": "\(execution.id)",
                    "reason": "\(reason)",
                ])
                return .init(kind: .retrainStarted, detail: execution.detail, eventID: eventID, execution: execution.id)
            } catch {
                let message = String(describing: error)
                try await store.event(.retrainFailed, name: artifact.name, version: artifact.version, detail: .object([
                    "request": .number(Double(eventID)), "error": .string(message),
                ]))
                await alerts.send(Alert(kind: .retrainFailed, modelName: artifact.name, modelVersion: artifact.version,
                                        message: "the retrain of \(artifact.name) could not be started: \(message)"))
                return .init(kind: .retrainFailed, detail: message, eventID: eventID)
            }
        }
    }

    /// Once a retrain the platform can watch has exited, records a crash it could not record itself (a
    /// signal, a trap), so that the loop need not wait `RETRAIN_TIMEOUT` to try again.
    private func watch(_ exitStatus: @escaping @Sendable () async -> Int32, of request: RetrainRequest) {
        let (store, alerts, logger) = (store, alerts, logger)
        Task.detached {
            let status = await exitStatus()
            guard status > 0 else { return }  // 0: it recorded its end; -1: reaped elsewhere, nothing known
            let reason = status > 128 ? "the retrain process was killed by signal \(status - 128)"
                                      : "the retrain process exited with status \(status)"
            do {
                guard try await store.retrainEnded(request: request.eventID, name: request.modelName,
                                                   version: request.modelVersion, reason: reason)
                else { return }
                logger.error("retrain failed", metadata: ["model": "\(request.modelName)", "reason": "\(reason)"])
                await alerts.send(Alert(kind: .retrainFailed, modelName: request.modelName,
                                        modelVersion: request.modelVersion,
                                        message: "the retrain of \(request.modelName) failed: \(reason)"))
            } catch {
                logger.error("recording a failed retrain failed", metadata: [
                    "model": "\(request.modelName)", "reason": "\(reason)", "error": "\(String(reflecting: error))"])
            }
        }
    }

    private func raiseAlerts(for evaluation: ModelEvaluation, judgement: Judgement) async {
        let name = evaluation.name, version = evaluation.version
        if judgement.breached == true {
            await alerts.send(Alert(
                kind: .performanceBreach, modelName: name, modelVersion: version,
                message: "\(name)@\(version): \(judgement.reason)",
                fields: ["metric": .string(judgement.metric), "value": judgement.value.map(JSONValue.number) ?? .null,
                         "estimated": .bool(judgement.estimated == true),
                         "threshold": judgement.limit.map(JSONValue.number) ?? .null,
                         "labels": .number(Double(judgement.labels))]))
        }
        if let quality = evaluation.dataQuality, let summary = quality.summary {
            let breaches = quality.breaches
            await alerts.send(Alert(
                kind: .dataQuality, modelName: name, modelVersion: version,
                message: "\(name)@\(version): data quality: \(summary)",
                fields: ["breaches": .array(breaches.map { check in
                    .object(["feature": .string(check.feature), "check": .string(check.check.rawValue),
                             "count": .number(Double(check.count)), "of": .number(Double(check.of)),
                             "share": check.share.map(JSONValue.number) ?? .null,
                             "reference_share": .number(check.referenceShare),
                             "threshold": .number(check.threshold)])
                })]))
        }
        // The labels or the predictions, one column tested as a feature is.
        func columnDrift(_ kind: Alert.Kind, _ what: String, _ column: FeatureDrift) -> Alert {
            Alert(kind: kind, modelName: name, modelVersion: version,
                  message: "\(name)@\(version): \(what) drifted (\(column.test.rawValue) \(column.statistic ?? 0))",
                  fields: ["test": .string(column.test.rawValue), "statistic": column.statistic.map(JSONValue.number) ?? .null])
        }
        if let target = evaluation.targetDrift, target.drifted {
            await alerts.send(columnDrift(.targetDrift, "the labels", target))
        }
        if let multivariate = evaluation.multivariateDrift, multivariate.drifted {
            await alerts.send(Alert(
                kind: .multivariateDrift, modelName: name, modelVersion: version,
                message: "\(name)@\(version): the features drifted together: " + multivariate.text,
                fields: ["reconstruction_error": .number(multivariate.value), "upper": .number(multivariate.upper),
                         "reference": .number(multivariate.reference)]))
        }
        guard let drift = evaluation.drift?.report else { return }
        if drift.datasetDrift {
            let features = drift.features.filter(\.drifted).map(\.feature)
            await alerts.send(Alert(
                kind: .datasetDrift, modelName: name, modelVersion: version,
                message: "\(name)@\(version): \(drift.drifted) of \(drift.tested) features drifted (\(features.joined(separator: ", ")))",
                fields: ["drifted_share": drift.driftedShare.map(JSONValue.number) ?? .null,
                         "features": .array(features.map(JSONValue.string))]))
        }
        if let prediction = drift.prediction, prediction.drifted {
            await alerts.send(columnDrift(.predictionDrift, "the predictions", prediction))
        }
    }
}
