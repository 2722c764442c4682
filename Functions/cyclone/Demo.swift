import ArgumentParser
import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneReplay
import CycloneRuntime
import CycloneTraining
import Foundation
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
            model left alone, for the loop, and for a retrain at the start of every month. With \
            --performance-source estimated or auto the loop is replayed a second time judged by the labels \
            alone, and the table shows both.
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
    @Flag(inversion: .prefixedNo, help: "Store the first model's training rows as its history, as cyclone register --history does, for retrains to learn from.")
    var history = true
    @Option(help: "How long after its prediction a label arrives (stream time).") var labelDelay = "1d"
    @Option(help: "How often evaluate runs (stream time).") var evaluateEvery = "1d"
    @Option(help: "What the policy judges by (PERFORMANCE_SOURCE): realised (the labels), estimated, or auto (the estimate while labels are short).")
    var performanceSource = "realised"
    @Option(help: "Labelled rows in the performance window, and rows in the drift window.") var window = 168
    @Option(help: "Newest labelled rows a retrain trains on (TRAINING_WINDOW_ROWS).") var trainingRows = 720
    @Option(help: "The metric the policy watches (default: r2, or roc_auc for a classifier).") var metric: String?
    @Option(help: "What asks for a retrain: loss (the loss grows against the serving version's first window or its holdout's) or threshold.")
    var trigger = "loss"
    @Option(help: """
        With --trigger threshold, when a retrain starts: a number, or a factor of the live model's holdout value \
        (default: 0.9x for a metric where higher is better, 1.2x otherwise). With the loss trigger, a floor \
        besides (default: none).
        """)
    var threshold: String?
    @Option(help: "How a retrained version goes into service: shadow (scored beside live until a paired verdict), canary, or direct.")
    var rollout = "shadow"
    @Option(help: "Share of requests a new version answers as a canary (--rollout canary) before promotion; 0 deploys at once.")
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
        if let export {
            do {
                guard data == nil, target == nil, time == nil, columns.named.isEmpty else {
                    throw ReplayError("--export writes the synthetic stream; it does not go with --data, --target, --time or column options")
                }
                // Cells hold no commas or quotes: numbers, times and words.
                let csv = try Backtest.synthetic(days: fast ? 75 : days)
                let text = ([csv.header] + csv.rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
                do { try text.write(toFile: export, atomically: true, encoding: .utf8) } catch {
                    throw ReplayError("cannot write \(export): \(error.localizedDescription)")
                }
                print("wrote \(csv.rowCount) rows of the stream to \(export)")
                return
            } catch { Cyclone.fail("\(error)") }
        }
        // The database first: a missing or unreachable one is said before minutes of training, not after.
        await database.withClient { _, _ in }  // it asks PostgreSQL first
        let backtest: Backtest
        do { backtest = try Backtest(try options()) } catch { Cyclone.fail("\(error)") }
        let output = ReplayOutput()
        output.say(backtest.header)
        // Told to stop mid-replay, the demo takes its servers (and a retrain running) down with it.
        ChildProcess.stopChildrenOnSignals()
        let dashboardPort = dashboardPort
        let (replay, servers) = await database.withClient { client, logger in
            try await backtest.run(client: client, logger: logger, output: output, dashboardPort: dashboardPort)
        }
        // Judged by an estimate: the same replay once more by the labels alone, so the table shows what acting
        // before the labels bought.
        var labelsOnly: LoopReplay.Outcome?
        if backtest.options.source != .realised {
            var options = backtest.options
            options.source = .realised
            options.name = backtest.labelsOnlyName
            options.folder = backtest.folder + "/labels-only"
            output.say("\nthe same replay judged by the labels alone (PERFORMANCE_SOURCE=realised, model \(options.name!)), for the table's \"labels only\" column:")
            let second: Backtest
            do { second = try Backtest(options) } catch {
                await servers.stop([servers.evaluate])
                Cyclone.fail("\(error)")
            }
            let (outcome, labelServers) = await database.withClient { client, logger in
                do {
                    return try await second.run(client: client, logger: logger, output: output)
                } catch {
                    // The first replay's evaluate still serves its dashboard: it must not outlive a failure.
                    await servers.stop([servers.evaluate])
                    throw error
                }
            }
            await labelServers.stop()
            labelsOnly = outcome
        }
        output.say("\n" + backtest.closing(replay, table: backtest.table(replay, labelsOnly: labelsOnly)))
        if serve ?? (isatty(STDIN_FILENO) == 1) {
            let signals = await UnixSignalsSequence(trapping: [.sigint, .sigterm, .sighup])
            ChildProcess.handleSignalsAgain()
            output.say("\nthe dashboard stays up at \(servers.evaluate.base)/dashboard: Ctrl-C to stop")
            for await _ in signals { break }
        }
        await servers.stop([servers.evaluate])
    }

    /// The options in the backtest's terms; a combination that cannot go together is refused here.
    private func options() throws -> Backtest.Options {
        if let dashboardPort, !(1...65_535).contains(dashboardPort) {
            throw ReplayError("--dashboard-port must be 1 to 65535, not \(dashboardPort)")
        }
        var options = Backtest.Options(binaries: try Self.binaries())
        options.labelDelay = try seconds(labelDelay, "--label-delay")
        options.evaluateEvery = try seconds(evaluateEvery, "--evaluate-every")
        guard let source = RetrainPolicy.Source(rawValue: performanceSource) else {
            throw ReplayError("--performance-source must be realised, estimated or auto, not '\(performanceSource)'")
        }
        options.source = source
        if let data {
            guard !fast, days == 365 else { throw ReplayError("--fast and --days are for the synthetic stream, not --data") }
            options.data = data
            options.target = target
            options.time = time
            options.kinds = columns.kinds
            options.ignore = columns.ignore
        } else {
            guard target == nil, time == nil, columns.named.isEmpty else {
                throw ReplayError("--target, --time, --categorical, --numeric, --boolean, --ignore and --optional go with --data")
            }
            options.days = fast ? 75 : days
        }
        if let text = family {
            guard let chosen = Family(rawValue: text) else {
                throw ReplayError("--family must be one of \(Family.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
            }
            options.family = chosen
        }
        options.training = columns.training(options.family ?? .gbdt)
        options.name = name
        options.trainMonths = trainMonths
        options.history = history
        options.window = window
        options.trainingRows = trainingRows
        options.metric = metric
        options.threshold = threshold
        guard let trigger = RetrainPolicy.Trigger(rawValue: trigger) else {
            throw ReplayError("--trigger must be loss or threshold, not '\(trigger)'")
        }
        options.trigger = trigger
        guard let mode = PlatformSettings.RolloutMode(rawValue: rollout) else {
            throw ReplayError("--rollout must be shadow, canary or direct, not '\(rollout)'")
        }
        options.rollout = mode
        options.canaryPercent = canaryPercent
        options.canaryLabels = canaryLabels
        options.folder = folder
        options.databaseURL = database.databaseURL
        return options
    }

    private func seconds(_ text: String, _ option: String) throws -> TimeInterval {
        guard let duration = Duration.setting(text) else {
            throw ReplayError("\(option) must be a duration such as 12h or 1d, not '\(text)'")
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
            throw ReplayError("\(folder)/\(name) is not built: run `swift build` first")
        }
        return folder
    }
}
