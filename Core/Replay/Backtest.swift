import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTraining
import Foundation
import Logging
import PostgresNIO

/// The loop's backtest: a labelled stream in time order (a CSV file, or the synthetic bike-rental year), a
/// first model trained on its first months, the real servers and retrain job replaying the rest, and the
/// closing comparison with two baselines (the first model left alone, a retrain at every month's start).
/// `cyclone demo` is a parser of options around it.
public struct Backtest: Sendable {
    /// What a backtest is asked for: the `cyclone demo` options, in the library's terms.
    public struct Options: Sendable {
        /// Backtest a CSV file of labelled rows; `nil` replays the synthetic stream.
        public var data: String?
        /// The column to predict, and the column with each row's time (with `data` only).
        public var target: String?
        public var time: String?
        /// Days of the synthetic stream, from 1 January (45 to 365).
        public var days = 365
        /// Columns whose kind is forced (the rest are inferred), and columns left out (with `data` only).
        public var kinds: [String: Feature.Kind] = [:]
        public var ignore: [String] = []
        /// Penalties, boosting settings and optional features; the family is `family`'s.
        public var training = TrainingOptions(family: .gbdt)
        public var family: Family?
        /// The model's name (default: bikes, or the CSV file's name).
        public var name: String?
        public var trainMonths = 1
        /// Whether the first model's training rows are stored as its history (`cyclone register --history`).
        public var history = true
        /// Stream time between a prediction and its label, and between evaluations.
        public var labelDelay: TimeInterval = 86_400
        public var evaluateEvery: TimeInterval = 86_400
        /// Labelled rows in the performance window, and rows in the drift window.
        public var window = 168
        /// Newest labelled rows a retrain trains on.
        public var trainingRows = 720
        /// The metric the policy watches (default: the task's), and when a retrain starts.
        public var metric: String?
        public var threshold: String?
        /// What asks for a retrain: the loss test (default) or the threshold.
        public var trigger = RetrainPolicy.Trigger.loss
        /// What the policy judges by (`PERFORMANCE_SOURCE`): the labels, or the estimate while labels are late.
        public var source = RetrainPolicy.Source.realised
        /// How a retrained version goes into service (shadow by default; a canary at `canaryPercent` until
        /// `canaryLabels` labels each).
        public var rollout = PlatformSettings.RolloutMode.shadow
        public var canaryPercent = 50
        public var canaryLabels = 48
        /// Where models and logs go (default: a new temporary folder).
        public var folder: String?
        /// Where predict, label-ingest, evaluate and retrain are built.
        public var binaries: String
        /// The servers' `DATABASE_URL` when not the environment's.
        public var databaseURL: String?

        public init(binaries: String) { self.binaries = binaries }
    }

    public let options: Options
    public let stream: ReplayStream
    public let model: ModelArtifact
    /// Where the replay starts: after the months the first model was trained on.
    public let start: Date
    /// The policy's metric and threshold (`nil`: none, for the loss trigger).
    public let metric: String
    public let threshold: String?
    /// The metric of the closing table (rmse, or log loss).
    public let error: String
    public let folder: String
    /// What is replayed, in one line.
    public let description: String
    public let replayRows: Range<Int>
    /// What the first model, left alone, predicts for each replayed row.
    public let firstModelOutputs: [Output?]
    /// The options the first model was trained with (optional features added), which the baselines share.
    let trainingOptions: TrainingOptions

    /// The model the same replay judged by the labels alone is named (`cyclone demo` with an estimate).
    public var labelsOnlyName: String { model.name + "-labels" }

    /// The local platform's model folder.
    public var models: String { "\(folder)/models" }

