import Configuration
import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneRuntime
import CycloneMonitoring
import CycloneStore
import CycloneTestSupport
import CycloneTraining
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

/// A synthetic regression stream: x1, x2, x3 numeric, colour categorical, flag boolean;
/// y = 3·x1 − 2·x2 + x3 + colour effect + noise.
struct Stream {
    var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    struct Row {
        var x1, x2, x3: Double
        var colour: String
        var flag: Bool
        var y: Double
        var instance: JSONValue {
            ["x1": .number(x1), "x2": .number(x2), "x3": .number(x3), "colour": .string(colour), "flag": .bool(flag)]
        }
    }

    /// `shift` moves x1; `broken` replaces the relationship, so a model trained before no longer fits.
    mutating func rows(_ n: Int, shift: Double = 0, broken: Bool = false) -> [Row] {
        (0..<n).map { _ in
            let x1 = generator.normal() + shift, x2 = generator.normal(), x3 = generator.normal()
            let colour = ["red", "green", "blue"][Int(generator.uniform() * 3)]
            let flag = generator.uniform() < 0.3
            let effect = ["red": 1.0, "green": 0.0, "blue": -1.0][colour]!
            let y = broken ? -3 * x1 + 2 * x2 + 5 * generator.normal() : 3 * x1 - 2 * x2 + x3 + effect + 0.5 * generator.normal()
            return Row(x1: x1, x2: x2, x3: x3, colour: colour, flag: flag, y: y)
        }
    }
}

/// The stream's first model, trained on `rows` reference rows with Cyclone's own trainer, the newest `holdout`
/// share of them held out (and its losses there kept).
func trainedModel(rows: Int = 600, holdout: Double = 0) throws -> ModelArtifact {
    var stream = Stream(seed: 1)
    let training = stream.rows(rows)
    let table = FeatureTable(columns: [
        .init(name: "x1", values: .numeric(training.map(\.x1))), .init(name: "x2", values: .numeric(training.map(\.x2))),
        .init(name: "x3", values: .numeric(training.map(\.x3))),
        .init(name: "colour", values: .categorical(training.map(\.colour))),
        .init(name: "flag", values: .boolean(training.map { $0.flag ? 1 : 0 })),
    ])
    var options = TrainingOptions(family: .ridge)
    options.holdout = holdout
    return try Trainer(options: options).train(
        name: "demand", version: "1", features: table, target: .init(name: "y", values: .numeric(training.map(\.y))))
}

/// What predict would have stored for `row`.
func predicted(_ model: ModelArtifact, _ row: Stream.Row) throws -> Double {
    var notes = InstanceEncoder.Notes()
    let x = try InstanceEncoder(features: model.features, preprocessing: model.preprocessing)
        .encode(row.instance, path: "", notes: &notes)
    guard case .value(let value) = model.predictor.predict(x) else { fatalError("not a regression") }
    return value
}

func regressionRows(_ model: ModelArtifact, _ rows: [Stream.Row]) throws -> [ServedInstance] {
    try rows.map { ServedInstance(input: $0.instance, output: .value(try predicted(model, $0)), label: .number($0.y)) }
}

/// An evaluator on `db`. The threshold trigger unless `environment` says otherwise: these tests provoke their
/// retrains with a broken stream, which drives R² below 0.4 at once (`LossTriggerTests` has the loss trigger).
func evaluator(_ db: TestDatabase, _ environment: [String: String] = [:], platform: any Platform = LocalPlatform(),
               alerts: AlertNotifier? = nil) throws -> Evaluator
{
    let environment = ["RETRAIN_TRIGGER": "threshold"].merging(environment) { $1 }
    let settings = try EvaluationSettings(reader: ConfigReader.cyclone(environment: environment))
    return Evaluator(client: db.client, settings: settings, platform: platform,
                     alerts: alerts ?? AlertNotifier(webhook: settings.alertWebhook, logger: .test), logger: .test)
}

/// What a test webhook received: every POST counted, the bodies it took kept in order.
final class Webhook: Sendable {
    let bodies = Mutex<[String]>([])
    let calls = Mutex(0)

    /// The bodies taken, as JSON objects.
    func objects() throws -> [[String: Any]] {
        try bodies.withLock { $0 }.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
    }
}

