import CoreMetrics
import CycloneModel
import Foundation
import Hummingbird
import Metrics
import Prometheus

/// The process's Prometheus registry, bootstrapped as the swift-metrics backend on first use.
///
/// Touch `registry` before creating any metric: metrics made before the bootstrap go nowhere. Metric names
/// with dots (Hummingbird's `http.server.request.duration`) are written with underscores.
public enum PrometheusExporter {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        factory.nameAndLabelSanitizer = { name, labels in
            (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    private static func sanitize(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" ? $0 : "_" })
    }
}

/// `GET /healthz` (the process answers), `GET /readyz` (it can serve: `readiness` says why not), and
/// `GET /metrics` (Prometheus text format).
public struct OperationalRoutes<Context: RequestContext>: Sendable {
    /// Returns `nil` when ready, or the reason it is not.
    public typealias Readiness = @Sendable () async -> String?

    let readiness: Readiness

    public init(readiness: @escaping Readiness) { self.readiness = readiness }

    public func register(on router: Router<Context>) {
        router.get("/healthz") { _, _ in jsonResponse(#"{"status":"ok"}"#) }
        router.get("/readyz") { _, _ in
            if let reason = await readiness() {
                var writer = JSONWriter()
                writer.raw("{\"status\":\"not ready\",\"reason\":")
                writer.string(reason)
                writer.raw("}")
                return jsonResponse(writer.string, status: .serviceUnavailable)
            }
            return jsonResponse(#"{"status":"ready"}"#)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: PrometheusExporter.registry.emitToBuffer())))
        }
    }
}

/// A response with a JSON body already written.
public func jsonResponse(_ json: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
}

public func jsonResponse(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}