    /// Reads the stream and trains the first model: everything decided before the servers start.
    public init(_ options: Options) throws {
        self.options = options
        guard options.evaluateEvery >= 60 else { throw ReplayError("--evaluate-every must be at least 1m") }
        guard options.labelDelay <= 365 * 86_400 else {
            throw ReplayError("--label-delay must be at most 365d")
        }
        guard options.window > 0, options.canaryLabels > 0, options.trainMonths > 0 else {
            throw ReplayError("--window, --canary-labels and --train-months must be positive")
        }
        // A retrain holds out a fifth and needs MIN_TRAINING_ROWS (100) to train on.
        guard options.trainingRows >= 125 else { throw ReplayError("--training-rows must be at least 125") }
        guard (0...100).contains(options.canaryPercent) else { throw ReplayError("--canary-percent must be 0 to 100") }
        let csv: CSV, targetColumn: String, timeColumn: String, name: String
        var kinds = options.kinds
        if let data = options.data {
            guard let target = options.target, let time = options.time else {
                throw ReplayError("--data needs --target and --time")
            }
            do { csv = try CSV(contentsOf: URL(fileURLWithPath: data)) } catch { throw ReplayError("\(data): \(error)") }
            (targetColumn, timeColumn) = (target, time)
            name = options.name ?? URL(fileURLWithPath: data).deletingPathExtension().lastPathComponent
            description = "backtest of \(data): \(csv.rowCount) rows, predicting '\(target)'"
            let named = Array(kinds.keys) + options.ignore + Array(options.training.optionalFeatures)
            if let column = named.sorted().first(where: { !csv.header.contains($0) }) {
                throw ReplayError("'\(column)' is not a column of \(data)")
            }
        } else {
            csv = try Self.synthetic(days: options.days)
            (targetColumn, timeColumn) = ("count", "time")
            name = options.name ?? "bikes"
            kinds["hour"] = .categorical
            let changes = [(BikeStream.eBikes, "e-bikes from 1 April"), (BikeStream.hybridWork, "hybrid working from 15 September")]
                .filter { $0.0 < options.days }.map(\.1)
            description = "synthetic hourly bike-rental demand, \(options.days) days from 2025-01-01"
                + (changes.isEmpty ? "" : " (\(changes.joined(separator: ", ")))")
        }
        // The replay's evaluate judges this model alone (EVALUATE_MODELS, a list separated by commas).
        guard !name.contains(","), name.first?.isWhitespace != true, name.last?.isWhitespace != true else {
            throw ReplayError("the model's name '\(name)' holds a comma or starts or ends with a space: pass --name")
        }
        let targetCells = try ReplayStream.column(targetColumn, of: csv, option: "--target")
        let numericTarget = FeatureTable.inferKind(targetCells) == .numeric
        let family = options.family ?? .gbdt
        let task: ModelArtifact.Task = family == .ridge || (family == .gbdt && numericTarget) ? .regression : .binary
        let stream = try ReplayStream(csv: csv, time: timeColumn, target: targetColumn,
                                      task: task, kinds: kinds, ignore: options.ignore)
        self.stream = stream
        guard let first = stream.times.first else { throw ReplayError("the stream has no rows") }
        let month = Self.calendar.date(from: Self.calendar.dateComponents([.year, .month], from: first))!
        start = Self.calendar.date(byAdding: .month, value: options.trainMonths, to: month)!
        let firstRows = stream.rows(in: first..<start).filter { stream.labelled[$0] }
        let replayRows = stream.rows(in: start..<Date.distantFuture)
        self.replayRows = replayRows
        guard firstRows.count >= 50 else {
            throw ReplayError("the first \(options.trainMonths) month(s) hold \(firstRows.count) labelled rows; at least 50 are needed to train on")
        }
        guard !replayRows.isEmpty else { throw ReplayError("no rows after the first \(options.trainMonths) month(s) to replay") }

        var training = options.training
        training.family = family
        training.holdout = 0.2
        // A feature missing anywhere in the stream may be sent as null: the model imputes it.
        training.optionalFeatures.formUnion(stream.features.columns.filter { column in
            switch column.values {
            case .numeric(let v), .boolean(let v): v.contains { $0.isNaN }
            case .categorical(let v): v.contains(nil)
            }
        }.map(\.name))
        trainingOptions = training
        let model: ModelArtifact
        do {
            model = try Trainer(options: training).train(
                name: name, version: "1", features: stream.features.selecting(rows: firstRows),
                target: FeatureTable.Column(name: stream.target.name,
                                            values: stream.target.values.selecting(rows: firstRows)))
        } catch {
            throw ReplayError("the first model does not train: \(error)")
        }
        self.model = model
        let policyMetric: PerformanceMetric
        if let text = options.metric {
            guard let chosen = PerformanceMetric(rawValue: text), PerformanceMetric.available(for: model.task).contains(chosen) else {
                throw ReplayError("--metric must be one of \(PerformanceMetric.available(for: model.task).map(\.rawValue).joined(separator: ", ")) for a \(model.task.rawValue) model")
            }
            policyMetric = chosen
        } else {
            policyMetric = PerformanceMetric.defaultMetric(for: model.task)
        }
        metric = policyMetric.rawValue
        // The threshold trigger needs one (by default 10 % worse than the holdout, 20 % for an error); for the
        // loss trigger one is a floor, only when given.
        threshold = options.threshold ?? (options.trigger == .threshold ? (policyMetric.higherIsBetter ? "0.9x" : "1.2x") : nil)
        if let threshold, RetrainPolicy.Threshold(threshold) == nil {
            throw ReplayError("--threshold must be a number or a factor such as 0.8x, not '\(threshold)'")
        }
        error = model.task == .regression ? "rmse" : "log_loss"
        folder = options.folder ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("cyclone-demo-\(UUID().uuidString.prefix(8).lowercased())").path
        var outputs = [Output?](repeating: nil, count: stream.count)
        let replayed = model.outputs(for: stream.features.selecting(rows: Array(replayRows)))
        for (row, output) in zip(replayRows, replayed) { outputs[row] = output }
        firstModelOutputs = outputs
    }

