import CycloneModel
import CycloneMonitoring
import Foundation
import Logging
import PostgresNIO

/// Which stored predictions a window holds: the newest `rows` of a model version no older than `maxAge`.
/// Bounded by count as well as by time, so a replay faster than real time behaves like real traffic.
public struct WindowBounds: Sendable, Equatable {
    public var rows: Int
    public var maxAge: Duration

    public init(rows: Int, maxAge: Duration) {
        self.rows = rows
        self.maxAge = maxAge
    }

    func since(_ now: Date) -> Date { now.addingTimeInterval(-maxAge.seconds) }
}

/// A model version with predictions stored, and when it last served.
public struct ServedVersion: Sendable, Equatable {
    public var name: String
    public var version: String
    public var lastPrediction: Date
}

/// The labelled predictions of a performance window, reduced to metrics.
public struct PerformanceWindow: Sendable, Equatable {
    /// Labelled predictions in the window, and those whose label does not fit the task (a string for a
    /// regression, a class the model does not know): they are counted, never used.
    public var labelled = 0
    public var invalidLabels = 0
    public var start: Date?
    public var end: Date?
    /// By `PerformanceMetric` raw value (plus `mean_error` for regressions); undefined metrics are absent.
    public var metrics: [String: Double] = [:]
    /// The labels the metrics were computed on.
    public var labels: Int { labelled - invalidLabels }
}

/// The predictions of a drift window, counted per feature against the reference bins.
public struct DriftWindow: Sendable, Equatable {
    public var rows = 0
    /// Requests predict refused (bad input) in the window's time.
    public var rejected = 0
    /// Rows in the window's time counted against another reference profile than the registered one (a
    /// version re-profiled after it served); they are left out.
    public var otherProfileRows = 0
    public var start: Date?
    public var end: Date?
    public var columns: [String: WindowColumn] = [:]
    public var prediction: WindowColumn?
}

