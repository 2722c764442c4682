import CycloneModel
import CycloneMonitoring
import Foundation
import Logging
import PostgresNIO

/// What the evaluator writes and the dashboard reads: the `metric` and `drift` time series and the `event`
/// audit trail, with the retrain state of each model.
public struct EvaluationStore: Sendable {
    /// The kinds of `event` rows the loop writes.
    public enum EventKind: String, Sendable, CaseIterable {
        case retrainRequested = "retrain_requested"
        case retrainStarted = "retrain_started"
        case retrainFailed = "retrain_failed"
        case retrainFinished = "retrain_finished"
        case deployed
        case canaryStarted = "canary_started"
        case promoted
        case rolledBack = "rolled_back"
        case shadowStarted = "shadow_started"
        /// A shadow's verdict is not in yet: written when it starts waiting and after each look that decided
        /// nothing, with the figures.
        case shadowWaiting = "shadow_waiting"
        case discarded
        case alert
        /// A replay's stream time (`detail.stream_at`) at the event's wall-clock time: the dashboard draws a replay
        /// in stream time from these. Listed only when asked for by kind.
        case replayClock = "replay_clock"
    }

    /// Whether this evaluator may start a retrain of a model.
    public enum RetrainClaim: Sendable, Equatable {
        /// Yes: the `retrain_requested` event with this id is written.
        case claimed(eventID: Int64)
        /// No: one was requested at `since` and has not finished.
        case running(since: Date)
        /// No: the last deploy or retrain request was too recent.
        case coolingDown(until: Date)
    }

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// One `metric` row per defined metric of the window.
    public func record(_ window: PerformanceWindow, name: String, version: String, at time: Date) async throws {
        let metrics = window.metrics.sorted { $0.key < $1.key }
        guard !metrics.isEmpty else { return }
        try await client.query("""
            INSERT INTO metric (model_name, model_version, name, value, rows, window_start, window_end, computed_at)
            SELECT \(name), \(version), m, v, \(window.labels), \(window.start)::timestamptz, \(window.end)::timestamptz, \(time)
            FROM UNNEST(\(metrics.map(\.key))::text[], \(metrics.map(\.value))::float8[]) AS t(m, v)
            """, logger: logger)
    }

    /// One `metric` row per estimated metric, named `estimated_<metric>`, with its band; over the window the
    /// estimate read.
    public func record(_ estimate: PerformanceEstimate, name: String, version: String, at time: Date) async throws {
        let metrics = estimate.metrics.filter { $0.value.value.isFinite }.sorted { $0.key < $1.key }
        guard !metrics.isEmpty else { return }
        try await client.query("""
            INSERT INTO metric (model_name, model_version, name, value, rows, window_start, window_end, computed_at,
                                lower, upper)
            SELECT \(name), \(version), m, v, \(estimate.rows), \(estimate.windowStart)::timestamptz,
                   \(estimate.windowEnd)::timestamptz, \(time), NULLIF(lo, 'NaN'), NULLIF(hi, 'NaN')
            FROM UNNEST(\(metrics.map { "estimated_" + $0.key })::text[], \(metrics.map(\.value.value))::float8[],
                        \(metrics.map(\.value.lower))::float8[], \(metrics.map(\.value.upper))::float8[]) AS t(m, v, lo, hi)
            """, logger: logger)
    }

