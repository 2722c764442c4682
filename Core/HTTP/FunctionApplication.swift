import HTTPTypes
import Hummingbird
import Logging

/// The router every HTTP function starts from: request metrics, trace-aware logging and JSON errors, then
/// `/healthz`, `/readyz` and `/metrics`. Errors under the prefixes `flatErrorsUnder` are `{"error": "…"}`.
public func functionRouter(project: String?, isUnavailable: @escaping @Sendable (any Error) -> Bool,
                           flatErrorsUnder: [String] = [],
                           readiness: @escaping OperationalRoutes<BasicRequestContext>.Readiness)
    -> Router<BasicRequestContext>
{
    _ = PrometheusExporter.registry  // before any metric is made
    // HEAD is answered wherever GET is, as GET without the body (RFC 9110 §9.3.2).
    let router = Router(options: .autoGenerateHeadEndpoints)
    router.addMiddleware {
        MetricsMiddleware()
        TraceLoggingMiddleware(project: project)
        APIErrorMiddleware(isUnavailable: isUnavailable, flatUnder: flatErrorsUnder)
    }
    OperationalRoutes(readiness: readiness).register(on: router)
    return router
}

/// The application for a function's router, listening on all interfaces (Cloud Run's contract; Hummingbird
/// alone would bind loopback).
public func functionApplication(router: Router<BasicRequestContext>, port: Int, logger: Logger)
    -> Application<RouterResponder<BasicRequestContext>>
{
    router.refuseOtherMethods()
    return Application(router: router, configuration: .init(address: .hostname("0.0.0.0", port: port), serverName: nil),
                logger: logger)
}

extension Router<BasicRequestContext> {
    /// Answers 405 with `Allow` (RFC 9110) on every route's path for the methods it does not serve, instead of
    /// Hummingbird's 404, and OPTIONS with 204 and `Allow`. HEAD is served wherever GET is (the router's option).
    /// Call once, after every route is added.
    func refuseOtherMethods() {
        var allowed: [String: Set<HTTPRequest.Method>] = [:]
        for route in routes { allowed["\(route.path)", default: []].insert(route.method) }
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete]
        for (path, served) in allowed {
            var answered = served.union([.options])
            if served.contains(.get) { answered.insert(.head) }
            let allow = answered.map(\.rawValue).sorted().joined(separator: ", ")
            on(RouterPath(path), method: .options) { _, _ -> Response in
                Response(status: .noContent, headers: [.allow: allow])
            }
            for method in methods where !served.contains(method) {
                on(RouterPath(path), method: method) { request, _ -> Response in
                    throw APIError(.methodNotAllowed, "\(request.method) is not served at \(path); use \(allow)",
                                   headers: [.allow: allow])
                }
            }
        }
    }
}