    /// `days` days of the synthetic stream (45 to 365), as CSV.
    public static func synthetic(days: Int) throws -> CSV {
        guard (45...365).contains(days) else { throw ReplayError("--days must be 45 to 365") }
        return BikeStream().csv(days: days)
    }

    private static let calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// Writes the first model to the folder (which must be new or empty), migrates the database, starts the
    /// servers and replays the stream. Returns what the loop did, and the servers with evaluate still running
    /// for the dashboard (stop it with `servers.stop([servers.evaluate])`).
    public func run(client: PostgresClient, logger: Logger, output: ReplayOutput, dashboardPort: Int? = nil) async throws
        -> (LoopReplay.Outcome, LoopServers)
    {
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: folder), !existing.isEmpty {
            throw ReplayError("\(folder) is not empty; give --folder a new or empty folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            _ = try await LocalPlatform(modelDirectory: models).deploy(model, as: .live)
        } catch {
            throw ReplayError("cannot write the first model to \(models): \(error.localizedDescription)")
        }
        try await Migrator(client: client, logger: logger).migrate()
        // Judged by an estimate, the demo replays again as `<name>-labels`: that name must be free too, before
        // the first replay rather than after it.
        let names = [model.name] + (options.source == .realised ? [] : [labelsOnlyName])
        var taken: [String] = []
        // A start that failed may have left the history behind, though no model.
        for try await name in try await client.query("""
            SELECT name FROM model WHERE name = ANY(\(names)) UNION SELECT model_name FROM history WHERE model_name = ANY(\(names))
            """, logger: logger).decode(String.self) { taken.append(name) }
        if let name = names.first(where: taken.contains) {
            throw ReplayError("this database already holds a model named '\(name)'; pass --name or use a fresh database")
        }
        // The first model's training rows are its history, as `cyclone register --history` stores them: a retrain
        // learns from them too, as the expanding baseline does. The servers stamp what they store with the wall
        // clock, so the history is moved to end now, as though the stream's start were now.
        if options.history {
            let offset = Date().timeIntervalSince(start)
            let history = stream.history(stream.rows(in: Date.distantPast..<start).filter { stream.labelled[$0] })
                .map { History.Row(input: $0.input, label: $0.label, time: $0.time.addingTimeInterval(offset), key: $0.key) }
            try await History(client: client, logger: logger).add(model: model.name, source: "replay", rows: history)
        }
        let servers = try await LoopServers.start(binaries: options.binaries, folder: folder, environment: environment,
                                                  evaluatePort: dashboardPort)
        output.say("dashboard: \(servers.evaluate.base)/dashboard\n")
        let replay: LoopReplay.Outcome
        do {
            replay = try await LoopReplay(
                stream: stream, servers: servers, client: client, logger: logger, model: model, start: start,
                every: options.evaluateEvery, labelDelay: options.labelDelay, metric: metric, error: error,
                reload: .milliseconds(50), output: output
            ).run()
            // evaluate stays up for the dashboard.
            await servers.stop([servers.predict, servers.labels])
        } catch {
            await servers.stop()
            throw error
        }
        return (replay, servers)
    }

