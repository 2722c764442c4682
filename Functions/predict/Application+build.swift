import CycloneModel
import CycloneHTTP
import CycloneRuntime
import CycloneServing
import CycloneStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Builds the predict server: loads the model (or looks at the model folder), then wires the database pool,
/// the prediction writer and the routes. Tests call this too.
func buildApplication(_ settings: PredictSettings, logger: Logger) async throws -> some ApplicationProtocol {
    _ = PrometheusExporter.registry  // before the writer makes its metrics
    let database = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
    let registry = ModelRegistry(client: database, logger: logger)
    let runner = DatabaseRunner(database)
    let registration = ModelRegistration(runner: runner, registry: registry, logger: logger)
    let models = try loadModels(settings, logger: logger) { registration.register($0, status: $1) }
    let writer = PredictionWriter(database: settings.database.url, logger: logger,
                                  configuration: settings.writerConfiguration)
    let running = StartupFlag()
    let readiness: OperationalRoutes<BasicRequestContext>.Readiness = {
        guard running.isSet else { return "starting: the prediction writer is not running yet" }
        return registration.schemaProblem.current
    }
    let router = functionRouter(project: settings.server.project, isUnavailable: { StoreProblem($0) == .unavailable },
                                flatErrorsUnder: InferenceRoutes.prefixes, readiness: readiness)
    let routes = PredictRoutes(models: models, writer: writer, settings: settings)
    routes.register(on: router)
    let inference = Inference(predict: routes, readiness: readiness)
    InferenceRoutes(inference: inference).register(on: router)
    var app = functionApplication(router: router, port: settings.restPort, logger: logger)
    // Services start in this order and stop in reverse: the server stops first, then the writer flushes (through
    // a pool of its own), then the pool the registration uses.
    app.addServices(runner, writer, registration)
    // Without reloading the watcher still looks once, at the start (a model file's canary and shadow).
    app.addServices(ModelWatcher(models: models, interval: settings.modelReload))
    if let port = settings.grpcPort {
        // gRPC's usual 4 MiB at most per message: the transport buffers a whole message per call before the body
        // budget sees it.
        app.addServices(GRPCServerService(port: port, maxMessageBytes: min(settings.server.maxBodyBytes, 4 << 20),
                                          inference: inference, logger: logger))
    }
    app.beforeServerStarts { running.set() }
    return app
}

/// The models `settings` name: `MODEL_PATH`'s, loaded now (a file that does not load stops the start), or
/// `MODEL_DIR`'s, each loaded when first asked for (a folder that cannot be read stops the start).
private func loadModels(_ settings: PredictSettings, logger: Logger,
                        served: @escaping @Sendable (ModelArtifact, ModelRegistry.Status) -> Void) throws -> ModelSet
{
    switch settings.models {
    case .file(let path):
        let model = try ServedModel.load(path: path, strictCategories: settings.strictCategories)
        logger.info("model loaded", metadata: [
            "model": "\(model.artifact.name)", "version": "\(model.artifact.version)",
            "task": "\(model.artifact.task.rawValue)",
        ])
        served(model.artifact, .live)
        let source = ModelSource(.files(name: model.artifact.name, live: path, canary: settings.canaryPath,
                                        shadow: settings.shadowPath),
                                 strictCategories: settings.strictCategories, logger: logger)
        return ModelSet(source: source, preloaded: [model], canaryPercent: settings.canaryPercent, served: served)
    case .folder(let folder):
        let names: [String]
        do { names = try folder.names() } catch {
            throw ModelFolderError("MODEL_DIR \(folder.path) cannot be read: \((error as NSError).localizedDescription)")
        }
        logger.info("serving a model folder", metadata: [
            "folder": "\(folder.path)", "models": "\(names.joined(separator: ","))",
            "cache_size": "\(settings.modelCacheSize)"])
        if names.isEmpty { logger.warning("the model folder holds no model yet (NAME.json); each is served once it does") }
        let source = ModelSource(.folder(folder), strictCategories: settings.strictCategories, logger: logger)
        return ModelSet(source: source, capacity: settings.modelCacheSize, canaryPercent: settings.canaryPercent,
                        served: served)
    }
}

/// A model folder predict cannot start with.
struct ModelFolderError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
