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

    /// The metrics of the newest labelled predictions of `artifact`'s version.
    public func performance(of artifact: ModelArtifact, bounds: WindowBounds, now: Date = Date()) async throws
        -> PerformanceWindow
    {
        var bindings = PostgresBindings()
        bindings.append(artifact.name)
        bindings.append(artifact.version)
        bindings.append(bounds.since(now))
        bindings.append(bounds.rows)
        var window = PerformanceWindow()
        let labelled = """
            WITH w AS (
                SELECT label, prediction, created_at FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL AND created_at >= $3
                ORDER BY created_at DESC LIMIT $4)
            """
        let (count, start, end) = try await one(
            PostgresQuery(unsafeSQL: labelled + " SELECT count(*), min(created_at), max(created_at) FROM w",
                          binds: bindings),
            as: (Int, Date?, Date?).self)
        window.labelled = count
        window.start = start
        window.end = end
        guard count > 0 else { return window }

        switch artifact.task {
        case .regression:
            let sql = labelled + """
                , v AS (SELECT (label)::float8 AS y, (prediction->'value')::float8 AS p FROM w
                        WHERE jsonb_typeof(label) = 'number' AND jsonb_typeof(prediction->'value') = 'number')
                SELECT count(*)::bigint, coalesce(sum(p - y), 0), coalesce(sum(abs(p - y)), 0),
                       coalesce(sum((p - y) * (p - y)), 0), coalesce(sum(y), 0), coalesce(sum(y * y), 0),
                       coalesce(sum(abs(p - y) / abs(y)) FILTER (WHERE y <> 0), 0),
                       count(*) FILTER (WHERE y = 0)
                FROM v
                """
            let r = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings),
                                  as: (Int, Double, Double, Double, Double, Double, Double, Int).self)
            var sums = RegressionMetrics.Sums()
            (sums.count, sums.error, sums.absoluteError, sums.squaredError) = (r.0, r.1, r.2, r.3)
            (sums.label, sums.squaredLabel, sums.relativeError, sums.zeroLabels) = (r.4, r.5, r.6, r.7)
            window.invalidLabels = count - sums.count
            window.metrics = RegressionMetrics(sums: sums).values

        case .binary:
            let classes = artifact.classes ?? []
            guard classes.count == 2 else { return window }
            bindings.append(classes[0])
            bindings.append(classes[1])
            // ROC AUC as the Mann–Whitney U: for each score, its positives times the negatives scored lower
            // (ties counting half).
            let sql = labelled + """
                , v AS (SELECT (label #>> '{}') = $6 AS positive,
                               (prediction->'probabilities'->>$6)::float8 AS s FROM w
                        WHERE (label #>> '{}') IN ($5, $6)
                          AND jsonb_typeof(prediction->'probabilities'->$6) = 'number'),
                c AS (SELECT positive, s, least(greatest(s, \(logLossEpsilon)), 1 - \(logLossEpsilon)) AS p FROM v),
                g AS (SELECT s, count(*) FILTER (WHERE positive) AS np, count(*) FILTER (WHERE NOT positive) AS nn
                      FROM v GROUP BY s),
                u AS (SELECT sum(np * (below + nn / 2.0))::float8 AS u FROM (
                          SELECT np, nn, coalesce(sum(nn) OVER (ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING
                                                                AND 1 PRECEDING), 0) AS below FROM g) ranked)
                SELECT count(*) FILTER (WHERE positive AND s > 0.5), count(*) FILTER (WHERE NOT positive AND s > 0.5),
                       count(*) FILTER (WHERE NOT positive AND s <= 0.5), count(*) FILTER (WHERE positive AND s <= 0.5),
                       coalesce(sum(CASE WHEN positive THEN -ln(p) ELSE -ln(1 - p) END), 0),
                       coalesce(sum((s - CASE WHEN positive THEN 1 ELSE 0 END) ^ 2), 0),
                       (SELECT u FROM u)
                FROM c
                """
            let r = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings),
                                  as: (Int, Int, Int, Int, Double, Double, Double?).self)
            var sums = BinaryMetrics.Sums()
            (sums.truePositives, sums.falsePositives, sums.trueNegatives, sums.falseNegatives) = (r.0, r.1, r.2, r.3)
            (sums.logLoss, sums.brier) = (r.4, r.5)
            let positives = Double(sums.truePositives + sums.falseNegatives)
            let negatives = Double(sums.trueNegatives + sums.falsePositives)
            let auc = positives > 0 && negatives > 0 ? r.6.map { $0 / (positives * negatives) } : nil
            window.invalidLabels = count - sums.count
            window.metrics = BinaryMetrics(sums: sums, rocAUC: auc).values

        case .multiclass:
            let classes = artifact.classes ?? []
            bindings.append(classes)
            let sql = labelled + """
                , v AS (SELECT label #>> '{}' AS y, prediction->>'class' AS c,
                               (prediction->'probabilities'->>(label #>> '{}'))::float8 AS p FROM w
                        WHERE (label #>> '{}') = ANY($5)
                          AND jsonb_typeof(prediction->'probabilities'->(label #>> '{}')) = 'number')
                SELECT y, c, count(*),
                       sum(-ln(least(greatest(p, \(logLossEpsilon)), 1 - \(logLossEpsilon))))
                FROM v GROUP BY y, c
                """
            var sums = MulticlassMetrics.Sums(classCount: classes.count)
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            for try await (label, predicted, n, logLoss) in rows.decode((String, String?, Int, Double).self) {
                guard let y = index[label], let c = predicted.flatMap({ index[$0] }) else { continue }
                sums.confusion[y][c] += n
                sums.count += n
                sums.logLoss += logLoss
            }
            window.invalidLabels = count - sums.count
            window.metrics = MulticlassMetrics(sums: sums).values
        }
        return window
    }

    /// The newest predictions of `artifact`'s version, counted per feature (and for the prediction) on the
    /// bins of its reference profile: one scan of the window, grouped by column and bin or category.
    public func drift(of artifact: ModelArtifact, bounds: WindowBounds, now: Date = Date()) async throws
        -> DriftWindow
    {
        var window = DriftWindow()
        guard let profile = artifact.profile else { return window }
        var bindings = PostgresBindings()
        bindings.append(artifact.name)
        bindings.append(artifact.version)
        bindings.append(bounds.since(now))
        bindings.append(bounds.rows)
        let recent = """
            WITH w AS (
                SELECT input, prediction, created_at FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND created_at >= $3
                ORDER BY created_at DESC LIMIT $4)
            """
        let (count, start, end) = try await one(
            PostgresQuery(unsafeSQL: recent + " SELECT count(*), min(created_at), max(created_at) FROM w", binds: bindings),
            as: (Int, Date?, Date?).self)
        window.rows = count
        window.start = start
        window.end = end

        // One VALUES row per column: (column, state 0 value / 1 missing / 2 invalid, bin, category, value).
        struct Column {
            var name: String
            var kind: Feature.Kind
            var binning: NumericBinning?
        }
        var columns: [Column] = []
        var values: [String] = []
        // Each column's JSON is extracted once per row (a subquery the planner keeps), then tested and cast.
        var extractions: [String] = []
        func parameter(_ value: some PostgresDynamicTypeEncodable) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        func add(_ name: String, _ reference: FeatureProfile, extract: String) {
            let i = columns.count
            extractions.append("\(extract) AS j\(i)")
            let json = "e.j\(i)"
            let binning = reference.kind == .numeric ? NumericBinning(reference) : nil
            columns.append(Column(name: name, kind: reference.kind, binning: binning))
            let missing = "\(json) IS NULL OR jsonb_typeof(\(json)) = 'null'"
            switch reference.kind {
            case .numeric:
                let isNumber = "jsonb_typeof(\(json)) = 'number'"
                let bin = binning.map { "width_bucket((\(json))::float8, \(parameter($0.thresholds))::float8[])" } ?? "0"
                values.append("""
                    (\(i), CASE WHEN \(missing) THEN 1 WHEN \(isNumber) THEN 0 ELSE 2 END,
                     CASE WHEN \(isNumber) THEN \(bin) END, NULL::text,
                     CASE WHEN \(isNumber) THEN (\(json))::float8 END)
                    """)
            case .boolean:
                let text = """
                    CASE jsonb_typeof(\(json)) WHEN 'boolean' THEN \(json) #>> '{}'
                    WHEN 'number' THEN CASE (\(json))::float8 WHEN 1 THEN 'true' WHEN 0 THEN 'false' END END
                    """
                values.append("(\(i), CASE WHEN \(missing) THEN 1 WHEN (\(text)) IS NULL THEN 2 ELSE 0 END, NULL::int, \(text), NULL::float8)")
            case .categorical:
                let text = "CASE WHEN jsonb_typeof(\(json)) IN ('string', 'number') THEN \(json) #>> '{}' END"
                values.append("(\(i), CASE WHEN \(missing) THEN 1 WHEN (\(text)) IS NULL THEN 2 ELSE 0 END, NULL::int, \(text), NULL::float8)")
            }
        }
        for feature in artifact.features {
            guard let reference = profile.features[feature.name] else { continue }
            add(feature.name, reference, extract: "input -> \(parameter(feature.name))")
        }
        let predictionIndex = columns.count
        if let reference = profile.prediction {
            switch artifact.task {
            case .regression: add("prediction", reference, extract: "prediction -> 'value'")
            case .binary:
                let positive = artifact.classes?.last ?? ""
                add("prediction", reference, extract: "prediction -> 'probabilities' -> \(parameter(positive))")
            case .multiclass: add("prediction", reference, extract: "prediction -> 'class'")
            }
        }
        guard !columns.isEmpty else { return window }

        let sql = recent + """
             SELECT c.i, c.s, c.b, c.t, count(*), coalesce(sum(c.v), 0)
            FROM (SELECT \(extractions.joined(separator: ", ")) FROM w OFFSET 0) e
            CROSS JOIN LATERAL (VALUES \(values.joined(separator: ",\n"))) AS c(i, s, b, t, v)
            GROUP BY 1, 2, 3, 4
            """
        var counted = columns.map { WindowColumn(binning: $0.binning) }
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await (i, state, bin, category, n, sum) in rows.decode((Int, Int, Int?, String?, Int, Double).self) {
            switch state {
            case 1: counted[i].missing += n
            case 2: counted[i].invalid += n
            default:
                if let bin, bin < counted[i].binCounts.count {
                    counted[i].binCounts[bin] += n
                    counted[i].binSums[bin] += sum
                } else if let category {
                    counted[i].categories[category, default: 0] += n
                }
                counted[i].count += n
            }
        }
        for (i, column) in columns.enumerated() {
            if i == predictionIndex { window.prediction = counted[i] } else { window.columns[column.name] = counted[i] }
        }
        return window
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
