import CycloneModel
import Foundation
import PostgresNIO

/// What the dashboard reads besides the metric and drift series: the registry with each version's
/// predictions, the loop's events, and prediction volume and latency over time.
extension EvaluationStore {
    /// A registered version as the dashboard shows it.
    public struct RegistryEntry: Sendable {
        public var name: String, version: String, family: String, task: String, status: String
        public var parentVersion: String?
        public var trainingRows: Int?
        public var trainingWindow: (start: Date, end: Date)?
        /// The trainer's holdout metrics (`{"rmse": …}`), as JSON text.
        public var holdoutMetrics: String?
        /// A retrained version's comparison with the live model on the same rows (`metric`, `rows`,
        /// `candidate`, `live`), as JSON text.
        public var comparison: String?
        public var imageDigest: String?, reason: String?
        public var createdAt: Date, updatedAt: Date
        /// The share of requests the version was started with as a canary (its newest `canary_started` event).
        public var canaryPercent: Int?
        /// Predictions stored for this version (from the drift rollups, one row per batch or merged block).
        public var predictions: Int
        public var firstPrediction: Date?, lastPrediction: Date?
    }

    /// Every registered version, by name and then age.
    public func registry() async throws -> [RegistryEntry] {
        let rows = try await client.query("""
            SELECT m.name, m.version, m.family, m.task, m.status, m.parent_version, m.training_rows,
                   lower(m.training_window), upper(m.training_window),
                   (m.artifact -> 'training' -> 'holdoutMetrics')::text,
                   CASE WHEN m.holdout_metrics ? 'candidate' THEN m.holdout_metrics::text END, m.image_digest,
                   m.reason, m.created_at, m.updated_at, coalesce(r.rows, 0)::int8, r.first_at, r.last_at,
                   (SELECT (e.detail ->> 'percent')::float8::int8 FROM event e
                    WHERE e.model_name = m.name AND e.model_version = m.version AND e.kind = 'canary_started'
                    ORDER BY e.created_at DESC LIMIT 1)
            FROM model m
            LEFT JOIN (SELECT model_name, model_version, sum(rows) AS rows, min(first_at) AS first_at,
                              max(last_at) AS last_at
                       FROM drift_rollup WHERE rows > 0 GROUP BY 1, 2) r
                   ON r.model_name = m.name AND r.model_version = m.version
            ORDER BY m.name, m.created_at, m.version
            """, logger: logger)
        var entries: [RegistryEntry] = []
        for try await row in rows.decode((String, String, String, String, String, String?, Int?, Date?, Date?, String?,
                                          String?, String?, String?, Date, Date, Int, Date?, Date?, Int?).self)
        {
            let window = row.7.flatMap { start in row.8.map { (start: start, end: $0) } }
            entries.append(RegistryEntry(
                name: row.0, version: row.1, family: row.2, task: row.3, status: row.4, parentVersion: row.5,
                trainingRows: row.6, trainingWindow: window, holdoutMetrics: row.9, comparison: row.10,
                imageDigest: row.11, reason: row.12, createdAt: row.13, updatedAt: row.14, canaryPercent: row.18,
                predictions: row.15, firstPrediction: row.16, lastPrediction: row.17))
        }
        return entries
    }

    public struct EventRow: Sendable, Equatable {
        public var id: Int64
        public var at: Date
        public var model: String?, version: String?
        public var kind: String
        /// The event's detail, as JSON text.
        public var detail: String
    }

    /// `event` rows in time order (the oldest first), at most `limit` of the newest; `filter.name` is a kind.
    /// A replay's clock marks (`replay_clock`, one per cycle) are listed only when asked for by kind.
    public func events(_ filter: SeriesFilter) async throws -> [EventRow] {
        let rows = try await client.query("""
            SELECT id, created_at, model_name, model_version, kind, detail::text FROM (
                SELECT * FROM event
                WHERE created_at >= \(filter.since) AND (\(filter.model)::text IS NULL OR model_name = \(filter.model))
                  AND (\(filter.version)::text IS NULL OR model_version = \(filter.version))
                  AND (kind = \(filter.name) OR (\(filter.name)::text IS NULL AND kind <> 'replay_clock'))
                ORDER BY created_at DESC, id DESC LIMIT \(filter.limit)) newest
            ORDER BY created_at, id
            """, logger: logger)
        var events: [EventRow] = []
        for try await (id, at, model, version, kind, detail) in rows.decode((Int64, Date, String?, String?, String, String).self) {
            events.append(EventRow(id: id, at: at, model: model, version: version, kind: kind, detail: detail))
        }
        return events
    }

    public struct VolumePoint: Sendable, Equatable {
        public var model: String, version: String
        /// The start of the bucket.
        public var at: Date
        public var predictions: Int, labelled: Int
        public var latencyP50: Double?, latencyP95: Double?
    }

