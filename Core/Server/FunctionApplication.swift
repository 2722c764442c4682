import Hummingbird
import Logging

/// The router every HTTP function starts from: request metrics, trace-aware logging and JSON errors, then
/// `/healthz`, `/readyz` and `/metrics`.
public func functionRouter(project: String?, readiness: @escaping OperationalRoutes<BasicRequestContext>.Readiness)
    -> Router<BasicRequestContext>
{
    _ = PrometheusExporter.registry  // before any metric is made
    let router = Router()
    router.addMiddleware {
        MetricsMiddleware()
        TraceLoggingMiddleware(project: project)
        APIErrorMiddleware()
    }
    OperationalRoutes(readiness: readiness).register(on: router)
    return router
}

/// The application for a function's router, listening on all interfaces (Cloud Run's contract; Hummingbird
/// alone would bind loopback).
public func functionApplication(router: Router<BasicRequestContext>, port: Int, logger: Logger)
    -> Application<RouterResponder<BasicRequestContext>>
{
    Application(router: router, configuration: .init(address: .hostname("0.0.0.0", port: port), serverName: nil),
                logger: logger)
}