/// A webhook on a free port for the length of `body`, which gets its URL and what it receives: it refuses the
/// first `refusing` posts with 503 and takes the rest.
@discardableResult
func withWebhook(refusing: Int = 0, _ body: @Sendable (String, Webhook) async throws -> Void) async throws -> Webhook {
    let webhook = Webhook()
    let router = Router()
    router.post("/alerts") { request, _ -> HTTPResponse.Status in
        let text = String(buffer: try await request.body.collect(upTo: 1 << 20))
        guard webhook.calls.withLock({ $0 += 1; return $0 }) > refusing else { return .serviceUnavailable }
        webhook.bodies.withLock { $0.append(text) }
        return .noContent
    }
    let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    try await receiver.test(.live) { client in
        try await body("http://127.0.0.1:\(try #require(client.port))/alerts", webhook)
    }
    return webhook
}

/// A new model folder with `live` serving and `canary` beside it, as the local platform deploys them.
func deployCanary(_ canary: ModelArtifact, beside live: ModelArtifact) async throws -> (String, LocalPlatform) {
    let folder = TestFiles.folder.appendingPathComponent("cyclone-canary-\(UUID().uuidString)").path
    let platform = LocalPlatform(modelDirectory: folder)
    _ = try await platform.deploy(live, as: .live)
    _ = try await platform.deploy(canary, as: .canary)
    return (folder, platform)
}

/// Registers `live` as live and `canary` as its canary.
func registerCanary(_ canary: ModelArtifact, beside live: ModelArtifact, _ db: TestDatabase) async throws {
    let registry = ModelRegistry(client: db.client, logger: .test)
    _ = try await registry.register(live, status: .live)
    _ = try await registry.register(canary, status: .canary)
}

func events(_ db: TestDatabase, kind: String) async throws -> Int {
    let rows = try await db.client.query("SELECT count(*)::int FROM event WHERE kind = \(kind)", logger: .test)
    for try await count in rows.decode(Int.self) { return count }
    return 0
}

