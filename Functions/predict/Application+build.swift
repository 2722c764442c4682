import CycloneModel
import CycloneHTTP
import CycloneRuntime
import CycloneServing
import CycloneStore
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Builds the predict server: loads the model, then wires the database pool, the prediction writer and the
/// routes. Tests call this too.
func buildApplication(_ settings: PredictSettings, logger: Logger) async throws -> some ApplicationProtocol {
    _ = PrometheusExporter.registry  // before the writer makes its metrics
    let model = try ServedModel.load(path: settings.modelPath, strictCategories: settings.strictCategories)
    logger.info("model loaded", metadata: [
        "model": "\(model.artifact.name)", "version": "\(model.artifact.version)", "task": "\(model.artifact.task.rawValue)",
    ])
    let database = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
    let writer = PredictionWriter(database: settings.database.url, logger: logger,
                                  configuration: settings.writerConfiguration)
    let running = StartupFlag()
    let registry = ModelRegistry(client: database, logger: logger)
    let runner = DatabaseRunner(database)
    let registration = ModelRegistration(runner: runner, registry: registry, artifact: model.artifact, logger: logger)
    let readiness: OperationalRoutes<BasicRequestContext>.Readiness = {
        guard running.isSet else { return "starting: the prediction writer is not running yet" }
        return registration.schemaProblem.current
    }
    let router = functionRouter(project: settings.server.project, isUnavailable: { StoreProblem($0) == .unavailable },
                                flatErrorsUnder: InferenceRoutes.prefixes, readiness: readiness)
    let models = ModelSet([model], canaryPercent: settings.canaryPercent)
    let routes = PredictRoutes(models: models, name: model.artifact.name, writer: writer, settings: settings)
    routes.register(on: router)
    let inference = Inference(predict: routes, readiness: readiness)
    InferenceRoutes(inference: inference).register(on: router)
    var app = functionApplication(router: router, port: settings.restPort, logger: logger)
    // Services start in this order and stop in reverse: the server stops first, then the writer flushes (through
    // a pool of its own), then the pool the registration and the model watcher use.
    app.addServices(runner, writer, registration)
    // Without reloading the watcher still loads the canary and shadow once, at the start.
    if settings.modelReload != nil || settings.canaryPath != nil || settings.shadowPath != nil {
        app.addServices(ModelWatcher(path: settings.modelPath, canaryPath: settings.canaryPath,
                                     shadowPath: settings.shadowPath, interval: settings.modelReload, models: models,
                                     name: model.artifact.name, strictCategories: settings.strictCategories,
                                     registry: registry, logger: logger))
    }
    if let port = settings.grpcPort {
        // gRPC's usual 4 MiB at most per message: the transport buffers a whole message per call before the body
        // budget sees it.
        app.addServices(GRPCServerService(port: port, maxMessageBytes: min(settings.server.maxBodyBytes, 4 << 20),
                                          inference: inference))
    }
    app.beforeServerStarts { running.set() }
    return app
}

