import CycloneModel
import Foundation
import Logging
import PostgresNIO

/// What performance estimation reads for one model version: its reference (its first labelled predictions,
/// as the loss trigger's reference: after a challenger to it was turned down, its first made since) and the
/// window to estimate (its newest predictions after the reference, labelled or not, no older than the
/// bounds' age). Each row comes typed: its features, its label (missing where none), what was served.
///
/// A side of more than `sample` rows is read as an evenly spaced sample of at most `sample` of them (every k-th
/// in time order, and its newest): what is computed from the rows (estimates, target and multivariate drift)
/// then costs the same for a window of a million predictions as for one of ten thousand, and `referenceCount`
/// and `windowCount` say how many rows the sides hold.
public struct EstimationRows: Sendable {
    public var reference: LabelledPredictions
    public var window: LabelledPredictions
    /// The rows each side holds (more than were read when it was sampled).
    public var referenceCount = 0
    public var windowCount = 0
    /// The oldest and newest prediction of the window.
    public var windowStart: Date?
    public var windowEnd: Date?
    /// The newest prediction of the reference: with its row count, it names the reference.
    public var referenceEnd: Date?

    /// Reads the first `referenceRows` labelled predictions of the version and its newest `bounds.rows`
    /// predictions after them, each side sampled down to at most `sample` rows. The reference takes only rows
    /// whose label fits the task (as the loss trigger's does); in the window a label that does not fit counts
    /// as missing.
    public static func read(of artifact: ModelArtifact, referenceRows: Int, bounds: WindowBounds, sample: Int = .max,
                            client: PostgresClient, logger: Logger, now: Date = Date()) async throws -> EstimationRows
    {
        var bindings = PostgresBindings()
        bindings.append(artifact.name)
        bindings.append(artifact.version)
        bindings.append(referenceRows)
        bindings.append(bounds.since(now))
        bindings.append(bounds.rows)
        bindings.append(max(1, sample))
        // The sides are chosen by (created_at, id) alone, then every k-th row of each (its first and, in time
        // order, evenly after) is read whole: the inputs of the rows left out are never read.
        let sql = """
            WITH \(EvaluationWindows.turnedDown),
            reference AS (
                SELECT created_at, id FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND label IS NOT NULL
                  AND \(EvaluationWindows.loss(artifact.task)) IS NOT NULL
                  AND created_at > (SELECT at FROM turned_down)
                ORDER BY created_at, id LIMIT $3),
            current AS (
                SELECT created_at, id FROM prediction
                WHERE model_name = $1 AND model_version = $2 AND created_at >= $4
                  AND (created_at, id) > (SELECT created_at, id FROM reference ORDER BY created_at DESC, id DESC LIMIT 1)
                ORDER BY created_at DESC, id DESC LIMIT $5),
            numbered AS (
                SELECT true AS is_reference, created_at, id, row_number() OVER (ORDER BY created_at, id) - 1 AS n,
                       count(*) OVER () AS total FROM reference
                UNION ALL
                SELECT false, created_at, id, row_number() OVER (ORDER BY created_at, id) - 1, count(*) OVER ()
                FROM current),
            picked AS (
                SELECT is_reference, created_at, id, total FROM numbered
                WHERE n % ceil(total::float8 / $6)::bigint = 0 OR n = total - 1)
            SELECT picked.is_reference, p.input::text, p.label::text, p.prediction::text, picked.created_at, picked.total
            FROM picked JOIN prediction p ON p.id = picked.id AND p.created_at = picked.created_at
            ORDER BY picked.created_at, picked.id
            """
        var sides = [Side(artifact), Side(artifact)]
        var start: Date?, end: Date?, referenceEnd: Date?, counts = [0, 0]
        let result = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await (isReference, input, label, prediction, time, total) in result.decode((Bool, String, String?, String, Date, Int).self) {
            sides[isReference ? 0 : 1].append(input: input, label: label, prediction: prediction)
            counts[isReference ? 0 : 1] = total
            if isReference {
                referenceEnd = time
            } else {
                start = start ?? time
                end = time
            }
        }
        var rows = EstimationRows(reference: sides[0].rows, window: sides[1].rows, windowStart: start, windowEnd: end,
                                  referenceEnd: referenceEnd)
        (rows.referenceCount, rows.windowCount) = (counts[0], counts[1])
        return rows
    }

    /// One side's typed columns as they are read.
    private struct Side {
        let features: [Feature]
        let codec: PredictionJSON
        let regression: Bool
        var builders: [ColumnBuilder]
        var labels: ColumnBuilder
        var served: [Output?] = []

        init(_ artifact: ModelArtifact) {
            features = artifact.features
            codec = PredictionJSON(classes: artifact.classes)
            regression = artifact.task == .regression
            builders = artifact.features.map { ColumnBuilder(kind: $0.kind) }
            labels = ColumnBuilder(kind: regression ? .numeric : .categorical)
        }

        mutating func append(input: String, label: String?, prediction: String) {
            var labelValue = label.flatMap { try? JSONParser.parse($0.utf8) }
            // A class label sent as JSON true/false is the class "true"/"false", as the SQL windows read it.
            if !regression, case .bool(let flag)? = labelValue { labelValue = .string(flag ? "true" : "false") }
            labels.append(labelValue, lenient: true)
            let values: [String: JSONValue]
            if case .object(let object)? = try? JSONParser.parse(input.utf8) { values = object } else { values = [:] }
            for (i, feature) in features.enumerated() { builders[i].append(values[feature.name], lenient: true) }
            served.append(codec.output(prediction))
        }

        var rows: LabelledPredictions {
            LabelledPredictions(
                features: FeatureTable(columns: zip(features, builders).map { .init(name: $0.name, values: $1.values) }),
                target: .init(name: "label", values: labels.values), served: served,
                versions: [String](repeating: "", count: served.count))
        }
    }
}
