import CycloneHTTP
import CycloneRuntime
import CycloneStore
import Hummingbird
import Logging
import PostgresNIO

/// Builds the label-ingest server. Tests call this too.
func buildApplication(_ settings: LabelSettings, logger: Logger) async throws -> some ApplicationProtocol {
    let database = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
    let started = StartupFlag()
    let router = functionRouter(project: settings.server.project,
                                isUnavailable: { StoreProblem($0) == .unavailable }) { started.isSet ? nil : "starting" }
    LabelRoutes(store: LabelStore(client: database, logger: logger, strict: settings.strictLabels), settings: settings,
                logger: logger)
        .register(on: router)
    var app = functionApplication(router: router, port: settings.server.port, logger: logger)
    app.addServices(DatabaseRunner(database))
    app.beforeServerStarts { started.set() }
    return app
}
