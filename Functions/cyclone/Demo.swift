import ArgumentParser
import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTraining
import Foundation
import Logging
import PostgresNIO
import UnixSignals

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole loop on this machine over a drifting stream, and compare it with two baselines.",
        discussion: """
            Without --data it replays a year of synthetic hourly bike-rental demand (seeded: the same every time) \
            whose pattern changes twice. With --data, --target and --time it backtests your own CSV instead.

            The first model is trained on the first month (--train-months). predict, label-ingest and evaluate \
            run as child processes on free ports against DATABASE_URL, with the retrain executable as the \
            evaluator's RETRAIN_COMMAND and a model folder of the demo's own. The rest of the stream is sent to \
            predict in time order, each label arrives --label-delay later, and evaluate runs every \
            --evaluate-every of stream time. Stream time waits for the loop: a started retrain finishes, and a \
            new model serves, before the next rows are sent.

            It prints a line a week and one per event of the loop, then the metric per month for the first \
            model left alone, for the loop, and for a retrain at the start of every month.
            """)

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "A short run (Jan–Mar of the synthetic stream), for tests and a first look.") var fast = false
    @Option(help: "Days of the synthetic stream to replay, from 1 January (up to 365).") var days = 365
    @Option(help: "Backtest: a CSV file of labelled rows.") var data: String?
    @Option(help: "Backtest: the column to predict.") var target: String?
    @Option(help: "Backtest: the column with each row's time (ISO 8601 or Unix seconds).") var time: String?
    /// Backtest: how the file's columns become features, as `cyclone train` takes them.
    @OptionGroup var columns: ColumnOptions
    @Option(help: "gbdt, ridge or logistic (default: gbdt, regression for a numeric target, classification otherwise).")
    var family: String?
    @Option(help: "Write the synthetic stream (--days of it) to this CSV file and stop.") var export: String?
    @Option(help: "The model's name (default: bikes, or the CSV file's name).") var name: String?
    @Option(help: "Months of the stream the first model is trained on.") var trainMonths = 1
    @Option(help: "How long after its prediction a label arrives (stream time).") var labelDelay = "1d"
    @Option(help: "How often evaluate runs (stream time).") var evaluateEvery = "1d"
    @Option(help: "Labelled rows in the performance window, and rows in the drift window.") var window = 168
    @Option(help: "Newest labelled rows a retrain trains on (TRAINING_WINDOW_ROWS).") var trainingRows = 720
    @Option(help: "The metric the policy watches (default: r2, or roc_auc for a classifier).") var metric: String?
    @Option(help: """
        When a retrain starts: a number, or a factor of the live model's holdout value (default: 0.9x for a \
        metric where higher is better, 1.2x otherwise).
        """)
    var threshold: String?
    @Option(help: "Share of requests a new version answers as a canary before promotion; 0 deploys at once.")
    var canaryPercent = 50
    @Option(help: "Labels each of canary and live need before the canary is judged.") var canaryLabels = 48
    @Option(help: "Where models and logs go (default: a new temporary folder).") var folder: String?
    @Option(help: "The port evaluate serves the dashboard on (default: a free one).") var dashboardPort: Int?
    @Flag(inversion: .prefixedNo, help: """
        After the replay, keep evaluate serving the dashboard until Ctrl-C (default: when standard input is a \
        terminal).
        """)
    var serve: Bool?

    func run() async throws {
        // The database first: a missing or unreachable one is said before minutes of training, not after.
        if export == nil {
            await database.withClient { _, _ in }  // it asks PostgreSQL first
        }
        let setup: DemoSetup
        do { setup = try prepare() } catch let exported as DemoExported {
            print("wrote \(exported.rows) rows of the stream to \(exported.path)")
            return
        } catch { Cyclone.fail("\(error)") }
        let output = DemoOutput()
        let model = setup.model
        output.say("""
            \(setup.description)
            first model: \(model.name)@1 (\(model.predictor.family)) trained on \(model.training?.rows ?? 0) rows \
            to \(DemoOutput.day(setup.start)); holdout \(setup.metric) \(model.training?.holdoutMetrics?[setup.metric].map(DemoOutput.number) ?? "–"), \
            \(setup.error) \(model.training?.holdoutMetrics?[setup.error].map(DemoOutput.number) ?? "–")
            policy: retrain when \(setup.metric) over the newest \(window) labels passes \(setup.threshold); \
            canary at \(canaryPercent) % until \(canaryLabels) labels each; evaluate every \(evaluateEvery), labels after \(labelDelay)
            models and logs: \(setup.folder)
            """)
        let environment = setup.environment(self)
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: setup.folder), !existing.isEmpty {
            Cyclone.fail("\(setup.folder) is not empty; give --folder a new or empty folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: setup.folder, withIntermediateDirectories: true)
            _ = try await LocalPlatform(modelDirectory: setup.models).deploy(model, canary: false)
        } catch {
            Cyclone.fail("cannot write the first model to \(setup.models): \(error.localizedDescription)")
        }
        let (outcome, servers) = await database.withClient { client, logger in
            try await Migrator(client: client, logger: logger).migrate()
            var known = 0
            for try await count in try await client.query("SELECT count(*)::int FROM model WHERE name = \(model.name)",
                                                          logger: logger).decode(Int.self) { known = count }
            guard known == 0 else {
                throw DemoError("this database already holds a model named '\(model.name)'; pass --name or use a fresh database")
            }
            let servers = try await DemoServers.start(binaries: setup.binaries, folder: setup.folder,
                                                      environment: environment, evaluatePort: dashboardPort)
            output.say("dashboard: \(servers.evaluate.base)/dashboard\n")
            do {
                let outcome = try await DemoReplay(
                    stream: setup.stream, servers: servers, client: client, logger: logger, model: model,
                    start: setup.start, every: setup.every, labelDelay: setup.labelDelay, metric: setup.metric, error: setup.error,
                    reload: .milliseconds(50), output: output
                ).run()
                // evaluate stays up for the dashboard.
                await servers.stop([servers.predict, servers.labels])
                return (outcome, servers)
            } catch {
                await servers.stop()
                throw error
            }
        }
        let monthly = setup.monthlyBaseline(trainingRows: trainingRows)
        let table = MonthlyTable(metric: setup.error, model: model, stream: setup.stream, rows: setup.replayRows,
                                 strategies: [
                                     ("first model", setup.firstModelOutputs, "0"),
                                     ("Cyclone loop", outcome.served, "\(outcome.retrains) (\(outcome.deployments) live)"),
                                     ("every month", monthly.outputs, "\(monthly.retrains)"),
                                 ])
        output.say("\n" + table.text)
        let seconds = { (duration: Duration) in String(format: "%.1f s", duration.seconds) }
        output.say("""

            replayed \(setup.replayRows.count) rows in \(outcome.requests) requests: predict \(seconds(outcome.predicting)), \
            labels \(seconds(outcome.labelling)), evaluate \(seconds(outcome.evaluating)), retrains and swaps \(seconds(outcome.waiting))
            The loop's predictions, labels, metrics, drift and events are in PostgreSQL (model '\(model.name)'): \
            psql "$DATABASE_URL". Models and server logs: \(setup.folder)
            """)
        if serve ?? (isatty(STDIN_FILENO) == 1) {
            output.say("\nthe dashboard stays up at \(servers.evaluate.base)/dashboard: Ctrl-C to stop")
            for await _ in await UnixSignalsSequence(trapping: [.sigint, .sigterm]) { break }
        }
        await servers.stop([servers.evaluate])
    }

    /// Everything decided before the servers start: the stream, the first model, the baselines' inputs.
    private func prepare() throws -> DemoSetup {
        let labelDelay = try seconds(self.labelDelay, "--label-delay")
        let every = try seconds(evaluateEvery, "--evaluate-every")
        guard every >= 60 else { throw DemoError("--evaluate-every must be at least 1m") }
        guard labelDelay <= 365 * 86_400 else { throw DemoError("--label-delay must be at most 365d") }
        guard window > 0, canaryLabels > 0, trainMonths > 0 else {
            throw DemoError("--window, --canary-labels and --train-months must be positive")
        }
        // A retrain holds out a fifth and needs MIN_TRAINING_ROWS (100) to train on.
        guard trainingRows >= 125 else { throw DemoError("--training-rows must be at least 125") }
        guard (0...100).contains(canaryPercent) else { throw DemoError("--canary-percent must be 0 to 100") }
        let csv: CSV, targetColumn: String, timeColumn: String, name: String, description: String
        var kinds: [String: Feature.Kind] = [:]
        if let data {
            guard let target = self.target, let time = self.time else {
                throw DemoError("--data needs --target and --time")
            }
            do { csv = try CSV(contentsOf: URL(fileURLWithPath: data)) } catch { throw DemoError("\(data): \(error)") }
            (targetColumn, timeColumn) = (target, time)
            name = self.name ?? URL(fileURLWithPath: data).deletingPathExtension().lastPathComponent
            description = "backtest of \(data): \(csv.rows.count) rows, predicting '\(target)'"
            guard !fast, days == 365 else { throw DemoError("--fast and --days are for the synthetic stream, not --data") }
            if let column = columns.missing(from: csv.header) { throw DemoError("'\(column)' is not a column of \(data)") }
            kinds = columns.kinds
        } else {
            guard target == nil, time == nil, columns.named.isEmpty else {
                throw DemoError("--target, --time, --categorical, --numeric, --boolean, --ignore and --optional go with --data")
            }
            let days = fast ? 75 : self.days
            guard (45...365).contains(days) else { throw DemoError("--days must be 45 to 365") }
            csv = BikeStream().csv(days: days)
            if let export {
                // Cells hold no commas or quotes: numbers, times and words.
                let text = ([csv.header] + csv.rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
                do { try text.write(toFile: export, atomically: true, encoding: .utf8) } catch {
                    throw DemoError("cannot write \(export): \(error.localizedDescription)")
                }
                throw DemoExported(path: export, rows: csv.rows.count)
            }
            (targetColumn, timeColumn) = ("count", "time")
            name = self.name ?? "bikes"
            kinds["hour"] = .categorical
            let changes = [(BikeStream.eBikes, "e-bikes from 1 April"), (BikeStream.hybridWork, "hybrid working from 15 September")]
                .filter { $0.0 < days }.map(\.1)
            description = "synthetic hourly bike-rental demand, \(days) days from 2025-01-01"
                + (changes.isEmpty ? "" : " (\(changes.joined(separator: ", ")))")
        }
        let targetCells = try ReplayStream.column(targetColumn, of: csv, option: "--target")
        let numericTarget = FeatureTable.inferKind(targetCells) == .numeric
        let family: Family
        if let text = self.family {
            guard let chosen = Family(rawValue: text) else {
                throw DemoError("--family must be one of \(Family.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
            }
            family = chosen
        } else {
            family = .gbdt
        }
        let task: ModelArtifact.Task = family == .ridge || (family == .gbdt && numericTarget) ? .regression : .binary
        let stream = try ReplayStream(csv: csv, time: timeColumn, target: targetColumn,
                                      task: task, kinds: kinds, ignore: columns.ignore)
        guard let first = stream.times.first else { throw DemoError("the stream has no rows") }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let month = calendar.date(from: calendar.dateComponents([.year, .month], from: first))!
        let start = calendar.date(byAdding: .month, value: trainMonths, to: month)!
        let trainingRange = stream.rows(in: first..<start)
        let firstRows = trainingRange.filter { stream.labelled[$0] }
        let replayRows = stream.rows(in: start..<Date.distantFuture)
        guard firstRows.count >= 50 else {
            throw DemoError("the first \(trainMonths) month(s) hold \(firstRows.count) labelled rows; at least 50 are needed to train on")
        }
        guard !replayRows.isEmpty else { throw DemoError("no rows after the first \(trainMonths) month(s) to replay") }

        var options = columns.training(family)
        options.holdout = 0.2
        // A feature missing anywhere in the stream may be sent as null: the model imputes it.
        options.optionalFeatures.formUnion(stream.features.columns.filter { column in
            switch column.values {
            case .numeric(let v), .boolean(let v): v.contains { $0.isNaN }
            case .categorical(let v): v.contains(nil)
            }
        }.map(\.name))
        let model: ModelArtifact
        do {
            model = try Trainer(options: options).train(
                name: name, version: "1", features: stream.features.selecting(rows: firstRows),
                target: FeatureTable.Column(name: stream.target.name,
                                            values: stream.target.values.selecting(rows: firstRows)))
        } catch {
            throw DemoError("the first model does not train: \(error)")
        }
        let metric: PerformanceMetric
        if let text = self.metric {
            guard let chosen = PerformanceMetric(rawValue: text), PerformanceMetric.available(for: model.task).contains(chosen) else {
                throw DemoError("--metric must be one of \(PerformanceMetric.available(for: model.task).map(\.rawValue).joined(separator: ", ")) for a \(model.task.rawValue) model")
            }
            metric = chosen
        } else {
            metric = PerformanceMetric.defaultMetric(for: model.task)
        }
        let threshold = self.threshold ?? (metric.higherIsBetter ? "0.9x" : "1.2x")
        guard RetrainPolicy.Threshold(threshold) != nil else {
            throw DemoError("--threshold must be a number or a factor such as 0.8x, not '\(threshold)'")
        }
        let folder = self.folder ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("cyclone-demo-\(UUID().uuidString.prefix(8).lowercased())").path
        var outputs = [Output?](repeating: nil, count: stream.count)
        let replayed = model.outputs(for: stream.features.selecting(rows: Array(replayRows)))
        for (row, output) in zip(replayRows, replayed) { outputs[row] = output }
        return DemoSetup(stream: stream, model: model, start: start, every: every, labelDelay: labelDelay,
                         metric: metric.rawValue, threshold: threshold,
                         error: model.task == .regression ? "rmse" : "log_loss", folder: folder, binaries: try Self.binaries(), description: description,
                         replayRows: replayRows, firstModelOutputs: outputs, options: options)
    }

    private func seconds(_ text: String, _ option: String) throws -> TimeInterval {
        guard let duration = Duration.setting(text) else {
            throw DemoError("\(option) must be a duration such as 12h or 1d, not '\(text)'")
        }
        return duration.seconds
    }

    /// The folder this executable is in, where `swift build` also puts predict, label-ingest, evaluate and retrain.
    private static func binaries() throws -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        let folder = URL(fileURLWithPath: me).deletingLastPathComponent().path
        for name in ["predict", "label-ingest", "evaluate", "retrain"]
        where !FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
            throw DemoError("\(folder)/\(name) is not built: run `swift build` first")
        }
        return folder
    }
}