    /// One `drift` row per feature, one for the prediction (`prediction`) and one for the dataset
    /// (`dataset`: the drifted share against the required share, and the requests predict refused). The
    /// data-quality checks that breached are in each row's `detail.quality_breaches`.
    public func record(_ report: DriftReport, window: DriftWindow, name: String, version: String, at time: Date,
                       datasetShare: Double, dataQuality: DataQualityReport? = nil) async throws
    {
        func breaches(_ feature: String) -> JSONValue {
            .array((dataQuality?.breaches(of: feature) ?? []).map(JSONValue.string))
        }
        let details = report.features.map { Self.detail($0, breaches: breaches($0.feature)) }
            + (report.prediction.map { [Self.detail($0)] } ?? [])
        // One transaction: an evaluation's columns and its dataset row are stored together or not at all.
        let columns = report.features + (report.prediction.map { [$0] } ?? [])
        let logger = logger, datasetBreaches = breaches("dataset").jsonText
        try await client.committing(logger: logger) { connection in
            try await Self.insert(columns, details: details, name: name, version: version, start: window.start,
                                  end: window.end, at: time, on: connection, logger: logger)
            try await connection.query("""
                INSERT INTO drift (model_name, model_version, feature, test, statistic, p_value, threshold, drifted, psi,
                                   rows, missing, invalid, missing_rate, reference_missing_rate, out_of_range, unseen,
                                   detail, window_start, window_end, computed_at)
                VALUES (\(name), \(version), 'dataset', 'drifted_share', \(report.driftedShare), NULL, \(datasetShare),
                        \(report.datasetDrift), NULL, \(window.rows), NULL, NULL, NULL, NULL, NULL, NULL,
                        jsonb_build_object('tested', \(report.tested)::int, 'drifted', \(report.drifted)::int,
                                           'rejected_requests', \(window.rejected)::bigint,
                                           'quality_breaches', \(datasetBreaches)::jsonb),
                        \(window.start)::timestamptz, \(window.end)::timestamptz, \(time))
                """, logger: logger)
        }
    }

    /// A row of the estimation window that is no feature: `target` (the labels against the reference window's,
    /// `FeatureDrift.target`) or `multivariate` (`ReconstructionDrift`), with its own `detail` fields.
    public func record(_ row: FeatureDrift, detail: [String: JSONValue] = [:], name: String, version: String,
                       start: Date?, end: Date?, at time: Date) async throws
    {
        let logger = logger
        try await client.withConnection { connection in
            try await Self.insert([row], details: [Self.detail(row, extra: detail)], name: name, version: version,
                                  start: start, end: end, at: time, on: connection, logger: logger)
        }
    }

    /// A column's `detail`: its kind, stability, unseen categories, note, adjusted p-value, persistence run, and
    /// its breached data-quality checks when it is a feature.
    private static func detail(_ drift: FeatureDrift, breaches: JSONValue? = nil, extra: [String: JSONValue] = [:]) -> String {
        var detail = extra
        detail["kind"] = .string(drift.kind.rawValue)
        if let breaches { detail["quality_breaches"] = breaches }
        if let stability = drift.stability { detail["stability"] = .string(stability.rawValue) }
        if let unseen = drift.unseenCategories { detail["unseen_categories"] = .object(unseen.mapValues { .number(Double($0)) }) }
        if let note = drift.note { detail["note"] = .string(note) }
        if let adjusted = drift.adjustedPValue { detail["p_value_adjusted"] = .number(adjusted) }
        if let signal = drift.signal { detail["signal"] = .bool(signal) }
        if let consecutive = drift.consecutive { detail["consecutive"] = .number(Double(consecutive)) }
        return JSONValue.object(detail).jsonText
    }

    private static func insert(_ rows: [FeatureDrift], details: [String], name: String, version: String, start: Date?,
                               end: Date?, at time: Date, on connection: PostgresConnection, logger: Logger) async throws
    {
        guard !rows.isEmpty else { return }
        try await connection.query("""
            INSERT INTO drift (model_name, model_version, feature, test, statistic, p_value, threshold, drifted, psi,
                               rows, missing, invalid, missing_rate, reference_missing_rate, out_of_range, unseen,
                               detail, window_start, window_end, computed_at)
            SELECT \(name), \(version), f, t, NULLIF(s, '')::float8, NULLIF(p, '')::float8, th, d,
                   NULLIF(psi, '')::float8, r, m, i, NULLIF(mr, '')::float8, rmr, NULLIF(o, '')::bigint,
                   NULLIF(u, '')::bigint, dt::jsonb, \(start)::timestamptz, \(end)::timestamptz, \(time)
            FROM UNNEST(\(rows.map(\.feature))::text[], \(rows.map(\.test.rawValue))::text[],
                        \(rows.map { text($0.statistic) })::text[], \(rows.map { text($0.pValue) })::text[],
                        \(rows.map(\.threshold))::float8[], \(rows.map(\.drifted))::bool[],
                        \(rows.map { text($0.psi) })::text[], \(rows.map(\.rows))::bigint[],
                        \(rows.map(\.missing))::bigint[], \(rows.map(\.invalid))::bigint[],
                        \(rows.map { text($0.missingRate) })::text[], \(rows.map(\.referenceMissingRate))::float8[],
                        \(rows.map { text($0.outOfRange) })::text[], \(rows.map { text($0.unseen) })::text[],
                        \(details)::text[])
                 AS t(f, t, s, p, th, d, psi, r, m, i, mr, rmr, o, u, dt)
            """, logger: logger)
    }

