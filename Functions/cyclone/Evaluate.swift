import ArgumentParser
import Configuration
import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneReplay
import CycloneRuntime
import CycloneStore
import Foundation
import Logging

struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Run one evaluation cycle, as the evaluate function does on a schedule, and print its report.",
        discussion: """
            Reads the same environment variables as the evaluate function (PERFORMANCE_WINDOW_ROWS, DRIFT_WINDOW, \
            RETRAIN_METRIC, RETRAIN_THRESHOLD, MIN_LABELS, RETRAIN_COOLDOWN, RETRAIN_ON_DRIFT, RETRAIN_COMMAND, \
            ALERT_WEBHOOK_URL…): it writes metric, drift and event rows and may start a retrain.
            """)

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print the report as JSON, as POST /evaluate answers it.") var json = false

    func run() async throws {
        let settings: EvaluationSettings
        do { settings = try EvaluationSettings(reader: ConfigReader.cyclone()) } catch { Cyclone.fail("\(error)") }
        let json = json
        let clock = ContinuousClock()
        let start = clock.now
        let report = await database.withClient { client, logger in
            try await Migrator(client: client, logger: logger).migrate()
            let alerts = AlertNotifier(webhook: settings.alertWebhook, logger: logger)
            let evaluator = Evaluator(client: client, settings: settings, platform: try settings.platform.platform(),
                                      alerts: alerts, logger: logger)
            let report = try await evaluator.run()
            await alerts.drain()
            return report
        }
        let elapsed = clock.now - start
        if json {
            print(String(decoding: try report.json(), as: UTF8.self))
        } else {
            print(report.text)
            print("evaluated in \(String(format: "%.2f", elapsed.seconds)) s")
        }
    }
}

struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a model artifact to the model registry (predict registers the model it serves by itself), and the labelled rows it was trained on as its history.",
        discussion: """
            With --history, the CSV's labelled rows are stored as the model's history: a retrain learns from them
            beside the predictions labelled since, so its widest window reaches back before the first deployment
            (rows older than TRAINING_WINDOW_MAX_AGE are not read). Evaluation never reads them. A row already
            stored (the same time, features and label) is not stored again.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The model artifact.") var model: String
    @Option(help: "candidate, canary, live, retired or rejected.") var status: String = "live"
    @Option(help: "A CSV of labelled rows the model learnt from: its features, its target and --time.") var history: String?
    @Option(help: "--history's time column (ISO 8601, or Unix seconds or milliseconds).") var time: String?

    func run() async throws {
        guard let status = ModelRegistry.Status(rawValue: status) else {
            Cyclone.fail("--status must be candidate, canary, live, retired or rejected, not '\(self.status)'")
        }
        if history != nil, time == nil { Cyclone.fail("--history needs --time COLUMN: a retrain takes rows newest first") }
        if history == nil, time != nil { Cyclone.fail("--time names --history's time column; give --history FILE") }
        let artifact = Cyclone.model(at: model)
        var rows: [History.Row] = [], unlabelled = 0, source = ""
        if let history, let time {
            // Read once: the rows stored are those of the file whose digest names their source.
            let bytes: [UInt8], csv: CSV
            do { bytes = try CSV.bytes(of: URL(fileURLWithPath: history)); csv = try CSV(bytes: bytes) } catch {
                Cyclone.fail("\(history): \(error)")
            }
            source = Digest.sha256(bytes)
            (rows, unlabelled) = Self.historyRows(artifact, csv: csv, file: history, time: time)
            // A retrain reads rows no older than TRAINING_WINDOW_MAX_AGE (evaluate's, which it passes on): say
            // how much of this history that leaves out, by the setting here or its default.
            let environment = ProcessInfo.processInfo.environment["TRAINING_WINDOW_MAX_AGE"].flatMap { $0.isEmpty ? nil : $0 }
            let limit: Duration
            do { limit = try WindowBounds.training(ConfigReader.cyclone()).maxAge } catch { Cyclone.fail("\(error)") }
            let since = Date().addingTimeInterval(-limit.seconds)
            let older = rows.count { $0.time < since }
            if older > 0 {
                print("note: \(older) of the \(rows.count) rows are older than TRAINING_WINDOW_MAX_AGE (\(environment ?? "30d, its default")), so a retrain does not read them: set it, for evaluate, to cover them")
            }
        }
        let (new, added) = await database.withClient { [rows, source] client, logger in
            try await Migrator(client: client, logger: logger).migrate()
            let new = try await ModelRegistry(client: client, logger: logger).register(artifact, status: status)
            let added = rows.isEmpty ? 0 : try await History(client: client, logger: logger)
                .add(model: artifact.name, source: source, rows: rows)
            return (new, added)
        }
        print(new ? "registered \(artifact.name)@\(artifact.version) as \(status.rawValue)"
                  : "\(artifact.name)@\(artifact.version) was already registered")
        if let history, let first = rows.first?.time, let last = rows.last?.time {
            let span = "\(first.formatted(.iso8601)) to \(last.formatted(.iso8601))"
            let skipped = unlabelled == 0 ? "" : "; \(unlabelled) without a label left out"
            print(added == rows.count ? "stored \(added) labelled rows of \(history) as \(artifact.name)'s history, \(span)\(skipped)"
                  : "stored \(added) new labelled rows of \(history) as \(artifact.name)'s history (\(rows.count - added) were stored already), \(span)\(skipped)")
        }
    }

    /// The labelled rows of `csv` (read from `file`) in time order, and how many had no label. The model's
    /// features are typed by its schema, the file's other columns (but the time and the target) as `train`
    /// infers them: a later version may use them.
    static func historyRows(_ artifact: ModelArtifact, csv: CSV, file: String, time: String) -> ([History.Row], Int) {
        guard let target = artifact.target else { Cyclone.fail("the model names no target, so --history has no label column") }
        guard csv.header.contains(target) else { Cyclone.fail("\(file): the model's target '\(target)' is not a column") }
        if let absent = artifact.features.first(where: { $0.required && !csv.header.contains($0.name) }) {
            Cyclone.fail("\(file): the model's feature '\(absent.name)' is not a column")
        }
        let stream: ReplayStream
        do {
            stream = try ReplayStream(csv: csv, time: time, target: target, task: artifact.task,
                                      kinds: Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) }),
                                      ignore: [])
        } catch {
            Cyclone.fail("\(file): \(error)")
        }
        let labelled = stream.labelled.indices.filter { stream.labelled[$0] }
        // A class the model does not know would make every retrain's candidates differ from it in their classes.
        if let classes = artifact.classes, case .categorical(let labels) = stream.target.values,
           let row = labelled.first(where: { !classes.contains(labels[$0] ?? "") })
        {
            Cyclone.fail("\(file): the label '\(labels[row] ?? "")' at \(stream.times[row].formatted(.iso8601)) is not one of the model's classes (\(classes.joined(separator: ", ")))")
        }
        let rows = stream.history(labelled, keyed: Set(artifact.features.map(\.name)))
        guard !rows.isEmpty else { Cyclone.fail("\(file): no row has a label in '\(target)'") }
        return (rows, stream.count - rows.count)
    }
}