/// The demo's stream, first model and settings, shared by the replay and the baselines.
struct DemoSetup {
    var stream: ReplayStream
    var model: ModelArtifact
    var start: Date
    var every: TimeInterval
    var labelDelay: TimeInterval
    /// The policy's metric and threshold.
    var metric: String
    var threshold: String
    /// The metric of the closing table.
    var error: String
    var folder: String
    var binaries: String
    var description: String
    var replayRows: Range<Int>
    var firstModelOutputs: [Output?]
    var options: TrainingOptions

    /// The local platform's model folder.
    var models: String { "\(folder)/models" }

    /// What the three servers and the retrains they start read.
    func environment(_ demo: Demo) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in [
            "MODEL_PATH": LocalPlatform.servingPath(name: model.name, in: models),
            "CANARY_MODEL_PATH": LocalPlatform.canaryPath(name: model.name, in: models),
            "MODEL_DIR": models, "MODEL_RELOAD_INTERVAL": "50ms", "CANARY_PERCENT": "\(demo.canaryPercent)",
            "CANARY_MIN_LABELS": "\(demo.canaryLabels)",
            // The windows are counted in rows; their real-time age only retires versions that no longer serve
            // (a version with no prediction in a window's age is not evaluated), which keeps each cycle short.
            "PERFORMANCE_WINDOW_ROWS": "\(demo.window)", "PERFORMANCE_WINDOW_MAX_AGE": "60s",
            "DRIFT_WINDOW_ROWS": "\(demo.window)", "DRIFT_WINDOW": "60s",
            "RETRAIN_METRIC": metric, "RETRAIN_THRESHOLD": threshold, "MIN_LABELS": "\(max(1, demo.window / 2))",
            // Stream time waits for the loop, and evaluate runs once a stream day: no cooldown is needed.
            "RETRAIN_COOLDOWN": "0s", "RETRAIN_COMMAND": "\(binaries)/retrain",
            "TRAINING_WINDOW_ROWS": "\(demo.trainingRows)", "TRAINING_WINDOW_MAX_AGE": "3650d",
            "LOG_LEVEL": "warning", "STORE_MODE": "durable",
        ] { environment[key] = value }
        if let url = demo.database.databaseURL { environment["DATABASE_URL"] = url }
        return environment
    }

    /// A model trained at the start of every month after the first, on the newest labelled rows known by then
    /// (a month whose retrain fails keeps the previous month's model).
    func monthlyBaseline(trainingRows: Int) -> (outputs: [Output?], retrains: Int) {
        var outputs = firstModelOutputs
        var retrains = 0
        var current = model
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for (index, (_, rows)) in stream.months(in: replayRows).enumerated() where index > 0 {
            let monthStart = calendar.date(from: calendar.dateComponents([.year, .month], from: stream.times[rows.lowerBound]))!
            let known = stream.rows(in: Date.distantPast..<monthStart.addingTimeInterval(-labelDelay))
            let recent = Array(known.filter { stream.labelled[$0] }.suffix(trainingRows))
            var options = options
            options.holdout = 0
            if let retrained = try? Trainer(options: options).train(
                name: model.name, version: "monthly", features: stream.features.selecting(rows: recent),
                target: FeatureTable.Column(name: stream.target.name, values: stream.target.values.selecting(rows: recent)))
            {
                current = retrained
                retrains += 1
            }
            for (row, output) in zip(rows, current.outputs(for: stream.features.selecting(rows: Array(rows)))) {
                outputs[row] = output
            }
        }
        return (outputs, retrains)
    }
}
