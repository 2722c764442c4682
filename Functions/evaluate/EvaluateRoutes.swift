import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneHTTP
import CycloneRuntime
import CycloneStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `POST /evaluate` runs one cycle and answers its report. `GET /dashboard` is the loop's page; it reads the
/// JSON API (`/api/models`, `/api/metrics`, `/api/drift`, `/api/volume`, `/api/events`), which
/// `/openapi.json` describes.
struct EvaluateRoutes: Sendable {
    let evaluator: Evaluator
    /// How long a dashboard read, or a cycle's first query, may wait for PostgreSQL (`DATABASE_TIMEOUT`).
    var databaseTimeout: Duration = .seconds(10)

    func register(on router: Router<BasicRequestContext>) {
        router.post("/evaluate") { _, context in try await evaluate(context: context) }
        router.get("/dashboard") { _, _ in Self.page() }
        router.get("/openapi.json") { _, _ in jsonResponse(EvaluateOpenAPI.document) }
        router.get("/api/models") { _, _ in try await read { try await models() } }
        router.get("/api/metrics") { request, _ in try await read { try await metrics(request) } }
        router.get("/api/drift") { request, _ in try await read { try await drift(request) } }
        router.get("/api/volume") { request, _ in try await read { try await volume(request) } }
        router.get("/api/events") { request, _ in try await read { try await events(request) } }
        router.get("/api/shadow") { request, _ in try await read { try await shadow(request) } }
    }

    /// A dashboard read, answered 503 once `databaseTimeout` passes (the pool would hold it about a minute while
    /// PostgreSQL is unreachable).
    private func read(_ body: @escaping @Sendable () async throws -> Response) async throws -> Response {
        try await withTimeout(databaseTimeout, body)
    }

    /// The page is one document with its script and styles inline; the policy lets it reach nothing else.
    static func page() -> Response {
        Response(status: .ok, headers: [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ], body: .init(byteBuffer: ByteBuffer(bytes: DashboardPage.html)))
    }