/// The evaluator's reads: every aggregate runs in PostgreSQL, one statement per window, and only counts and
/// sums come back.
public struct EvaluationWindows: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Model versions whose newest prediction is at or after `since` (one index probe per version).
    public func servedVersions(since: Date) async throws -> [ServedVersion] {
        let rows = try await client.query("""
            WITH RECURSIVE version(name, version) AS (
                (SELECT model_name, model_version FROM prediction ORDER BY model_name, model_version LIMIT 1)
                UNION ALL
                SELECT next.model_name, next.model_version FROM version, LATERAL (
                    SELECT model_name, model_version FROM prediction
                    WHERE (model_name, model_version) > (version.name, version.version)
                    ORDER BY model_name, model_version LIMIT 1) next
            )
            SELECT name, version, last FROM (
                SELECT name, version, (SELECT max(created_at) FROM prediction p
                                       WHERE p.model_name = version.name AND p.model_version = version.version) AS last
                FROM version) v
            WHERE last >= \(since)
            ORDER BY name, version
            """, logger: logger)
        var versions: [ServedVersion] = []
        for try await (name, version, last) in rows.decode((String, String, Date).self) {
            versions.append(ServedVersion(name: name, version: version, lastPrediction: last))
        }
        return versions
    }

    /// The metrics of the newest labelled predictions of `artifact`'s version: one statement per window that
    /// returns the window's size and span with its sums. Regressions read the typed `label_number` and
    /// `value_number` columns; classifiers read each row's JSON once, in the window's own LIMITed subquery (which
    /// the planner does not flatten into the aggregates, so no aggregate repeats the extraction).
    public func performance(of artifact: ModelArtifact, bounds: WindowBounds, now: Date = Date()) async throws
        -> PerformanceWindow
    {
        var bindings = PostgresBindings()
        bindings.append(artifact.name)
        bindings.append(artifact.version)
        bindings.append(bounds.since(now))
        bindings.append(bounds.rows)
        func labelled(_ columns: String) -> String {
            """
            WITH w AS (
                SELECT \(columns), created_at FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND created_at >= $3
                ORDER BY created_at DESC, id DESC LIMIT $4)
            """
        }
        var window = PerformanceWindow()

        switch artifact.task {
        case .regression:
            let sql = labelled("label_number AS y, value_number AS p") + """
                SELECT count(*)::bigint, min(created_at), max(created_at), count(p - y)::bigint, coalesce(sum(p - y), 0), coalesce(sum(abs(p - y)), 0),
                       coalesce(sum((p - y) * (p - y)), 0), coalesce(sum(y) FILTER (WHERE p IS NOT NULL), 0),
                       coalesce(sum(y * y) FILTER (WHERE p IS NOT NULL), 0),
                       coalesce(sum(abs(p - y) / abs(y)) FILTER (WHERE y <> 0), 0),
                       count(*) FILTER (WHERE y = 0 AND p IS NOT NULL)
                FROM w
                """
            let r = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings),
                                  as: (Int, Date?, Date?, Int, Double, Double, Double, Double, Double, Double, Int).self)
            (window.labelled, window.start, window.end) = (r.0, r.1, r.2)
            var sums = RegressionMetrics.Sums()
            (sums.count, sums.error, sums.absoluteError, sums.squaredError) = (r.3, r.4, r.5, r.6)
            (sums.label, sums.squaredLabel, sums.relativeError, sums.zeroLabels) = (r.7, r.8, r.9, r.10)
            window.invalidLabels = window.labelled - sums.count
            if window.labelled > 0 { window.metrics = RegressionMetrics(sums: sums).values }

        case .binary:
            let classes = artifact.classes ?? []
            guard classes.count == 2 else { return window }
            bindings.append(classes[0])
            bindings.append(classes[1])
            // ROC AUC as the Mann–Whitney U: for each score, its positives times the negatives scored lower
            // (ties counting half).
            let sql = labelled("""
                label #>> '{}' AS y,
                CASE WHEN jsonb_typeof(prediction->'probabilities'->$6) = 'number'
                     THEN (prediction->'probabilities'->>$6)::float8 END AS s
                """) + """
                , v AS (SELECT y = $6 AS positive, s FROM w WHERE y IN ($5, $6) AND s IS NOT NULL),
                c AS (SELECT positive, s, least(greatest(s, \(logLossEpsilon)), 1 - \(logLossEpsilon)) AS p FROM v),
                g AS (SELECT s, count(*) FILTER (WHERE positive) AS np, count(*) FILTER (WHERE NOT positive) AS nn
                      FROM v GROUP BY s),
                u AS (SELECT sum(np * (below + nn / 2.0))::float8 AS u FROM (
                          SELECT np, nn, coalesce(sum(nn) OVER (ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING
                                                                AND 1 PRECEDING), 0) AS below FROM g) ranked)
                SELECT (SELECT count(*) FROM w)::bigint, (SELECT min(created_at) FROM w), (SELECT max(created_at) FROM w),
                       count(*) FILTER (WHERE positive AND s > 0.5), count(*) FILTER (WHERE NOT positive AND s > 0.5),
                       count(*) FILTER (WHERE NOT positive AND s <= 0.5), count(*) FILTER (WHERE positive AND s <= 0.5),
                       coalesce(sum(CASE WHEN positive THEN -ln(p) ELSE -ln(1 - p) END), 0),
                       coalesce(sum((s - CASE WHEN positive THEN 1 ELSE 0 END) ^ 2), 0),
                       (SELECT u FROM u)
                FROM c
                """
            let r = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings),
                                  as: (Int, Date?, Date?, Int, Int, Int, Int, Double, Double, Double?).self)
            (window.labelled, window.start, window.end) = (r.0, r.1, r.2)
            var sums = BinaryMetrics.Sums()
            (sums.truePositives, sums.falsePositives, sums.trueNegatives, sums.falseNegatives) = (r.3, r.4, r.5, r.6)
            (sums.logLoss, sums.brier) = (r.7, r.8)
            let positives = Double(sums.truePositives + sums.falseNegatives)
            let negatives = Double(sums.trueNegatives + sums.falsePositives)
            let auc = positives > 0 && negatives > 0 ? r.9.map { $0 / (positives * negatives) } : nil
            window.invalidLabels = window.labelled - sums.count
            if window.labelled > 0 { window.metrics = BinaryMetrics(sums: sums, rocAUC: auc).values }

        case .multiclass:
            let classes = artifact.classes ?? []
            bindings.append(classes)
            // One row per (label, predicted class), and a last row (NULL label) with the window's size and span.
            let sql = labelled("""
                label #>> '{}' AS y, prediction->>'class' AS c,
                CASE WHEN jsonb_typeof(prediction->'probabilities'->(label #>> '{}')) = 'number'
                     THEN (prediction->'probabilities'->>(label #>> '{}'))::float8 END AS p
                """) + """
                SELECT y, c, count(*)::bigint, sum(-ln(least(greatest(p, \(logLossEpsilon)), 1 - \(logLossEpsilon)))),
                       NULL::timestamptz, NULL::timestamptz
                FROM w WHERE y = ANY($5) AND p IS NOT NULL GROUP BY y, c
                UNION ALL
                SELECT NULL, NULL, count(*)::bigint, NULL::float8, min(created_at), max(created_at) FROM w
                """
            var sums = MulticlassMetrics.Sums(classCount: classes.count)
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            typealias Row = (String?, String?, Int, Double?, Date?, Date?)
            for try await (label, predicted, n, logLoss, start, end) in rows.decode(Row.self) {
                guard let label else {
                    (window.labelled, window.start, window.end) = (n, start, end)
                    continue
                }
                guard let y = index[label], let c = predicted.flatMap({ index[$0] }) else { continue }
                sums.confusion[y][c] += n
                sums.count += n
                sums.logLoss += logLoss ?? 0
            }
            window.invalidLabels = window.labelled - sums.count
            if window.labelled > 0 { window.metrics = MulticlassMetrics(sums: sums).values }
        }
        return window
    }

    /// The newest predictions of `artifact`'s version, counted per feature (and for the prediction) on the
    /// bins of its reference profile: the sum of the drift rollups predict stored with them, newest first,
    /// until `bounds.rows` rows or `bounds.maxAge` (in whole rollups: a merged block holds at most a minute
    /// and `DriftRollups.blockRows` rows). One statement, so one snapshot, whatever merging runs meanwhile.
    /// `until` ends the window there instead of at the newest rollup (a window one season earlier).
    public func drift(of artifact: ModelArtifact, bounds: WindowBounds, now: Date = Date(), until: Date? = nil)
        async throws -> DriftWindow
    {
        var window = DriftWindow()
        guard let layout = DriftLayout(artifact) else { return window }
        let since = bounds.since(now)
        let until = until ?? .distantFuture
        // Rollups with cells count only against this layout; those without (refusals) count for any.
        let rows = try await client.query("""
            WITH ranked AS (
                SELECT first_at, last_at, rows, rejected, cells, counts, sums, unseen,
                       sum(rows) OVER (ORDER BY last_at DESC, id DESC) AS upto
                FROM drift_rollup
                WHERE model_name = \(artifact.name) AND model_version = \(artifact.version) AND last_at >= \(since)
                  AND last_at <= \(until) AND (layout = \(layout.fingerprint) OR (layout IS NULL AND rows = 0))),
            w AS MATERIALIZED (SELECT * FROM ranked WHERE upto - rows < \(bounds.rows))
            SELECT 0, NULL::int, sum(rows)::bigint, sum(rejected)::bigint, NULL::float8, min(first_at), max(last_at), NULL::text
            FROM w
            UNION ALL
            SELECT 3, NULL, sum(rows)::bigint, sum(rejected)::bigint, NULL, NULL, NULL, NULL FROM drift_rollup
            WHERE model_name = \(artifact.name) AND model_version = \(artifact.version) AND last_at >= \(since)
              AND last_at <= \(until) AND rows > 0 AND layout IS DISTINCT FROM \(layout.fingerprint)
            UNION ALL
            SELECT 1, u.c, sum(u.n)::bigint, NULL, sum(u.s), NULL, NULL, NULL
            FROM w, unnest(cells, counts, sums) AS u(c, n, s) GROUP BY u.c
            UNION ALL
            SELECT 2, NULL, sum(u.n::bigint)::bigint, NULL, NULL, NULL, NULL, u.k
            FROM w, jsonb_each_text(unseen) AS u(k, n) GROUP BY u.k
            """, logger: logger)
        var tally = DriftTally()
        typealias Row = (Int, Int32?, Int?, Int?, Double?, Date?, Date?, String?)
        for try await (kind, cell, n, rejected, sum, start, end, key) in rows.decode(Row.self) {
            switch kind {
            case 0:
                window.rows = n ?? 0
                window.rejected += rejected ?? 0
                (window.start, window.end) = (start, end)
            case 1:
                if let cell { tally.cells[cell] = .init(count: n ?? 0, sum: sum ?? 0) }
            case 2:
                if let key { tally.unseen[key] = n ?? 0 }
            default:
                // Refusals belong to the version, whatever profile the rows beside them were counted against.
                window.otherProfileRows = n ?? 0
                window.rejected += rejected ?? 0
            }
        }
        tally.rows = window.rows
        (window.columns, window.prediction) = layout.columns(from: tally)
        return window
    }

    /// The rows performance estimation reads: the version's reference (its first `referenceRows` labelled
    /// predictions) and its newest `bounds.rows` predictions after it (`EstimationRows`).
    public func estimationRows(of artifact: ModelArtifact, referenceRows: Int, bounds: WindowBounds, sample: Int = .max,
                               now: Date = Date()) async throws -> EstimationRows
    {
        try await EstimationRows.read(of: artifact, referenceRows: referenceRows, bounds: bounds, sample: sample,
                                      client: client, logger: logger, now: now)
    }

    /// Per-row losses of a version, for the loss-shift trigger: its reference window (its first `rows`
    /// labelled predictions, whenever they were; after a challenger to it was turned down, its first `rows`
    /// made since) and its current one (its newest `rows` labelled predictions after the reference, no older
    /// than `bounds.maxAge`). A turned-down challenger (discarded, rolled back, or a candidate rejected) says
    /// that a new model does no better on today's rows than this version does: today's loss is its new
    /// normal, and measured against the old reference it would ask for the same retrain again and again. The loss is the absolute error for a
    /// regression and the log loss (probabilities clipped as for the metrics) for a classifier; rows whose
    /// label does not fit are left out.
    ///
    /// `newest` is the newest `rows` of both together no older than `bounds.maxAge` (the window the holdout
    /// test reads, from the version's first labels on). `turnDowns` counts the challengers to it turned down
    /// and `labelsSinceTurnDown` the labelled rows since the last, up to the wait `holdoutTestArmed` asks
    /// (both known when either window has a row):
    /// a model trained since did no better than this version, so the loss its holdout promised is out of
    /// reach until more data has come (`holdoutTestArmed`).
    public func losses(of artifact: ModelArtifact, rows: Int, bounds: WindowBounds, now: Date = Date()) async throws
        -> (reference: [Double], current: [Double], newest: [Double], turnDowns: Int, labelsSinceTurnDown: Int)
    {
        let loss = Self.loss(artifact.task)
        var bindings = PostgresBindings()
        bindings.append(artifact.name)
        bindings.append(artifact.version)
        bindings.append(rows)
        bindings.append(bounds.since(now))
        let sql = """
            WITH \(Self.turnedDown),
            reference AS (
                SELECT created_at, id, \(loss) AS loss FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND \(loss) IS NOT NULL
                  AND created_at > (SELECT at FROM turned_down)
                ORDER BY created_at, id LIMIT $3),
            current AS (
                SELECT created_at, id, \(loss) AS loss FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND \(loss) IS NOT NULL
                  AND created_at >= $4
                  AND (created_at, id) > (SELECT created_at, id FROM reference ORDER BY created_at DESC, id DESC LIMIT 1)
                ORDER BY created_at DESC, id DESC LIMIT $3),
            since_turn_down AS (  -- counted only so far as the wait needs (none before a turn-down)
                SELECT count(*)::int AS labels FROM (
                    SELECT 1 FROM prediction
                    WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND \(loss) IS NOT NULL
                      AND created_at > (SELECT at FROM turned_down)
                    LIMIT (SELECT CASE WHEN times = 0 THEN 0
                                       ELSE least($3::float8 * 2 ^ least(times - 1, 40), 4e18)::bigint END
                           FROM turned_down)) fresh)
            SELECT is_reference, loss, created_at >= $4, (SELECT times FROM turned_down),
                   (SELECT labels FROM since_turn_down) FROM (
                SELECT true AS is_reference, created_at, id, loss FROM reference
                UNION ALL
                SELECT false, created_at, id, loss FROM current) windows
            ORDER BY created_at, id
            """
        var reference: [Double] = [], current: [Double] = [], recent: [Double] = [], turnDowns = 0, since = 0
        let result = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await (isReference, loss, isRecent, times, labels) in result.decode((Bool, Double, Bool, Int, Int).self) {
            if isReference { reference.append(loss) } else { current.append(loss) }
            if isRecent { recent.append(loss) }
            (turnDowns, since) = (times, labels)
        }
        return (reference, current, Array(recent.suffix(rows)), turnDowns, since)
    }

    /// Whether a version is held to its holdout's loss: always until a challenger to it is turned down; after
    /// the `turnDowns`-th, once `window × 2^(turnDowns − 1)` labels have come since (one window, then two, four…).
    /// A turn-down says today's loss is out of a new model's reach on today's data; more data may bring it back
    /// within reach (the world moved on, or a model learns more from more rows), and the doubling wait keeps a
    /// version whose holdout promised too much from asking again and again: its retrains grow only as the
    /// logarithm of its labels.
    public static func holdoutTestArmed(turnDowns: Int, labelsSinceTurnDown: Int, window: Int) -> Bool {
        // In doubles and capped, as the SQL counts: a huge window times 2^40 must not wrap around.
        turnDowns == 0 || Double(labelsSinceTurnDown) >= min(Double(window) * pow(2, Double(min(turnDowns - 1, 40))), 4e18)
    }

    /// The CTE `turned_down(at, times)`: when a challenger to version `$2` of model `$1` was last turned down
    /// (discarded, rolled back, or a candidate rejected), `-infinity` if never, and how many times; its
    /// reference starts after it.
    static let turnedDown = """
        turned_down AS (
            SELECT coalesce(max(created_at), '-infinity'::timestamptz) AS at, count(*)::int AS times FROM event
            WHERE model_name = $1
              AND ((kind IN ('discarded', 'rolled_back') AND detail->>'live_version' = $2)
                   OR (kind = 'retrain_finished' AND detail->>'status' = 'rejected' AND detail->>'parent' = $2)))
        """

    /// The per-row loss of a stored prediction (`prediction`, `value_number`) or of its shadow's, as SQL: the
    /// absolute error for a regression, the log loss (probabilities clipped as for the metrics) for a
    /// classifier; NULL where the label does not fit.
    static func loss(_ task: ModelArtifact.Task, shadow: Bool = false) -> String {
        let (prediction, value) = shadow
            ? ("shadow_prediction", "CASE WHEN jsonb_typeof(shadow_prediction->'value') = 'number' THEN (shadow_prediction->'value')::float8 END")
            : ("prediction", "value_number")
        return switch task {
        case .regression: "abs(\(value) - label_number)"
        case .binary, .multiclass: """
            -ln(least(greatest(CASE WHEN jsonb_typeof(\(prediction)->'probabilities'->(label #>> '{}')) = 'number'
                                    THEN (\(prediction)->'probabilities'->>(label #>> '{}'))::float8 END,
                               \(logLossEpsilon)), 1 - \(logLossEpsilon)))
            """
        }
    }

    /// A shadow's labelled rows beside the live version.
    public struct ShadowPairs: Sendable, Equatable {
        /// The paired losses, in the order the labels arrived.
        public var live: [Double] = [], shadow: [Double] = []
        /// Rows among them the shadow could not score (the instance was refused by it; live answered).
        public var refused = 0
        /// Labelled rows of the live version since the shadow started that it did not score at all (counted
        /// up to the sample size): a shadow predict does not run.
        public var unscored = 0
    }

    /// The paired per-row losses of the live version `live` and its shadow `shadow` on the same labelled
    /// predictions: the first `rows` of them in the order their labels arrived (`labeled_at`, then `id`), so
    /// a late label joins the end of the sample, never an earlier look's part of it. Rows whose label does
    /// not fit either prediction are left out; rows the shadow refused are counted. Rows made from a day
    /// before `since` (when the registry recorded the shadow) are read: the platform serves a shadow before
    /// the registry records it, and predict's clock is not the database's; older days are not scanned.
    public func pairedLosses(of live: ModelArtifact, shadow: String, rows: Int, since: Date) async throws -> ShadowPairs {
        let (liveLoss, shadowLoss) = (Self.loss(live.task), Self.loss(live.task, shadow: true))
        var bindings = PostgresBindings()
        bindings.append(live.name)
        bindings.append(live.version)
        bindings.append(shadow)
        bindings.append(rows)
        bindings.append(since)
        let sql = """
            SELECT 'pair', live, shadow FROM (
                SELECT labeled_at, id, \(liveLoss) AS live, \(shadowLoss) AS shadow,
                       shadow_prediction ? 'error' AS refused FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND shadow_version = $3 AND label IS NOT NULL
                  AND created_at >= $5::timestamptz - interval '1 day') paired
            WHERE refused OR (live IS NOT NULL AND shadow IS NOT NULL)
            ORDER BY labeled_at, id LIMIT $4
            """
        var pairs = ShadowPairs()
        let result = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await (_, l, s) in result.decode((String, Double?, Double?).self) {
            guard let l, let s else {
                pairs.refused += 1
                continue
            }
            pairs.live.append(l)
            pairs.shadow.append(s)
        }
        if pairs.live.isEmpty, pairs.refused == 0 {
            let unscored = """
                SELECT count(*)::int8 FROM (
                    SELECT 1 FROM prediction
                    WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND shadow_version IS NULL
                      AND created_at >= $5 AND $3::text IS NOT NULL
                    LIMIT $4) unscored
                """
            pairs.unscored = try await one(PostgresQuery(unsafeSQL: unscored, binds: bindings), as: Int.self)
        }
        return pairs
    }

    private func one<each T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as: (repeat each T).Type) async throws
        -> (repeat each T)
    {
        let rows = try await client.query(query, logger: logger)
        for try await row in rows.decode((repeat each T).self) { return row }
        throw PostgresError.protocol("the aggregate returned no row")
    }
}

/// Clip of probabilities before their log, as `CycloneMonitoring`'s metrics (scikit-learn's `log_loss`).
private let logLossEpsilon = "2.220446049250313e-16::float8"
