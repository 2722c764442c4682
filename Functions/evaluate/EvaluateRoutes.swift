import CycloneEvaluation
import CycloneModel
import CycloneServer
import CycloneStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `POST /evaluate` runs one cycle and answers its report; `GET /api/metrics` and `GET /api/drift` serve the
/// time series the cycles wrote, for dashboards.
struct EvaluateRoutes: Sendable {
    let evaluator: Evaluator

    func register(on router: Router<BasicRequestContext>) {
        router.post("/evaluate") { _, context in try await evaluate(context: context) }
        router.get("/api/metrics") { request, _ in try await metrics(request) }
        router.get("/api/drift") { request, _ in try await drift(request) }
    }

    func evaluate(context: BasicRequestContext) async throws -> Response {
        let report: EvaluationReport
        do {
            report = try await evaluator.run()
        } catch {
            context.logger.error("evaluation cycle failed", metadata: ["error": "\(String(reflecting: error))"])
            throw APIError(.serviceUnavailable, "the evaluation store is unavailable; nothing was decided, retry later",
                           headers: [.retryAfter: "30"])
        }
        return jsonResponse(Array(try report.json()))
    }

    func metrics(_ request: Request) async throws -> Response {
        let points = try await evaluator.store.metricSeries(try Self.filter(request, name: "metric"))
        var series: [MetricSeries] = []
        for point in points {
            if let last = series.last, last.model == point.model, last.version == point.version, last.metric == point.metric {
                series[series.count - 1].points.append(.init(at: point.at, value: point.value, rows: point.rows))
            } else {
                series.append(MetricSeries(model: point.model, version: point.version, metric: point.metric,
                                           points: [.init(at: point.at, value: point.value, rows: point.rows)]))
            }
        }
        return try Self.json(["series": series])
    }

    func drift(_ request: Request) async throws -> Response {
        let points = try await evaluator.store.driftSeries(try Self.filter(request, name: "feature"))
        var series: [DriftSeries] = []
        for point in points {
            let entry = DriftSeries.Point(at: point.at, test: point.test, statistic: point.statistic,
                                          pValue: point.pValue, threshold: point.threshold, drifted: point.drifted,
                                          psi: point.psi, rows: point.rows, missingRate: point.missingRate)
            if let last = series.last, last.model == point.model, last.version == point.version,
               last.feature == point.feature
            {
                series[series.count - 1].points.append(entry)
            } else {
                series.append(DriftSeries(model: point.model, version: point.version, feature: point.feature,
                                          points: [entry]))
            }
        }
        return try Self.json(["series": series])
    }

    /// `model`, `version`, the series name (`metric` or `feature`), `since` (an ISO 8601 time or a duration
    /// back from now such as `24h`; 7 days by default) and `limit` (1000 points; at most 10000).
    static func filter(_ request: Request, name: String, now: Date = Date()) throws -> EvaluationStore.SeriesFilter {
        let query = request.uri.queryParameters
        let known: Set<String> = ["model", "version", name, "since", "limit"]
        if let unknown = query.map({ String($0.key) }).sorted().first(where: { !known.contains($0) }) {
            throw APIError(.badRequest, "unknown query parameter '\(unknown)' (expected \(known.sorted().joined(separator: ", ")))",
                           path: unknown)
        }
        var since = now.addingTimeInterval(-7 * 86_400)
        if let text = query["since"].map(String.init) {
            if let date = try? Date(text, strategy: .iso8601) {
                since = date
            } else if let duration = Duration.setting(text) {
                since = now.addingTimeInterval(-duration.seconds)
            } else {
                throw APIError(.badRequest, "'\(text)' is neither an ISO 8601 time nor a duration such as 24h", path: "since")
            }
        }
        var limit = 1_000
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...10_000).contains(value) else {
                throw APIError(.badRequest, "'\(text)' is not a whole number from 1 to 10000", path: "limit")
            }
            limit = value
        }
        let model: String? = query["model"].map(String.init)
        let version: String? = query["version"].map(String.init)
        let series: String? = query[Substring(name)].map(String.init)
        return EvaluationStore.SeriesFilter(model: model, version: version, name: series, since: since, limit: limit)
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return jsonResponse(Array(try encoder.encode(value)))
    }
}

struct MetricSeries: Encodable {
    struct Point: Encodable {
        var at: Date
        var value: Double?
        var rows: Int
    }
    var model: String
    var version: String
    var metric: String
    var points: [Point]
}

struct DriftSeries: Encodable {
    struct Point: Encodable {
        var at: Date
        var test: String
        var statistic: Double?
        var pValue: Double?
        var threshold: Double?
        var drifted: Bool
        var psi: Double?
        var rows: Int
        var missingRate: Double?

        enum CodingKeys: String, CodingKey {
            case at, test, statistic, pValue = "p_value", threshold, drifted, psi, rows, missingRate = "missing_rate"
        }
    }
    var model: String
    var version: String
    var feature: String
    var points: [Point]
}
