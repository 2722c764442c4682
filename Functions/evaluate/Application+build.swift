import CycloneCloud
import CycloneEvaluation
import CycloneHTTP
import CycloneRuntime
import CycloneStore
import Hummingbird
import Logging
import PostgresNIO

/// Builds the evaluate server. Tests call this too, with their own platform.
func buildApplication(_ settings: EvaluateSettings, platform: (any Platform)? = nil, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let database = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
    let alerts = AlertNotifier(webhook: settings.evaluation.alertWebhook, logger: logger)
    let evaluator = Evaluator(client: database, settings: settings.evaluation,
                              platform: try platform ?? settings.evaluation.platform.platform(),
                              alerts: alerts, logger: logger)
    let started = StartupFlag()
    let router = functionRouter(project: settings.server.project,
                                isUnavailable: { StoreProblem($0) == .unavailable }) { started.isSet ? nil : "starting" }
    EvaluateRoutes(evaluator: evaluator, databaseTimeout: settings.databaseTimeout).register(on: router)
    var app = functionApplication(router: router, port: settings.server.port, logger: logger)
    let runner = DatabaseRunner(database)
    app.addServices(runner)
    app.beforeServerStarts {
        // The evaluator brings the schema up to date itself (idempotent, under the migration lock).
        await runner.running()
        try await Migrator(client: database, logger: logger).migrate()
        started.set()
    }
    return app
}