    func models() async throws -> Response {
        let entries = try await evaluator.store.registry()
        let policy = evaluator.settings.policy
        // Per model: the share its canary answers (as the canary was started; this evaluator's setting when
        // the event does not say), and which version serves (the registry's rule, as the evaluator applies it).
        var canaryShare: [String: Int] = [:], serving: [String: String] = [:]
        for (name, versions) in Dictionary(grouping: entries, by: \.name) {
            if let canary = versions.first(where: { $0.status == "canary" }) {
                canaryShare[name] = canary.canaryPercent ?? evaluator.settings.platform.canaryPercent
            }
            serving[name] = ModelRegistry.servingVersion(
                live: versions.filter { $0.status == "live" }.map { ($0.version, $0.updatedAt) },
                predicted: versions.compactMap { entry in entry.lastPrediction.map { (entry.version, $0) } })
        }
        var models: [ModelEntry] = []
        for entry in entries {
            let holdout = try entry.holdoutMetrics.map { try JSONDecoder().decode([String: Double?].self, from: Data($0.utf8)) }
                .map { $0.compactMapValues { $0 } }
            let task = ModelArtifact.Task(rawValue: entry.task) ?? .regression
            let (metric, threshold) = policy.resolved(for: task)
            let traffic = switch entry.status {
            case "canary": canaryShare[entry.name] ?? 0
            case _ where serving[entry.name] == entry.version: 100 - (canaryShare[entry.name] ?? 0)
            default: 0
            }
            models.append(ModelEntry(
                name: entry.name, version: entry.version, family: entry.family, task: entry.task, status: entry.status,
                parentVersion: entry.parentVersion, trainingRows: entry.trainingRows,
                trainingWindow: entry.trainingWindow.map { .init(start: $0.start, end: $0.end) }, holdoutMetrics: holdout,
                comparison: try entry.comparison.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) },
                imageDigest: entry.imageDigest, reason: entry.reason, createdAt: entry.createdAt, updatedAt: entry.updatedAt,
                trafficPercent: traffic,
                policy: .init(metric: metric.rawValue, higherIsBetter: metric.higherIsBetter, threshold: threshold.description,
                              limit: policy.limit(task: task, holdout: holdout)),
                predictions: entry.predictions, firstPredictionAt: entry.firstPrediction, lastPredictionAt: entry.lastPrediction))
        }
        return try Self.json(["models": models])
    }

    /// Each shadow against the live version it was scored beside, on the same labelled rows.
    func shadow(_ request: Request) async throws -> Response {
        let comparisons = try await evaluator.store.shadowComparisons(try Self.filter(request, name: nil))
        return try Self.json(["comparisons": comparisons.map {
            ShadowEntry(model: $0.model, liveVersion: $0.liveVersion, shadowVersion: $0.shadowVersion, loss: $0.loss,
                        pairs: $0.pairs, liveMeanLoss: $0.liveMeanLoss, shadowMeanLoss: $0.shadowMeanLoss,
                        firstAt: $0.firstAt, lastAt: $0.lastAt)
        }])
    }

    func events(_ request: Request) async throws -> Response {
        let rows = try await evaluator.store.events(try Self.filter(request, name: "kind"))
        let events = try rows.map { row in
            EventEntry(id: row.id, at: row.at, model: row.model, version: row.version, kind: row.kind,
                       detail: try JSONDecoder().decode(JSONValue.self, from: Data(row.detail.utf8)))
        }
        return try Self.json(["events": events])
    }

    /// Volume and latency per version, in buckets of `bucket` seconds (by default about 120 over the span of
    /// the predictions selected, rounded to a whole number of seconds, minutes, hours or days).
    func volume(_ request: Request) async throws -> Response {
        let filter = try Self.filter(request, name: nil, other: ["bucket"])
        let bucket: Int
        if let text = request.uri.queryParameters["bucket"].map(String.init) {
            guard let value = Int(text), (1...31 * 86_400).contains(value) else {
                throw APIError(.badRequest, "'\(text)' is not a whole number of seconds from 1 to 2678400", path: "bucket")
            }
            bucket = value
        } else {
            let span = try await evaluator.store.predictionSpan(filter).map { $0.last.timeIntervalSince($0.first) } ?? 0
            bucket = Self.bucket(for: span)
        }
        let points = try await evaluator.store.volume(filter, bucket: bucket)
        let series = Self.series(points, key: { [$0.model, $0.version] }) { first, run in
            VolumeSeries(model: first.model, version: first.version, points: run.map {
                .init(at: $0.at, predictions: $0.predictions, labelled: $0.labelled, latencyP50: $0.latencyP50,
                      latencyP95: $0.latencyP95)
            })
        }
        return try Self.json(VolumeResponse(bucketSeconds: bucket, series: series))
    }

    /// The store's points, ordered by series, as one series per run of points with the same key.
    static func series<Point, Series>(_ points: [Point], key: (Point) -> [String],
                                      make: (_ first: Point, _ run: ArraySlice<Point>) -> Series) -> [Series] {
        var series: [Series] = [], start = 0
        for end in points.indices where end + 1 == points.count || key(points[end + 1]) != key(points[start]) {
            series.append(make(points[start], points[start...end]))
            start = end + 1
        }
        return series
    }

    /// About 120 buckets over `span` seconds, rounded up to a step a clock reads easily.
    static func bucket(for span: TimeInterval) -> Int {
        let steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400]
        let wanted = span / 120
        return steps.first { Double($0) >= wanted } ?? Int((wanted / 86_400).rounded(.up)) * 86_400
    }

    func evaluate(context: BasicRequestContext) async throws -> Response {
        let report: EvaluationReport
        do {
            // A store out of reach is answered in seconds, not after the pool's minute of trying.
            try await evaluator.store.client.ping(within: databaseTimeout, logger: context.logger)
            report = try await evaluator.run()
        } catch {
            context.logger.error("evaluation cycle failed", metadata: ["error": "\(String(reflecting: error))"])
            switch StoreProblem(error) {
            case .unavailable:
                throw APIError(.serviceUnavailable, "the evaluation store is unavailable; nothing was decided, retry later",
                               headers: [.retryAfter: "30"])
            case let problem:
                throw APIError(.internalServerError, "the evaluation cycle failed, nothing was decided: \(problem.explanation)")
            }
        }
        return jsonResponse(Array(try report.json()))
    }

    func metrics(_ request: Request) async throws -> Response {
        let points = try await evaluator.store.metricSeries(try Self.filter(request, name: "metric"))
        let series = Self.series(points, key: { [$0.model, $0.version, $0.metric] }) { first, run in
            MetricSeries(model: first.model, version: first.version, metric: first.metric,
                         points: run.map { .init(at: $0.at, value: $0.value, rows: $0.rows, lower: $0.lower, upper: $0.upper) })
        }
        return try Self.json(["series": series])
    }

    func drift(_ request: Request) async throws -> Response {
        let points = try await evaluator.store.driftSeries(try Self.filter(request, name: "feature"))
        let series = Self.series(points, key: { [$0.model, $0.version, $0.feature] }) { first, run in
            DriftSeries(model: first.model, version: first.version, feature: first.feature, points: run.map {
                .init(at: $0.at, test: $0.test, statistic: $0.statistic, pValue: $0.pValue, threshold: $0.threshold,
                      drifted: $0.drifted, psi: $0.psi, rows: $0.rows, missingRate: $0.missingRate, missing: $0.missing,
                      invalid: $0.invalid, outOfRange: $0.outOfRange, unseen: $0.unseen, refused: $0.refused,
                      qualityBreaches: $0.qualityBreaches)
            })
        }
        return try Self.json(["series": series])
    }

    /// `model`, `version`, the series name (`metric`, `feature` or `kind`), `since` (an ISO 8601 time or a
    /// duration back from now such as `24h`; 7 days by default), `limit` (1000 points; at most 10000), and
    /// the endpoint's `other` parameters, which it reads itself.
    static func filter(_ request: Request, name: String?, other: Set<String> = [], now: Date = Date()) throws
        -> EvaluationStore.SeriesFilter
    {
        let query = request.uri.queryParameters
        let known = Set(["model", "version", "since", "limit"] + [name].compactMap { $0 }).union(other)
        if let unknown = query.map({ String($0.key) }).sorted().first(where: { !known.contains($0) }) {
            throw APIError(.badRequest, "unknown query parameter '\(unknown)' (expected \(known.sorted().joined(separator: ", ")))",
                           path: unknown)
        }
        var since = now.addingTimeInterval(-7 * 86_400)
        // An empty `since` (which the schema allows) is the default, as an absent one.
        if let text = query["since"].map(String.init), !text.isEmpty {
            if let date = try? Date(text, strategy: .iso8601) {
                since = date
            } else if let duration = Duration.setting(text) {
                since = now.addingTimeInterval(-duration.seconds)
            } else {
                throw APIError(.badRequest, "'\(text)' is neither an ISO 8601 time nor a duration such as 24h (at most 100 years)", path: "since")
            }
        }
        var limit = 1_000
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...10_000).contains(value) else {
                throw APIError(.badRequest, "'\(text)' is not a whole number from 1 to 10000", path: "limit")
            }
            limit = value
        }
        // Text PostgreSQL cannot hold (a NUL) names nothing stored: refused here, not a 500 from the query.
        for key in ["model", "version"] + [name].compactMap({ $0 }) {
            if let text = query[Substring(key)].map(String.init), !Storable.accepts(text) {
                throw APIError(.badRequest, "holds the NUL character, which no stored name can", path: key)
            }
        }
        let model: String? = query["model"].map(String.init)
        let version: String? = query["version"].map(String.init)
        let series: String? = name.flatMap { query[Substring($0)].map(String.init) }
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
        /// An estimate's band (`estimated_…` metrics).
        var lower: Double?, upper: Double?
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
        var missing: Int?, invalid: Int?, outOfRange: Int?, unseen: Int?, refused: Int?
        var qualityBreaches: [String]

        enum CodingKeys: String, CodingKey {
            case at, test, statistic, pValue = "p_value", threshold, drifted, psi, rows, missingRate = "missing_rate"
            case missing, invalid, outOfRange = "out_of_range", unseen, refused, qualityBreaches = "quality_breaches"
        }
    }
    var model: String
    var version: String
    var feature: String
    var points: [Point]
}