    /// The span of the predictions `filter` selects, or `nil` when there are none; read from the drift
    /// rollups (a row per batch or merged block, indexed by time), not the predictions.
    public func predictionSpan(_ filter: SeriesFilter) async throws -> (first: Date, last: Date)? {
        let rows = try await client.query("""
            SELECT greatest(min(first_at), \(filter.since)), max(last_at) FROM drift_rollup
            WHERE last_at >= \(filter.since) AND rows > 0
              AND (\(filter.model)::text IS NULL OR model_name = \(filter.model))
              AND (\(filter.version)::text IS NULL OR model_version = \(filter.version))
            """, logger: logger)
        for try await (first, last) in rows.decode((Date?, Date?).self) {
            if let first, let last { return (first, last) }
        }
        return nil
    }

    /// Per version and bucket of `bucket` seconds: predictions stored, how many have their label, and the
    /// median and 95th percentile of predict's latency per request (milliseconds); at most `limit` of the
    /// newest buckets, in time order. It reads the predictions of the range (by the model-and-time index).
    public func volume(_ filter: SeriesFilter, bucket: Int) async throws -> [VolumePoint] {
        let rows = try await client.query("""
            SELECT * FROM (
            SELECT model_name, model_version,
                   date_bin(make_interval(secs => \(bucket)), created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS at,
                   count(*)::int8, count(label)::int8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
            FROM prediction
            WHERE created_at >= \(filter.since) AND (\(filter.model)::text IS NULL OR model_name = \(filter.model))
              AND (\(filter.version)::text IS NULL OR model_version = \(filter.version))
            GROUP BY 1, 2, 3
            ORDER BY 3 DESC, 1, 2
            LIMIT \(filter.limit)) newest
            ORDER BY 1, 2, 3
            """, logger: logger)
        var points: [VolumePoint] = []
        for try await row in rows.decode((String, String, Date, Int, Int, Double?, Double?).self) {
            points.append(VolumePoint(model: row.0, version: row.1, at: row.2, predictions: row.3, labelled: row.4,
                                      latencyP50: row.5, latencyP95: row.6))
        }
        return points
    }

    /// A shadow against the live version it was scored beside, on the same labelled rows.
    public struct ShadowComparison: Sendable, Equatable {
        public var model: String, liveVersion: String, shadowVersion: String
        /// The per-row loss: `absolute error` (regression) or `log loss` (classification).
        public var loss: String
        public var pairs: Int
        public var liveMeanLoss: Double, shadowMeanLoss: Double
        public var firstAt: Date, lastAt: Date
    }

    /// Per model, live version (`filter.version`, if given) and shadow: the labelled rows served in `filter`'s
    /// range that both scored, and the mean loss of each on them (what the shadow verdict tests, on every pair rather than its sample).
    public func shadowComparisons(_ filter: SeriesFilter) async throws -> [ShadowComparison] {
        let loss = { (shadow: Bool) in
            "CASE WHEN m.task = 'regression' THEN \(EvaluationWindows.loss(.regression, shadow: shadow)) "
                + "ELSE \(EvaluationWindows.loss(.binary, shadow: shadow)) END"
        }
        var bindings = PostgresBindings()
        bindings.append(filter.since)
        bindings.append(filter.model)
        bindings.append(filter.limit)
        bindings.append(filter.version)
        let sql = """
            SELECT model_name, model_version, shadow_version, task, count(*)::int8, avg(live), avg(shadow),
                   min(created_at), max(created_at)
            FROM (SELECT p.model_name, p.model_version, p.shadow_version, p.created_at, m.task,
                         \(loss(false)) AS live, \(loss(true)) AS shadow
                  FROM prediction p JOIN model m ON m.name = p.model_name AND m.version = p.model_version
                  WHERE p.shadow_version IS NOT NULL AND p.label IS NOT NULL AND p.created_at >= $1
                    AND ($2::text IS NULL OR p.model_name = $2) AND ($4::text IS NULL OR p.model_version = $4)) paired
            WHERE live IS NOT NULL AND shadow IS NOT NULL
            GROUP BY 1, 2, 3, 4
            ORDER BY 1, 8, 3
            LIMIT $3
            """
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        var comparisons: [ShadowComparison] = []
        for try await row in rows.decode((String, String, String, String, Int, Double, Double, Date, Date).self) {
            comparisons.append(ShadowComparison(
                model: row.0, liveVersion: row.1, shadowVersion: row.2,
                loss: row.3 == "regression" ? "absolute error" : "log loss", pairs: row.4, liveMeanLoss: row.5,
                shadowMeanLoss: row.6, firstAt: row.7, lastAt: row.8))
        }
        return comparisons
    }
}
