import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTestSupport
import CycloneTraining
import Foundation
import PostgresNIO
import Testing

/// Performance estimated before labels in the evaluation cycle: CBPE for a classifier, DLE for a regressor,
/// on the version's newest predictions against its reference window, reported, stored, and acted upon when
/// `PERFORMANCE_SOURCE` says so.
@Suite struct EstimationTests {
    /// Calibrated predictions: each row's probability of `yes` drawn from `probability`, its label from it.
    static func served(_ n: Int, seed: UInt64, labelled: Bool, probability: (inout SplitMix64) -> Double)
        -> [ServedInstance]
    {
        var generator = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            let p = probability(&generator)
            let yes = generator.uniform() < p
            return ServedInstance(input: ["tenure": .number(1)], output: .classification(classIndex: p >= 0.5 ? 1 : 0, probabilities: [1 - p, p]),
                                  label: labelled ? .string(yes ? "yes" : "no") : nil)
        }
    }

    /// A confident reference, then unlabelled predictions near the boundary: the estimate (equal to the
    /// library's CBPE on the same rows) sees the accuracy fall and the log loss grow; `realised` waits for
    /// labels, `auto` asks for a retrain on the estimate and says so in the judgement, the event and the report.
    @Test func aClassifierIsJudgedOnItsEstimateWhileLabelsAreLate() async throws {
        let model = try TestModels.binary()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            let reference = Self.served(400, seed: 1, labelled: true) { g in
                g.uniform() < 0.5 ? 0.02 + 0.2 * g.uniform() : 0.78 + 0.2 * g.uniform()
            }
            let calm = Self.served(300, seed: 3, labelled: false) { g in
                g.uniform() < 0.5 ? 0.02 + 0.2 * g.uniform() : 0.78 + 0.2 * g.uniform()
            }
            let shifted = Self.served(300, seed: 2, labelled: false) { g in 0.35 + 0.3 * g.uniform() }
            try await db.store(reference, model: model, endingAgo: 1_800)
            try await db.store(calm, model: model, endingAgo: 600)
            let environment = ["RETRAIN_TRIGGER": "loss", "PERFORMANCE_WINDOW_ROWS": "400", "RETRAIN_DATA_GROWTH": "off",
                               "RETRAIN_COOLDOWN": "0s"]
            let auto = environment.merging(["PERFORMANCE_SOURCE": "auto"]) { $1 }

            // Unlabelled predictions like the reference's: the estimate sees no change, and nothing is asked for.
            let unchanged = try #require(try await evaluator(db, auto).run().models.first)
            let calmLoss = try #require(unchanged.estimate?.loss)
            #expect(abs(calmLoss.ratio - 1) < 0.1 && calmLoss.pValue > 0.05, "\(calmLoss)")
            #expect(unchanged.judgement?.estimated == true && unchanged.judgement?.retrain == false)

            try await db.store(shifted, model: model)
            let window = Array(calm.suffix(100)) + shifted
            let waiting = try #require(try await evaluator(db, environment).run().models.first)
            let estimate = try #require(waiting.estimate)
            #expect(estimate.method == "cbpe" && estimate.rows == 400 && estimate.labelled == 0 && estimate.referenceRows == 400)
            // The library's CBPE on the same rows.
            func rows(_ served: [ServedInstance]) -> [ConfidenceBasedEstimation.Row] {
                served.map { instance in
                    guard case .classification(let predicted, let probabilities) = instance.output else { fatalError() }
                    return .init(probability: probabilities[1], predicted: predicted,
                                 label: instance.label.map { $0 == .string("yes") ? 1 : 0 })
                }
            }
            let library = try #require(ConfidenceBasedEstimation(reference: rows(reference), chunkSize: 400))
            let expected = library.estimate(rows(window))
            for (metric, value) in expected {
                let got = try #require(estimate.metrics[metric.rawValue])
                #expect(abs(got.value - value.value) < 1e-12 && abs(got.samplingError - value.samplingError) < 1e-12, "\(metric)")
            }
            let accuracy = try #require(estimate.metrics["accuracy"])
            #expect(accuracy.value < 0.75 && accuracy.reference > 0.8 && accuracy.alert, "\(accuracy)")
            let loss = try #require(estimate.loss)
            #expect(loss.ratio > 1.5 && loss.pValue < 1e-6, "\(loss)")
            #expect(waiting.judgement?.retrain == false && waiting.judgement?.estimated == nil)
            #expect(waiting.action.kind == .none)

            let acting = try #require(try await evaluator(db, auto).run().models.first)
            #expect(acting.judgement?.estimated == true && acting.judgement?.retrain == true)
            #expect(acting.judgement?.reason.hasPrefix("estimated (CBPE on 400 predictions, 0 labelled): mean loss ×") == true,
                    "\(acting.judgement?.reason ?? "")")
            #expect(acting.action.kind == .retrainStarted)
            let detail = try await db.client.query(
                "SELECT detail->>'estimated', detail->'estimate'->>'method' FROM event WHERE kind = 'retrain_requested'",
                logger: .test)
            var flags: [String] = []
            for try await (flag, method) in detail.decode((String?, String?).self) { flags.append("\(flag ?? "") \(method ?? "")") }
            #expect(flags == ["true cbpe"])
            let stored = try await EvaluationStore(client: db.client, logger: .test)
                .metricSeries(.init(model: "churn", name: "estimated_accuracy", since: .distantPast, limit: 10))
            #expect(stored.count == 3 && stored.dropFirst().allSatisfy { abs(($0.value ?? 0) - accuracy.value) < 1e-12 && $0.rows == 400 })
        }
    }

    /// Under the threshold trigger an estimate breaches only when its whole band is past the limit, and only
    /// over at least `MIN_LABELS` predictions.
    @Test func anEstimateBreachesAThresholdOnlyWithItsWholeBand() {
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        policy.threshold = .absolute(0.8)
        policy.source = .auto
        func estimate(_ value: Double, error: Double, rows: Int = 500) -> PerformanceEstimate {
            PerformanceEstimate(method: "cbpe", rows: rows, labelled: 0, referenceRows: 1_000, metrics: [
                "roc_auc": .init(value: value, samplingError: error, lower: value - 3 * error, upper: value + 3 * error,
                                 reference: 0.9, alert: true)], loss: nil)
        }
        func judge(_ estimate: PerformanceEstimate) -> Judgement {
            policy.judge(task: .binary, metrics: [:], labels: 0, holdout: nil, drift: nil, estimate: estimate)
        }
        let straddling = judge(estimate(0.78, error: 0.02))
        #expect(straddling.estimated == true && straddling.breached == false && !straddling.retrain, "\(straddling.reason)")
        let below = judge(estimate(0.70, error: 0.02))
        #expect(below.breached == true && below.retrain && below.reason.hasPrefix("estimated roc_auc 0.7 [0.64, 0.76] < 0.8"),
                "\(below.reason)")
        let few = judge(estimate(0.70, error: 0.02, rows: 50))
        #expect(few.estimated == nil && !few.retrain && few.reason.contains("fewer than the 100 needed"), "\(few.reason)")
        policy.source = .realised
        #expect(judge(estimate(0.70, error: 0.02)).estimated == nil)
    }

    /// Target drift: the labels of the newest predictions against the reference window's, once `MIN_LABELS`
    /// have arrived; calm labels do not drift, labels of a changed world do, stored as the `target` row.
    @Test func theLabelsAreComparedWithTheReferenceWindows() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 51)
            try await db.store(try regressionRows(model, stream.rows(300)), model: model, endingAgo: 3_000)
            try await db.store(try regressionRows(model, stream.rows(300)), model: model, endingAgo: 1_000)
            let environment = ["PERFORMANCE_WINDOW_ROWS": "300"]
            let calm = try #require(try await evaluator(db, environment).run().models.first?.targetDrift)
            #expect(calm.feature == "target" && calm.test == .kolmogorovSmirnov && !calm.drifted && calm.rows == 300, "\(calm)")
            try await db.store(try regressionRows(model, stream.rows(300, shift: 1, broken: true)), model: model)
            let report = try await evaluator(db, environment).run()
            let changed = try #require(report.models.first?.targetDrift)
            #expect(changed.drifted && (changed.pValue ?? 1) < 1e-6, "\(changed)")
            #expect(report.text.contains("target drift: target"), "\(report.text)")
            let stored = try await EvaluationStore(client: db.client, logger: .test)
                .driftSeries(.init(model: "demand", name: "target", since: .distantPast, limit: 10))
            #expect(stored.map(\.drifted) == [false, true])
            // Without enough labels in the window there is no verdict.
            let few = try await evaluator(db, environment.merging(["MIN_LABELS": "1000"]) { $1 }).run()
            #expect(few.models.first?.targetDrift == nil)
        }
    }

    /// Multivariate drift: x1 and x2 move together in the reference and turn their correlation around in the
    /// window, each keeping its own distribution (x2 stays standard normal). No univariate test sees it; the
    /// PCA reconstruction error does, reported and stored as the `multivariate` row.
    @Test func aTurnedCorrelationIsMultivariateDrift() async throws {
        let model = try trainedModel()
        @Sendable func correlated(_ rows: [Stream.Row], _ sign: Double) -> [Stream.Row] {
            rows.map { row in
                var row = row
                row.x2 = sign * 0.8 * row.x1 + 0.6 * row.x2
                return row
            }
        }
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 61)
            try await db.store(try regressionRows(model, correlated(stream.rows(400), 1)), model: model, endingAgo: 3_000)
            try await db.store(try regressionRows(model, correlated(stream.rows(400), 1)), model: model, endingAgo: 1_000)
            let environment = ["PERFORMANCE_WINDOW_ROWS": "400"]
            let calm = try #require(try await evaluator(db, environment).run().models.first?.multivariateDrift)
            #expect(!calm.drifted && calm.rows == 400 && calm.features == ["x1", "x2", "x3", "colour", "flag"], "\(calm)")
            try await db.store(try regressionRows(model, correlated(stream.rows(400), -1)), model: model)
            let report = try await evaluator(db, environment).run()
            let evaluation = try #require(report.models.first)
            let turned = try #require(evaluation.multivariateDrift)
            #expect(turned.drifted && turned.value > turned.upper, "\(turned)")
            let univariate = try #require(evaluation.drift?.report)
            #expect(!univariate.features.contains { ["x1", "x2"].contains($0.feature) && $0.drifted }, "\(univariate)")
            #expect(report.text.contains("multivariate drift: mean reconstruction error"), "\(report.text)")
            let stored = try await EvaluationStore(client: db.client, logger: .test)
                .driftSeries(.init(model: "demand", name: "multivariate", since: .distantPast, limit: 10))
            #expect(stored.map(\.drifted) == [false, true] && stored.allSatisfy { $0.test == "pca_reconstruction" })
        }
    }

    /// A regressor's estimate comes from DLE's loss models, close to the realised errors when the window's labels
    /// are there to compare, and stored with its band.
    @Test func aRegressorIsEstimatedByItsLossModels() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 31)
            let reference = stream.rows(600), window = stream.rows(400)
            try await db.store(try regressionRows(model, reference), model: model, endingAgo: 2_000)
            try await db.store(try regressionRows(model, window), model: model)
            let evaluation = try #require(try await evaluator(db, ["PERFORMANCE_WINDOW_ROWS": "600"]).run().models.first)
            let estimate = try #require(evaluation.estimate)
            #expect(estimate.method == "dle" && estimate.rows == 400 && estimate.labelled == 400)
            let mae = try #require(estimate.metrics["mae"]), rmse = try #require(estimate.metrics["rmse"])
            let realised = try window.map { abs($0.y - (try predicted(model, $0))) }.reduce(0, +) / 400
            #expect(abs(mae.value - realised) < 0.1 * realised, "estimated MAE \(mae.value), realised \(realised)")
            #expect(!mae.alert && mae.lower < mae.value && mae.value < mae.upper && rmse.value >= mae.value)
            let stored = try await db.client.query(
                "SELECT name, lower, upper FROM metric WHERE name LIKE 'estimated_%' ORDER BY name", logger: .test)
            var names: [String] = []
            for try await (name, lower, upper) in stored.decode((String, Double?, Double?).self) {
                names.append(name)
                #expect(lower != nil && upper != nil && lower! <= upper!)
            }
            #expect(names == ["estimated_mae", "estimated_rmse"])

            // ESTIMATION_MAX_ROWS: each side read as an evenly spaced sample (every k-th row and the newest), the
            // sides' sizes known, and the estimate made from the sample, close to the whole window's.
            let full = try await EvaluationWindows(client: db.client, logger: .test)
                .estimationRows(of: model, referenceRows: 600, bounds: WindowBounds(rows: 1_000, maxAge: .seconds(86_400)))
            let sampled = try await EvaluationWindows(client: db.client, logger: .test)
                .estimationRows(of: model, referenceRows: 600, bounds: WindowBounds(rows: 1_000, maxAge: .seconds(86_400)),
                                sample: 100)
            #expect(full.referenceCount == 600 && full.windowCount == 400 && full.reference.count == 600 && full.window.count == 400)
            #expect(sampled.referenceCount == 600 && sampled.windowCount == 400)
            #expect(sampled.reference.count == 101 && sampled.window.count == 101, "every 6th and every 4th, and the newest")
            #expect(sampled.windowStart == full.windowStart && sampled.windowEnd == full.windowEnd)
            #expect(sampled.referenceEnd == full.referenceEnd)
            guard case .numeric(let all) = full.window.target.values, case .numeric(let some) = sampled.window.target.values
            else { Issue.record("numeric labels"); return }
            #expect(some == stride(from: 0, to: 400, by: 4).map { all[$0] } + [all[399]])
            let small = try #require(try await evaluator(db, ["PERFORMANCE_WINDOW_ROWS": "600", "ESTIMATION_MAX_ROWS": "200"])
                .run().models.first?.estimate)
            #expect(small.rows == 201 && abs(small.metrics["mae"]!.value - mae.value) < 0.15 * mae.value,
                    "estimated MAE \(small.metrics["mae"]!.value) from 200 rows, \(mae.value) from 400")
        }
    }
}