@Suite struct EvaluatorTests {
    /// A stable hour, then a shifted and broken one: drift on x1 (and the prediction) only, and the retrain asked
    /// for exactly when R² falls below 0.4, with the SQL metrics equal to scikit-learn-checked Swift ones.
    @Test func aKnownShiftIsFoundWhereItIsAndTheThresholdIsCrossedWhereExpected() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 2)
            let environment = ["PERFORMANCE_WINDOW_ROWS": "400", "DRIFT_WINDOW_ROWS": "400", "RETRAIN_COOLDOWN": "0s"]

            let stable = stream.rows(400)
            try await db.store(try regressionRows(model, stable), model: model, endingAgo: 1_200)
            let first = try await evaluator(db, environment).run()
            let calm = try #require(first.models.first)
            #expect(first.models.count == 1 && calm.serving && calm.note == nil)
            let calmR2 = try #require(RegressionMetrics(labels: stable.map(\.y),
                                                        predictions: try stable.map { try predicted(model, $0) }).r2)
            expectClose(try #require(calm.performance?.metrics["r2"]), calmR2, relative: 1e-9, "r2 from SQL")
            #expect(calmR2 >= 0.4)
            #expect(calm.drift?.report.features.filter(\.drifted).map(\.feature) == [])
            #expect(calm.drift?.report.features.map(\.test) == [.kolmogorovSmirnov, .kolmogorovSmirnov, .kolmogorovSmirnov,
                                                                 .chiSquared, .zTest])
            #expect(calm.judgement?.breached == false && calm.action.kind == .none)
            #expect(try await events(db, kind: "retrain_requested") == 0)

            let shifted = stream.rows(400, shift: 1.5, broken: true)
            try await db.store(try regressionRows(model, shifted), model: model)
            let second = try await evaluator(db, environment).run()
            let alarmed = try #require(second.models.first)
            let r2 = try #require(RegressionMetrics(labels: shifted.map(\.y),
                                                    predictions: try shifted.map { try predicted(model, $0) }).r2)
            expectClose(try #require(alarmed.performance?.metrics["r2"]), r2, relative: 1e-9, "r2 from SQL")
            #expect(r2 < 0.4)
            let drift = try #require(alarmed.drift?.report)
            #expect(drift.features.filter(\.drifted).map(\.feature) == ["x1"])
            #expect(drift.prediction?.drifted == true)
            #expect(!drift.datasetDrift, "one feature of five is not half")
            #expect(alarmed.judgement?.breached == true)
            #expect(alarmed.action.kind == .retrainStarted)
            #expect(try await events(db, kind: "retrain_requested") == 1)
            #expect(try await events(db, kind: "retrain_started") == 1)

            // Both cycles left their time series.
            let metrics = try await EvaluationStore(client: db.client, logger: .test)
                .metricSeries(.init(model: "demand", name: "r2", since: .distantPast, limit: 100))
            #expect(metrics.map(\.rows) == [400, 400])
            let x1 = try await EvaluationStore(client: db.client, logger: .test)
                .driftSeries(.init(model: "demand", name: "x1", since: .distantPast, limit: 100))
            #expect(x1.map(\.drifted) == [false, true])
        }
    }

    @Test func belowTheMinimumLabelsNothingIsDecided() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 3)
            try await db.store(try regressionRows(model, stream.rows(150, broken: true)), model: model)
            let report = try await evaluator(db, ["MIN_LABELS": "151"]).run()
            let evaluation = try #require(report.models.first)
            #expect(evaluation.performance?.labelled == 150)
            #expect(evaluation.judgement?.breached == nil && evaluation.action.kind == .none)
            #expect(evaluation.judgement?.reason == "150 labels, fewer than the 151 needed for a decision")
            #expect(try await events(db, kind: "retrain_requested") == 0)
        }
    }

    /// Two evaluators at once (two Cloud Run instances) start one retrain; the next cycle sees it running; a
    /// deploy starts the cooldown.
    @Test func concurrentCyclesStartOneRetrainAndTheCooldownHolds() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 4)
            try await db.store(try regressionRows(model, stream.rows(300, broken: true)), model: model)
            let environment = ["RETRAIN_COOLDOWN": "0s"]
            async let a = evaluator(db, environment).run()
            async let b = evaluator(db, environment).run()
            let actions = try await [a, b].map { $0.models.first!.action.kind }
            #expect(actions.filter { $0 == .retrainStarted }.count == 1, "\(actions)")
            #expect(actions.filter { $0 == .retrainRunning }.count == 1, "\(actions)")
            #expect(try await events(db, kind: "retrain_requested") == 1)

            let again = try await evaluator(db, environment).run()
            #expect(again.models.first?.action.kind == .retrainRunning)

            // The retrain ends and its model is deployed: within the cooldown nothing new starts, after it one does.
            let store = EvaluationStore(client: db.client, logger: .test)
            try await store.event(.retrainFinished, name: "demand", version: "1")
            try await store.event(.deployed, name: "demand", version: "1")
            let cooling = try await evaluator(db, ["RETRAIN_COOLDOWN": "1h"]).run()
            #expect(cooling.models.first?.action.kind == .coolingDown)
            let after = try await evaluator(db, ["RETRAIN_COOLDOWN": "0s"]).run()
            #expect(after.models.first?.action.kind == .retrainStarted)
            #expect(try await events(db, kind: "retrain_requested") == 2)
        }
    }

    /// The one-retrain-at-a-time rule is per model: a running retrain of one model neither holds up nor is held
    /// up by another model's, and each cools down on its own.
    @Test func eachModelRetrainsOnItsOwn() async throws {
        let demand = try trainedModel()
        let supply = { var supply = demand; supply.name = "supply"; return supply }()
        try await withTestDatabase { db in
            let registry = ModelRegistry(client: db.client, logger: .test)
            for model in [demand, supply] {
                _ = try await registry.register(model, status: .live)
                var stream = Stream(seed: 6)
                try await db.store(try regressionRows(model, stream.rows(300, broken: true)), model: model)
            }
            let environment = ["RETRAIN_COOLDOWN": "0s"]
            let first = try await evaluator(db, environment).run()
            #expect(first.models.map(\.name).sorted() == ["demand", "supply"])
            #expect(first.models.allSatisfy { $0.action.kind == .retrainStarted }, "\(first.models.map(\.action))")
            // demand's retrain ends; supply's is still running, which does not stop demand's next one.
            try await EvaluationStore(client: db.client, logger: .test).event(.retrainFinished, name: "demand", version: "1")
            let second = try await evaluator(db, environment).run()
            let actions = Dictionary(uniqueKeysWithValues: second.models.map { ($0.name, $0.action.kind) })
            #expect(actions == ["demand": .retrainStarted, "supply": .retrainRunning])
            // An evaluator told to judge one model leaves the other's predictions alone, and names the one the
            // registry does not hold (in the report, its text and its JSON); a name list with a gap is refused.
            let only = try await evaluator(db, environment.merging(["EVALUATE_MODELS": "supply, other"]) { $1 }).run()
            #expect(only.models.map(\.name) == ["supply"])
            #expect(only.unknownModels == ["other"])
            #expect(only.text.hasPrefix("EVALUATE_MODELS names 'other', which the registry does not hold"), "\(only.text)")
            #expect(String(decoding: try only.json(), as: UTF8.self).contains(#""unknown_models":["other"]"#))
            let both = try await evaluator(db, environment.merging(["EVALUATE_MODELS": "supply,demand"]) { $1 }).run()
            #expect(both.unknownModels.isEmpty)
            #expect(throws: SettingError.self) { try evaluator(db, ["EVALUATE_MODELS": "supply,,demand "]) }
        }
    }

    /// The retrain's windows and families set on evaluate are checked at its start and passed on to each retrain.
    @Test func trainingSettingsArePassedOnChecked() throws {
        let settings = try EvaluationSettings(reader: ConfigReader.cyclone(environment: [
            "TRAINING_FAMILIES": "ridge,gbdt", "TRAINING_WINDOWS": "1,all",
        ]))
        #expect(settings.trainingWindow == ["TRAINING_FAMILIES": "ridge,gbdt", "TRAINING_WINDOWS": "1,all"])
        let error = #expect(throws: SettingError.self) {
            try EvaluationSettings(reader: ConfigReader.cyclone(environment: ["TRAINING_FAMILIES": "forest"]))
        }
        #expect(error?.variable == "TRAINING_FAMILIES", "\(String(describing: error))")
    }

    /// The webhook's server is down: the cycle still answers, with its decision taken.
    @Test func aWebhookThatIsDownDoesNotFailTheCycle() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 5)
            try await db.store(try regressionRows(model, stream.rows(300, broken: true)), model: model)
            let alerts = AlertNotifier(webhook: "http://127.0.0.1:\(freePort())/alerts", logger: .test,
                                       attempts: 3, retryDelay: .milliseconds(50), timeout: .milliseconds(300))
            let report = try await evaluator(db, alerts: alerts).run()
            #expect(report.models.first?.judgement?.breached == true)
            #expect(report.models.first?.action.kind == .retrainStarted)
            await alerts.drain(timeout: .seconds(30))
        }
    }

    /// A breach reaches a live webhook as JSON, retried past a 503: the alert kind, the model, the metric.
    @Test func aBreachIsPostedToTheWebhookAndRetried() async throws {
        let model = try trainedModel()
        let webhook = try await withWebhook(refusing: 1) { url, _ in
            try await withTestDatabase { db in
                _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
                var stream = Stream(seed: 8)
                try await db.store(try regressionRows(model, stream.rows(300, broken: true)), model: model)
                let alerts = AlertNotifier(webhook: url, logger: .test, attempts: 3, retryDelay: .milliseconds(50))
                let report = try await evaluator(db, alerts: alerts).run()
                #expect(report.models.first?.judgement?.breached == true)
                await alerts.drain(timeout: .seconds(30))
            }
        }
        let bodies = try webhook.objects()
        let breach = try #require(bodies.first { $0["alert"] as? String == "performance_breach" }, "\(bodies)")
        #expect(breach["severity"] as? String == "ERROR")
        #expect(breach["model"] as? String == "demand" && breach["version"] as? String == "1")
        #expect(breach["metric"] as? String == "r2")
        #expect((breach["message"] as? String)?.isEmpty == false)
        #expect(webhook.calls.withLock { $0 } == bodies.count + 1, "the first POST was refused and retried")
    }

    /// With `DRIFT_PERSISTENCE=2` a shifted feature is reported from its second drifted evaluation in a row: the
    /// first records the signal (stored, so the next cycle reads the run back), the second the drift.
    @Test func persistenceReportsDriftFromTheSecondWindowInARow() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 41)
            try await db.store(try regressionRows(model, stream.rows(300, shift: 1.5)), model: model)
            let environment = ["DRIFT_WINDOW_ROWS": "300", "DRIFT_PERSISTENCE": "2"]
            let first = try #require(try await evaluator(db, environment).run().models.first?.drift?.report)
            let x1 = try #require(first.features.first { $0.feature == "x1" })
            #expect(x1.signal == true && x1.consecutive == 1 && !x1.drifted && first.drifted == 0)
            #expect(first.prediction?.signal == true && first.prediction?.drifted == false)
            let second = try #require(try await evaluator(db, environment).run().models.first?.drift?.report)
            #expect(second.features.filter(\.drifted).map(\.feature) == ["x1"])
            #expect(second.features.first { $0.feature == "x1" }?.consecutive == 2 && second.prediction?.drifted == true)
            #expect(second.features.filter { $0.feature != "x1" }.allSatisfy { $0.consecutive == 0 && $0.signal == false })
        }
    }

    /// `DRIFT_SEASON`: a window like the one a day earlier does not drift, though both differ from the
    /// training profile; without rows a season earlier the profile stays the reference, and the report says so.
    @Test func aSeasonalReferenceComparesWithTheSameWindowADayEarlier() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 61)
            try await db.store(try regressionRows(model, stream.rows(300, shift: 1.5)), model: model, endingAgo: 86_400 + 60)
            try await db.store(try regressionRows(model, stream.rows(300, shift: 1.5)), model: model)
            let environment = ["DRIFT_WINDOW_ROWS": "300", "DRIFT_WINDOW": "1h"]
            let plain = try #require(try await evaluator(db, environment).run().models.first?.drift?.report)
            func x1(_ report: DriftReport) -> Bool { report.features.first { $0.feature == "x1" }?.drifted == true }
            #expect(x1(plain) && plain.reference == nil)
            let daily = try #require(try await evaluator(db, environment.merging(["DRIFT_SEASON": "1d"]) { $1 })
                .run().models.first?.drift?.report)
            #expect(daily.reference == "the same window 1d earlier (300 predictions)", "\(daily.reference ?? "")")
            #expect(!x1(daily), "x1 moved the same a day earlier: \(daily.features.map { ($0.feature, $0.pValue ?? -1) })")
            let weekly = try #require(try await evaluator(db, environment.merging(["DRIFT_SEASON": "7d"]) { $1 })
                .run().models.first?.drift?.report)
            #expect(weekly.reference?.contains("holds 0 predictions, fewer than 100: compared with the training profile") == true)
            #expect(x1(weekly))
        }
    }

    /// A pipeline that loses x2 and sends an unknown colour, while predict refuses some requests: each breach is
    /// a verdict in the report, in the stored drift rows and in one `data_quality` alert (an error), and asks
    /// for no retrain until `RETRAIN_ON_DATA_QUALITY` is set. The clean hour before breaches nothing.
    @Test func aBrokenPipelineIsADataQualityAlertAndNoRetrainByDefault() async throws {
        let model = try trainedModel()
        try await withWebhook { url, webhook in
            try await withTestDatabase { db in
                _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
                var stream = Stream(seed: 21)
                let environment = ["PERFORMANCE_WINDOW_ROWS": "300", "DRIFT_WINDOW_ROWS": "300",
                                   "RETRAIN_COOLDOWN": "0s", "ALERT_WEBHOOK_URL": url]
                try await db.store(try regressionRows(model, stream.rows(300)), model: model, endingAgo: 900)
                let clean = try #require(try await evaluator(db, environment).run().models.first)
                #expect(clean.dataQuality?.breached == false, "\(clean.dataQuality?.breaches ?? [])")
                #expect(clean.judgement?.dataQualityBreached == false)

                // x2 gone, one colour in five unknown, and 40 requests refused.
                let broken = try stream.rows(300).enumerated().map { i, row in
                    var instance = try regressionRows(model, [row])[0]
                    guard case .object(var values) = instance.input else { fatalError() }
                    values["x2"] = nil
                    if i % 5 == 0 { values["colour"] = .string("purple") }
                    instance.input = .object(values)
                    return instance
                }
                try await db.store(broken, model: model)
                try await db.client.query("""
                    INSERT INTO drift_rollup (model_name, model_version, layout, first_at, last_at, rows, rejected)
                    VALUES ('demand', '1', NULL, now(), now(), 0, 40)
                    """, logger: .test)
                let alerts = AlertNotifier(webhook: url, logger: .test)
                let report = try await evaluator(db, environment, alerts: alerts).run()
                await alerts.drain(timeout: .seconds(30))
                let evaluation = try #require(report.models.first)
                let quality = try #require(evaluation.dataQuality)
                #expect(quality.breaches.map { "\($0.feature) \($0.check.rawValue)" }
                    == ["x2 missing", "colour unseen", "dataset refused"])
                #expect(quality.checks.last?.count == 40 && quality.checks.last?.of == 340)
                #expect(evaluation.judgement?.dataQualityBreached == true && evaluation.action.kind == .none)
                #expect(evaluation.judgement?.reason.contains("RETRAIN_ON_DATA_QUALITY is off") == true)
                #expect(report.text.contains("3 of") && report.text.contains("x2: 300 of 300 missing (100 %)"),
                        "\(report.text)")

                let store = EvaluationStore(client: db.client, logger: .test)
                let series = try await store.driftSeries(.init(model: "demand", since: .distantPast, limit: 100))
                func newest(_ feature: String) -> EvaluationStore.DriftPoint? { series.last { $0.feature == feature } }
                #expect(newest("x2")?.qualityBreaches == ["missing"] && newest("colour")?.qualityBreaches == ["unseen"])
                #expect(newest("x1")?.qualityBreaches == [] && newest("prediction")?.qualityBreaches == [])
                #expect(newest("dataset")?.qualityBreaches == ["refused"] && newest("dataset")?.refused == 40)
                #expect(series.filter { $0.feature == "x2" }.map(\.qualityBreaches) == [[], ["missing"]])

                let bodies = try webhook.objects()
                let alert = try #require(bodies.first { $0["alert"] as? String == "data_quality" })
                #expect(alert["severity"] as? String == "ERROR")
                #expect((alert["breaches"] as? [[String: Any]])?.compactMap { $0["check"] as? String }
                    == ["missing", "unseen", "refused"])

                let acting = try await evaluator(db, environment.merging(["RETRAIN_ON_DATA_QUALITY": "true"]) { $1 }).run()
                let retrained = try #require(acting.models.first)
                #expect(retrained.action.kind == .retrainStarted, "\(retrained.action)")
                #expect(retrained.judgement?.reason.hasPrefix("data quality (x2: 300 of 300 missing") == true)
            }
        }
    }

    /// A canary is judged against the live version on the labels since it started: while either side has too
    /// few it waits (and the live version asks for no retrain meanwhile); a canary worse than live is rolled
    /// back — its link removed, its status `rejected` with the reason, a `rolled_back` event.
    @Test func aWorseCanaryWaitsForLabelsThenIsRolledBack() async throws {
        let live = try trainedModel()
        var canary = live
        canary.version = "2"
        guard case .linear(var linear) = canary.predictor else { return }
        linear.intercept += 8
        canary.predictor = .linear(linear)
        let (folder, platform) = try await deployCanary(canary, beside: live)
        try await withTestDatabase { [canary] db in
            try await registerCanary(canary, beside: live, db)
            try await Task.sleep(for: .milliseconds(200))
            var stream = Stream(seed: 9)
            let environment = ["CANARY_MIN_LABELS": "60", "RETRAIN_COOLDOWN": "0s", "MIN_LABELS": "20"]
            func serve(_ model: ModelArtifact, _ rows: [Stream.Row]) throws -> [ServedInstance] {
                try rows.map { row in
                    var notes = InstanceEncoder.Notes()
                    let x = try InstanceEncoder(features: model.features, preprocessing: model.preprocessing)
                        .encode(row.instance, path: "", notes: &notes)
                    return ServedInstance(input: row.instance, output: model.predictor.predict(x), label: .number(row.y))
                }
            }
            // A changed world for the live version (it would ask for a retrain), 30 labels for the canary.
            try await db.store(try serve(live, stream.rows(80, broken: true)), model: live, spacing: 0.001)
            try await db.store(try serve(canary, stream.rows(30)), model: canary, spacing: 0.001)
            let waiting = try await evaluator(db, environment, platform: platform).run()
            #expect(waiting.canaries.map(\.action) == [.waiting], "\(waiting.canaries)")
            let liveEvaluation = try #require(waiting.models.first { $0.version == "1" })
            #expect(liveEvaluation.serving && liveEvaluation.action.kind == .none)
            #expect(liveEvaluation.action.detail.contains("a challenger (canary or shadow) is being judged"), "\(liveEvaluation.action)")

            // Enough labels on both sides, the world as before: the canary's offset of 8 makes it worse than live
            // even with live's broken-world rows in the period.
            try await db.store(try serve(live, stream.rows(80)), model: live, spacing: 0.001)
            try await db.store(try serve(canary, stream.rows(80)), model: canary, spacing: 0.001)
            let judged = try await evaluator(db, environment.merging(["RETRAIN_METRIC": "mae"]) { $1 }, platform: platform).run()
            let decision = try #require(judged.canaries.first)
            #expect(decision.action == .rolledBack, "\(decision)")
            #expect(decision.canaryLabels == 110 && decision.liveLabels == 160)
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .canary, in: folder)))
            let status = try await db.client.query("SELECT status, reason FROM model WHERE version = '2'", logger: .test)
            for try await (value, reason) in status.decode((String, String?).self) {
                #expect(value == "rejected" && reason?.hasPrefix("rolled back: mae") == true, "\(reason ?? "")")
            }
            #expect(try await events(db, kind: "rolled_back") == 1)
        }
    }

    /// On Cloud Run the same canary control moves traffic: the canary revision, at its share beside the live
    /// one, gets all of it once its labels show it no worse (the fake Admin API keeps the revisions).
    @Test func aBetterCanaryOnCloudRunGetsAllTheTraffic() async throws {
        let live = try trainedModel()
        var second = live
        second.version = "2"
        let canary = second
        let fake = FakeCloudRun()
        fake.addService("predict", image: "europe-west1-docker.pkg.dev/project/cyclone/predict@sha256:\(String(repeating: "0", count: 64))")
        try await fake.application().test(.live) { client in
            let port = try #require(client.port)
            let platform = CloudRunPlatform(
                cloudRun: CloudRun(endpoint: "http://127.0.0.1:\(port)", project: fake.project, region: fake.region,
                                   credentials: nil, backoff: .milliseconds(5)),
                service: "predict", job: "retrain", canaryPercent: 20
            ) { model, _ in
                try ImageReference("europe-west1-docker.pkg.dev/project/cyclone/predict@\(Digest.sha256(Array(model.version.utf8)))")
            }
            _ = try await platform.deploy(canary, as: .canary)
            func shares() -> [Int] {
                fake.state.withLock { $0.services["predict"]!.object["trafficStatuses"]?.array.map { Int($0["percent"].number ?? 0) } ?? [] }
            }
            #expect(shares() == [80, 20])
            try await withTestDatabase { db in
                try await registerCanary(canary, beside: live, db)
                try await Task.sleep(for: .milliseconds(200))
                var stream = Stream(seed: 12)
                // Live serves a changed world, the canary the usual one: the canary is better.
                try await db.store(try regressionRows(live, stream.rows(80, broken: true)), model: live, spacing: 0.001)
                try await db.store(try regressionRows(canary, stream.rows(80)), model: canary, spacing: 0.001)
                let report = try await evaluator(db, ["CANARY_MIN_LABELS": "50", "RETRAIN_METRIC": "mae"], platform: platform).run()
                #expect(report.canaries.map(\.action) == [.promoted], "\(report.canaries)")
                let traffic = fake.state.withLock { $0.services["predict"]!.object["traffic"]?.array ?? [] }
                #expect(traffic.count == 1 && traffic.first?["revision"].string?.hasPrefix("predict-demand-v2-") == true
                        && traffic.first?["percent"] == .number(100), "\(traffic)")
                #expect(try await events(db, kind: "promoted") == 1)
            }
        }
    }

    /// A canary that gathers too few labels within `CANARY_MAX_AGE` is rolled back rather than holding the
    /// loop (no retrain runs while a canary does).
    @Test func aCanaryShortOfLabelsTooLongIsRolledBack() async throws {
        let live = try trainedModel()
        var canary = live
        canary.version = "2"
        let (folder, platform) = try await deployCanary(canary, beside: live)
        try await withTestDatabase { [canary] db in
            try await registerCanary(canary, beside: live, db)
            var stream = Stream(seed: 10)
            try await db.store(try regressionRows(live, stream.rows(50)), model: live, spacing: 0.001)
            let environment = ["CANARY_MIN_LABELS": "100", "CANARY_MAX_AGE": "1h"]
            let early = try await evaluator(db, environment, platform: platform).run()
            #expect(early.canaries.map(\.action) == [.waiting])
            // Two hours on: the drift window (1 h) is empty, which the cycle must take in its stride too.
            let late = try await evaluator(db, environment, platform: platform).run(now: Date().addingTimeInterval(7_200))
            #expect(late.models.first?.drift?.rows == 0)
            let decision = try #require(late.canaries.first)
            #expect(decision.action == .rolledBack && decision.reason.contains("CANARY_MAX_AGE"), "\(decision)")
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .canary, in: folder)))
        }
    }

    /// A version the registry does not know is reported, not skipped silently; a platform that cannot start
    /// the retrain leaves a `retrain_failed` event.
    @Test func unknownVersionsAndFailedStartsAreReported() async throws {
        struct Refusing: Platform {
            struct Quota: Error, CustomStringConvertible { var description: String { "quota exceeded" } }
            func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution { throw Quota() }
            var deploys: Bool { true }
            func deploy(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment? {
                throw Quota()
            }
            func promote(_ model: ModelArtifact, from role: Role) async throws -> Deployment? { throw Quota() }
            func rollback(_ model: ModelArtifact, from role: Role) async throws -> Deployment? { throw Quota() }
        }
        let model = try trainedModel()
        try await withTestDatabase { db in
            var stream = Stream(seed: 6)
            try await db.store(try regressionRows(model, stream.rows(200, broken: true)), model: model)
            let unknown = try await evaluator(db).run()
            #expect(unknown.models.first?.note?.contains("not in the model registry") == true)

            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            let refused = try await evaluator(db, platform: Refusing()).run()
            #expect(refused.models.first?.action == .init(kind: .retrainFailed, detail: "quota exceeded",
                                                          eventID: refused.models.first?.action.eventID))
            #expect(try await events(db, kind: "retrain_failed") == 1)
        }
    }

    /// A retrain child that dies without a word (a trap, a signal) is recorded as failed with its status, so
    /// the next cycle can start another rather than wait `RETRAIN_TIMEOUT`; one that exits 0, or that records
    /// its own failure, is left alone.
    @Test func aCrashedRetrainProcessIsRecordedAsFailed() async throws {
        let model = try trainedModel()
        for (script, recorded) in [("kill -SEGV $$", true), ("exit 3", true), ("exit 0", false)] {
            try await withTestDatabase { db in
                _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
                var stream = Stream(seed: 4)
                try await db.store(try regressionRows(model, stream.rows(300, broken: true)), model: model)
                let platform = LocalPlatform(retrainCommand: ["/bin/sh", "-c", script])
                let cycle = try await evaluator(db, ["RETRAIN_COOLDOWN": "0s"], platform: platform).run()
                #expect(cycle.models.first?.action.kind == .retrainStarted)
                var failed = 0
                for _ in 0..<(recorded ? 200 : 20) where failed == 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    failed = try await events(db, kind: "retrain_failed")
                }
                #expect(failed == (recorded ? 1 : 0), "\(script)")
                if recorded {
                    let rows = try await db.client.query("SELECT detail->>'reason' FROM event WHERE kind = 'retrain_failed'",
                                                         logger: .test)
                    for try await reason in rows.decode(String.self) {
                        #expect(reason == (script == "exit 3" ? "the retrain process exited with status 3"
                                                               : "the retrain process was killed by signal 11"))
                    }
                    let next = try await evaluator(db, ["RETRAIN_COOLDOWN": "0s"]).run()
                    #expect(next.models.first?.action.kind == .retrainStarted, "no waiting for RETRAIN_TIMEOUT")
                }
            }
        }
    }

}