    /// Per column (`prediction` too), how many of the version's newest evaluations in a row, up to `windows`,
    /// its test drifted (the window's own verdict, before persistence). Reads at most `windows` rows a column.
    public func driftRuns(name: String, version: String, columns: [String], windows: Int) async throws -> [String: Int] {
        let rows = try await client.query("""
            SELECT f, coalesce(array_agg(newest.signal ORDER BY newest.computed_at DESC, newest.id DESC)
                              FILTER (WHERE newest.id IS NOT NULL), '{}')
            FROM unnest(\(columns)::text[]) AS f
            LEFT JOIN LATERAL (
                SELECT id, computed_at, coalesce((detail->>'signal')::boolean, drifted) AS signal FROM drift
                WHERE model_name = \(name) AND feature = f AND model_version = \(version)
                ORDER BY computed_at DESC, id DESC LIMIT \(windows)) newest ON true
            GROUP BY f
            """, logger: logger)
        var runs: [String: Int] = [:]
        for try await (feature, signals) in rows.decode((String, [Bool]).self) {
            runs[feature] = signals.prefix { $0 }.count
        }
        return runs
    }

    /// Appends an `event` row; returns its id.
    @discardableResult
    public func event(_ kind: EventKind, name: String?, version: String?, detail: JSONValue = .object([:]))
        async throws -> Int64
    {
        let rows = try await client.query("""
            INSERT INTO event (model_name, model_version, kind, detail)
            VALUES (\(name), \(version), \(kind.rawValue), \(detail.jsonText)::jsonb) RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw PostgresError.protocol("INSERT … RETURNING returned no row")
    }

    /// Records that shadow `version` of `name` is still waiting for its verdict, with `detail`, unless the newest
    /// such event for it already had `looksDone` looks done (one event per look, with its figures, not one per
    /// cycle).
    public func shadowWaiting(name: String, version: String, looksDone: Int, detail: JSONValue) async throws {
        try await client.query("""
            INSERT INTO event (model_name, model_version, kind, detail)
            SELECT \(name), \(version), 'shadow_waiting', \(detail.jsonText)::jsonb
            WHERE (SELECT (detail->>'looks_done')::bigint FROM event
                   WHERE model_name = \(name) AND model_version = \(version) AND kind = 'shadow_waiting'
                   ORDER BY id DESC LIMIT 1) IS DISTINCT FROM \(looksDone)
            """, logger: logger)
    }

    /// Records `retrain_failed` for the retrain that `request` (a `retrain_requested` event) started, unless
    /// its end is already recorded (a retrain that fails in an orderly way records its own). Returns whether
    /// it wrote one.
    @discardableResult
    public func retrainEnded(request: Int64, name: String, version: String, reason: String) async throws -> Bool {
        let detail: JSONValue = .object(["reason": .string(reason), "request_event": .number(Double(request))])
        let rows = try await client.query("""
            INSERT INTO event (model_name, model_version, kind, detail)
            SELECT \(name), \(version), 'retrain_failed', \(detail.jsonText)::jsonb
            WHERE NOT EXISTS (SELECT FROM event WHERE model_name = \(name) AND id > \(request)
                                  AND kind IN ('retrain_finished', 'retrain_failed'))
            RETURNING id
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    /// When the model's newest retrain outcome discarded a challenger to `version` (a candidate retrained from
    /// it rejected, or a canary beside it rolled back): when that was, and how many labelled predictions
    /// `version` has made since, counted up to `enough`. `nil` when the newest outcome put a version into
    /// service, or there is none.
    public func sinceDiscard(name: String, version: String, enough: Int) async throws -> (at: Date, labels: Int)? {
        let rows = try await client.query("""
            WITH last AS (
                SELECT created_at, kind, detail->>'status' AS status,
                       coalesce(detail->>'parent', detail->>'live_version') AS parent FROM event
                WHERE model_name = \(name) AND kind IN ('retrain_finished', 'rolled_back', 'discarded', 'deployed', 'promoted',
                                                       'canary_started', 'shadow_started')
                ORDER BY id DESC LIMIT 1)
            SELECT created_at, (SELECT count(*) FROM (
                                    SELECT 1 FROM prediction
                                    WHERE model_name = \(name) AND model_version = \(version) AND label IS NOT NULL
                                      AND created_at > last.created_at LIMIT \(enough)) fresh)::int
            FROM last WHERE (kind IN ('rolled_back', 'discarded') OR (kind = 'retrain_finished' AND status = 'rejected'))
                        AND parent = \(version)
            """, logger: logger)
        for try await (at, labels) in rows.decode((Date, Int).self) { return (at, labels) }
        return nil
    }

    /// The labelled predictions of model `name` (any version) made since `version` was trained, or since a
    /// retrain was last asked for on its behalf if that is later (whatever became of it: a challenger
    /// discarded, a candidate rejected or never deployed, a retrain that failed), counted up to `enough`: the
    /// new evidence a challenger could learn from. Training ends at the newest row of the version's training
    /// window, or, for a version registered without one (the first model), when it was registered. `nil` for
    /// a version the registry does not hold.
    public func labelsSinceTraining(name: String, version: String, enough: Int) async throws -> Int? {
        let rows = try await client.query("""
            WITH since AS (
                SELECT greatest(coalesce(upper(m.training_window), m.created_at),
                                (SELECT max(e.created_at) FROM event e
                                 WHERE e.model_name = m.name AND e.model_version = m.version
                                   AND e.kind = 'retrain_requested')) AS at
                FROM model m WHERE m.name = \(name) AND m.version = \(version))
            SELECT (SELECT count(*) FROM (
                        SELECT 1 FROM prediction
                        WHERE model_name = \(name) AND label IS NOT NULL AND created_at > since.at
                        LIMIT \(enough)) fresh)::int
            FROM since
            """, logger: logger)
        for try await labels in rows.decode(Int.self) { return labels }
        return nil
    }

    /// Claims the right to start a retrain of model `name`, atomically: under a transaction-scoped advisory
    /// lock on the model, it checks that no retrain is running (a `retrain_requested` without a later
    /// `retrain_finished` or `retrain_failed`, younger than `timeout`) and that the last deploy, promotion or
    /// request is older than `cooldown`, and then writes the `retrain_requested` event. Two evaluators at once
    /// therefore start one retrain.
    public func claimRetrain(name: String, version: String, cooldown: Duration, timeout: Duration,
                             detail: JSONValue) async throws -> RetrainClaim
    {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('cyclone.retrain:' || \(name)))",
                                       logger: logger)
            let state = try await connection.query("""
                SELECT now(),
                       (SELECT max(created_at) FROM event WHERE model_name = \(name) AND kind = 'retrain_requested'),
                       (SELECT max(created_at) FROM event WHERE model_name = \(name)
                           AND kind IN ('retrain_finished', 'retrain_failed')),
                       (SELECT max(created_at) FROM event WHERE model_name = \(name)
                           AND kind IN ('retrain_requested', 'deployed', 'promoted'))
                """, logger: logger)
            var now = Date(), requested: Date?, ended: Date?, recent: Date?
            for try await row in state.decode((Date, Date?, Date?, Date?).self) { (now, requested, ended, recent) = row }
            if let requested, ended.map({ $0 < requested }) ?? true, now < requested + timeout.seconds {
                return .running(since: requested)
            }
            if let recent, now < recent + cooldown.seconds {
                return .coolingDown(until: recent + cooldown.seconds)
            }
            let rows = try await connection.query("""
                INSERT INTO event (model_name, model_version, kind, detail)
                VALUES (\(name), \(version), 'retrain_requested', \(detail.jsonText)::jsonb) RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return .claimed(eventID: id) }
            throw PostgresError.protocol("INSERT … RETURNING returned no row")
        }
    }
}

extension EvaluationStore {
    /// A filter on the time series.
    public struct SeriesFilter: Sendable {
        public var model: String?
        public var version: String?
        /// A metric name, or a feature name for drift.
        public var name: String?
        public var since: Date
        public var limit: Int

        public init(model: String? = nil, version: String? = nil, name: String? = nil, since: Date, limit: Int) {
            self.model = model
            self.version = version
            self.name = name
            self.since = since
            self.limit = limit
        }
    }

    public struct MetricPoint: Sendable, Equatable {
        public var model: String, version: String, metric: String
        public var value: Double?
        public var rows: Int
        /// An estimate's band (`estimated_…` metrics); `nil` for realised ones.
        public var lower: Double?, upper: Double?
        public var at: Date
    }

    public struct DriftPoint: Sendable, Equatable {
        public var model: String, version: String, feature: String, test: String
        public var statistic: Double?, pValue: Double?, threshold: Double?, psi: Double?
        public var drifted: Bool
        public var rows: Int
        public var missingRate: Double?
        /// Data quality in the window: values missing, invalid, outside the training range, unseen categories.
        public var missing: Int?, invalid: Int?, outOfRange: Int?, unseen: Int?
        /// The dataset row's requests predict refused in the window.
        public var refused: Int?
        /// The data-quality checks that breached (`missing`, `out_of_range`…; `refused` on the dataset row).
        public var qualityBreaches: [String]
        public var at: Date
    }

    /// `metric` rows in time order (the oldest first), at most `limit` of the newest.
    public func metricSeries(_ filter: SeriesFilter) async throws -> [MetricPoint] {
        let rows = try await client.query("""
            SELECT model_name, model_version, name, value, rows, lower, upper, computed_at FROM (
                SELECT * FROM metric
                WHERE computed_at >= \(filter.since) AND (\(filter.model)::text IS NULL OR model_name = \(filter.model))
                  AND (\(filter.version)::text IS NULL OR model_version = \(filter.version))
                  AND (\(filter.name)::text IS NULL OR name = \(filter.name))
                ORDER BY computed_at DESC, id DESC LIMIT \(filter.limit)) newest
            ORDER BY model_name, model_version, name, computed_at, id
            """, logger: logger)
        var points: [MetricPoint] = []
        for try await (model, version, metric, value, count, lower, upper, at)
            in rows.decode((String, String, String, Double?, Int, Double?, Double?, Date).self)
        {
            points.append(MetricPoint(model: model, version: version, metric: metric, value: value, rows: count,
                                      lower: lower, upper: upper, at: at))
        }
        return points
    }

    /// `drift` rows in time order (the oldest first), at most `limit` of the newest.
    public func driftSeries(_ filter: SeriesFilter) async throws -> [DriftPoint] {
        let rows = try await client.query("""
            SELECT model_name, model_version, feature, test, statistic, p_value, threshold, psi, drifted, rows,
                   missing_rate, missing, invalid, out_of_range, unseen, (detail->>'rejected_requests')::bigint,
                   ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(detail->'quality_breaches')
                                                          WHEN 'array' THEN detail->'quality_breaches' END)),
                   computed_at FROM (
                SELECT * FROM drift
                WHERE computed_at >= \(filter.since) AND (\(filter.model)::text IS NULL OR model_name = \(filter.model))
                  AND (\(filter.version)::text IS NULL OR model_version = \(filter.version))
                  AND (\(filter.name)::text IS NULL OR feature = \(filter.name))
                ORDER BY computed_at DESC, id DESC LIMIT \(filter.limit)) newest
            ORDER BY model_name, model_version, feature, computed_at, id
            """, logger: logger)
        var points: [DriftPoint] = []
        for try await row in rows.decode((String, String, String, String, Double?, Double?, Double?, Double?, Bool, Int,
                                          Double?, Int?, Int?, Int?, Int?, Int?, [String], Date).self)
        {
            points.append(DriftPoint(model: row.0, version: row.1, feature: row.2, test: row.3, statistic: row.4,
                                     pValue: row.5, threshold: row.6, psi: row.7, drifted: row.8, rows: row.9,
                                     missingRate: row.10, missing: row.11, invalid: row.12, outOfRange: row.13,
                                     unseen: row.14, refused: row.15, qualityBreaches: row.16, at: row.17))
        }
        return points
    }
}

/// An optional number as text for an UNNEST column (`NULLIF(x, '')` turns '' back into NULL); Swift's
/// description of a `Double` reads back to the same value.
private func text(_ value: (some CustomStringConvertible)?) -> String { value.map(\.description) ?? "" }