struct ModelEntry: Encodable {
    struct Window: Encodable { var start: Date, end: Date }
    struct Policy: Encodable {
        var metric: String
        var higherIsBetter: Bool
        var threshold: String
        var limit: Double?
        enum CodingKeys: String, CodingKey { case metric, higherIsBetter = "higher_is_better", threshold, limit }
    }
    var name: String, version: String, family: String, task: String, status: String
    var parentVersion: String?
    var trainingRows: Int?
    var trainingWindow: Window?
    var holdoutMetrics: [String: Double]?
    var comparison: JSONValue?
    var imageDigest: String?, reason: String?
    var createdAt: Date, updatedAt: Date
    var trafficPercent: Int
    var policy: Policy
    var predictions: Int
    var firstPredictionAt: Date?, lastPredictionAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, version, family, task, status, parentVersion = "parent_version", trainingRows = "training_rows"
        case trainingWindow = "training_window", holdoutMetrics = "holdout_metrics", comparison, imageDigest = "image_digest"
        case reason, createdAt = "created_at", updatedAt = "updated_at", trafficPercent = "traffic_percent", policy
        case predictions, firstPredictionAt = "first_prediction_at", lastPredictionAt = "last_prediction_at"
    }

    /// Absent values are written as `null`, so every entry has every key.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(version, forKey: .version)
        try c.encode(family, forKey: .family)
        try c.encode(task, forKey: .task)
        try c.encode(status, forKey: .status)
        try c.encode(parentVersion, forKey: .parentVersion)
        try c.encode(trainingRows, forKey: .trainingRows)
        try c.encode(trainingWindow, forKey: .trainingWindow)
        try c.encode(holdoutMetrics, forKey: .holdoutMetrics)
        try c.encode(comparison, forKey: .comparison)
        try c.encode(imageDigest, forKey: .imageDigest)
        try c.encode(reason, forKey: .reason)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(trafficPercent, forKey: .trafficPercent)
        try c.encode(policy, forKey: .policy)
        try c.encode(predictions, forKey: .predictions)
        try c.encode(firstPredictionAt, forKey: .firstPredictionAt)
        try c.encode(lastPredictionAt, forKey: .lastPredictionAt)
    }
}

