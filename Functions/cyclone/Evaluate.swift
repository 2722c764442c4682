import ArgumentParser
import Configuration
import CycloneCloud
import CycloneEvaluation
import CycloneModel
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
        abstract: "Add a model artifact to the model registry (predict registers the model it serves by itself).")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The model artifact.") var model: String
    @Option(help: "candidate, canary, live, retired or rejected.") var status: String = "live"

    func run() async throws {
        guard let status = ModelRegistry.Status(rawValue: status) else {
            Cyclone.fail("--status must be candidate, canary, live, retired or rejected, not '\(self.status)'")
        }
        let artifact = Cyclone.model(at: model)
        let new = await database.withClient { client, logger in
            try await Migrator(client: client, logger: logger).migrate()
            return try await ModelRegistry(client: client, logger: logger).register(artifact, status: status)
        }
        print(new ? "registered \(artifact.name)@\(artifact.version) as \(status.rawValue)"
                  : "\(artifact.name)@\(artifact.version) was already registered")
    }
}