    /// The closing table: the metric per month of the replay for the first model left alone, the loop as it
    /// served, and the two calendar baselines, a retrain at every month's start on the newest window and on
    /// every row so far (both trained here: seconds to minutes).
    /// - Parameter labelsOnly: the same replay judged by the labels alone (`PERFORMANCE_SOURCE=realised`), when
    ///   this one acted on estimates: its column shows what acting before the labels bought.
    public func table(_ replay: LoopReplay.Outcome, labelsOnly: LoopReplay.Outcome? = nil) -> MonthlyTable {
        let monthly = monthlyBaseline(), expanding = monthlyBaseline(expanding: true)
        func loop(_ name: String, _ outcome: LoopReplay.Outcome) -> MonthlyTable.Strategy {
            .init(name: name, outputs: outcome.served, retrains: outcome.retrains, fits: outcome.fits,
                  deploys: outcome.deployments)
        }
        return MonthlyTable(metric: error, model: model, stream: stream, rows: replayRows, strategies: [
            .init(name: "first model", outputs: firstModelOutputs, retrains: 0, deploys: 0),
            loop("Cyclone loop", replay),
        ] + (labelsOnly.map { [loop("labels only", $0)] } ?? []) + [
            .init(name: "every month", outputs: monthly.outputs, retrains: monthly.retrains, deploys: monthly.retrains),
            .init(name: "expanding", outputs: expanding.outputs, retrains: expanding.retrains,
                  deploys: expanding.retrains),
        ])
    }

    /// The policy, in words.
    var policy: String {
        let floor = threshold.map { "\(metric) passes \($0)" }
        switch options.trigger {
        case .loss:
            return "retrain when the loss over the newest \(options.window) labels grows against the serving version's first \(options.window) or its holdout's (Welch p < 0.01 for the two on batch means, mean ×1.1)"
                + (floor.map { ", or when \($0)" } ?? "")
        case .threshold:
            return "retrain when \(metric) over the newest \(options.window) labels passes \(threshold ?? "")"
        }
    }

    /// How new versions go into service, in words.
    var rolloutText: String {
        switch options.rollout {
        case .shadow: "challengers in shadow, judged on up to \(options.window) labelled pairs at 4 looks"
        case .canary: "canary at \(options.canaryPercent) % until \(options.canaryLabels) labels each"
        case .direct: "new versions deployed at once"
        }
    }

    /// What the backtest prints before it starts: the stream, the first model, the policy, the folder.
    public var header: String {
        let holdout = model.training?.holdoutMetrics
        return """
            \(description)
            first model: \(model.name)@1 (\(model.predictor.family)) trained on \(model.training?.rows ?? 0) rows \
            to \(ReplayOutput.day(start)); holdout \(metric) \(holdout?[metric].map(ReplayOutput.number) ?? "–"), \
            \(error) \(holdout?[error].map(ReplayOutput.number) ?? "–")
            policy: \(policy); \
            \(rolloutText); \
            evaluate every \(Self.duration(options.evaluateEvery)), labels after \(Self.duration(options.labelDelay)), \
            judged by \(options.source == .realised ? "the labels" : options.source == .auto ? "the estimate while labels are short" : "labels and estimates")
            models and logs: \(folder)
            """
    }