struct EventEntry: Encodable {
    var id: Int64
    var at: Date
    var model: String?, version: String?
    var kind: String
    var detail: JSONValue
}

struct ShadowEntry: Encodable {
    var model: String, liveVersion: String, shadowVersion: String, loss: String
    var pairs: Int
    var liveMeanLoss: Double, shadowMeanLoss: Double
    var firstAt: Date, lastAt: Date
    enum CodingKeys: String, CodingKey {
        case model, liveVersion = "live_version", shadowVersion = "shadow_version", loss, pairs,
             liveMeanLoss = "live_mean_loss", shadowMeanLoss = "shadow_mean_loss", firstAt = "first_at", lastAt = "last_at"
    }
}

struct VolumeResponse: Encodable {
    var bucketSeconds: Int
    var series: [VolumeSeries]
    enum CodingKeys: String, CodingKey { case bucketSeconds = "bucket_seconds", series }
}

struct VolumeSeries: Encodable {
    struct Point: Encodable {
        var at: Date
        var predictions: Int, labelled: Int
        var latencyP50: Double?, latencyP95: Double?
        enum CodingKeys: String, CodingKey {
            case at, predictions, labelled, latencyP50 = "latency_ms_p50", latencyP95 = "latency_ms_p95"
        }
    }
    var model: String
    var version: String
    var points: [Point]
}