    /// What the backtest prints at its end: the closing table, where the time went, where the results are.
    public func closing(_ replay: LoopReplay.Outcome, table: MonthlyTable) -> String {
        let seconds = { (duration: Duration) in String(format: "%.1f s", duration.seconds) }
        return """
            \(table.text)\(table.earlyActionText.map { "\n\n" + $0 } ?? "")

            replayed \(replayRows.count) rows in \(replay.requests) requests: predict \(seconds(replay.predicting)), \
            labels \(seconds(replay.labelling)), evaluate \(seconds(replay.evaluating)), retrains and swaps \(seconds(replay.waiting))
            The loop's predictions, labels, metrics, drift and events are in PostgreSQL (model '\(model.name)'): \
            psql "$DATABASE_URL". Models and server logs: \(folder)
            """
    }

    /// `90s`, `15m`, `12h`, `1d`: the largest unit that divides it.
    static func duration(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("d", 86_400.0), ("h", 3_600), ("m", 60)] where seconds >= size {
            if seconds.truncatingRemainder(dividingBy: size) == 0 { return "\(Int(seconds / size))\(unit)" }
        }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }

    /// What the three servers and the retrains they start read.
    var environment: [String: String] {
        // Only what a process needs from this one's (the rest of the settings are the replay's own, so a
        // variable left in the shell cannot change a replay's decisions).
        var environment = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "TMPDIR", "LANG", "DATABASE_URL"].contains($0.key) }
        for (key, value) in [
            // predict serves the model folder the local platform deploys into (its canary and shadow links too).
            "ROLLOUT": options.rollout.rawValue,
            "MODEL_DIR": models, "MODEL_RELOAD_INTERVAL": "50ms", "CANARY_PERCENT": "\(options.canaryPercent)",
            "CANARY_MIN_LABELS": "\(options.canaryLabels)",
            // The windows are counted in rows, never cut by the wall clock's age (which would depend on the
            // machine's speed): every version that served is evaluated each cycle.
            "PERFORMANCE_WINDOW_ROWS": "\(options.window)", "PERFORMANCE_WINDOW_MAX_AGE": "3650d",
            "DRIFT_WINDOW_ROWS": "\(options.window)", "DRIFT_WINDOW": "3650d",
            "RETRAIN_METRIC": metric, "RETRAIN_TRIGGER": options.trigger.rawValue,
            "PERFORMANCE_SOURCE": options.source.rawValue,
            // Only this replay's model: the database may hold another replay's, which is not ours to judge.
            "EVALUATE_MODELS": model.name,
            "MIN_LABELS": "\(max(1, options.window / 2))",
            // Stream time waits for the loop, and evaluate runs once a stream day: no cooldown is needed.
            "RETRAIN_COOLDOWN": "0s", "RETRAIN_COMMAND": "\(options.binaries)/retrain",
            "TRAINING_WINDOW_ROWS": "\(options.trainingRows)", "TRAINING_WINDOW_MAX_AGE": "3650d",
            "LOG_LEVEL": "warning", "STORE_MODE": "durable",
        ] { environment[key] = value }
        environment["RETRAIN_THRESHOLD"] = threshold
        if let url = options.databaseURL { environment["DATABASE_URL"] = url }
        return environment
    }

    /// A model trained at the start of every month after the first, on the newest labelled rows known by then
    /// (`trainingRows` of them, or with `expanding` every one), the cron job a loop has to beat (a month whose
    /// retrain fails keeps the previous month's model).
    public func monthlyBaseline(expanding: Bool = false) -> (outputs: [Output?], retrains: Int) {
        var outputs = firstModelOutputs
        var retrains = 0
        var current = model
        for (index, (_, rows)) in stream.months(in: replayRows).enumerated() where index > 0 {
            let monthStart = Self.calendar.date(from: Self.calendar.dateComponents([.year, .month],
                                                                                   from: stream.times[rows.lowerBound]))!
            let known = stream.rows(in: Date.distantPast..<monthStart.addingTimeInterval(-options.labelDelay))
            let labelled = known.filter { stream.labelled[$0] }
            let recent = Array(expanding ? labelled[...] : labelled.suffix(options.trainingRows))
            var training = trainingOptions
            training.holdout = 0
            if let retrained = try? Trainer(options: training).train(
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
