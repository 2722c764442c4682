import CycloneModel
import Foundation
import Logging
import PostgresNIO

/// The labelled rows of a model in a window, as read from the store (its labelled predictions and its
/// history): what the retrain job learns from and scores on, with the window's span.
public struct LabelledRows: Sendable {
    public var predictions: LabelledPredictions
    /// The oldest and newest row.
    public var start: Date?
    public var end: Date?
    /// When each row was predicted (a history row: its time), in the rows' order (as `predictions`): oldest
    /// first, but for a history row newer than a prediction.
    public var times: [Date] = []
    /// Labelled rows left out because the label does not fit the task (text for a regression, say).
    public var unusable = 0

    public var count: Int { predictions.count }
}

extension LabelledRows {
    /// Reads the newest `bounds.rows` labelled rows of `model.name` no older than `bounds.maxAge`: its labelled
    /// predictions (every version), then its history (`History`: rows it never served, with no stored
    /// prediction and no version). The history counts as older than every prediction, whatever its times, so
    /// the newest rows, a retrain's holdout, are predictions. PostgreSQL streams the
    /// rows and each is typed as it arrives, so memory holds the typed columns only, never the rows' JSON.
    public static func read(model: ModelArtifact, bounds: WindowBounds, client: PostgresClient, logger: Logger,
                            now: Date = Date()) async throws -> LabelledRows
    {
        let since = bounds.since(now)
        let rows = try await client.query("""
            SELECT input::text, label::text, prediction::text, model_version, created_at FROM (
                (SELECT input, label, prediction, model_version, created_at, id, NULL::bytea AS digest FROM prediction
                 WHERE model_name = \(model.name) AND label IS NOT NULL AND created_at >= \(since)
                 ORDER BY created_at DESC, id DESC LIMIT \(bounds.rows))
                UNION ALL
                (SELECT input, label, NULL, '', created_at, NULL, digest FROM history
                 WHERE model_name = \(model.name) AND created_at >= \(since)
                 ORDER BY created_at DESC, digest DESC LIMIT \(bounds.rows))
            ) AS labelled
            ORDER BY digest IS NULL DESC, created_at DESC, id DESC, digest DESC LIMIT \(bounds.rows)
            """, logger: logger)
        var builders = model.features.map { ColumnBuilder(kind: $0.kind) }
        var labels = ColumnBuilder(kind: model.task == .regression ? .numeric : .categorical)
        var served: [Output?] = [], versions: [String] = [], times: [Date] = []
        var start: Date?, end: Date?
        var unusable = 0
        let codec = PredictionJSON(classes: model.classes)
        for try await (input, label, prediction, version, time) in rows.decode((String, String, String?, String, Date).self) {
            var labelValue = try? JSONParser.parse(label.utf8)
            // A class label sent as JSON true/false is the class "true"/"false", as the SQL windows read it.
            if model.task != .regression, case .bool(let flag)? = labelValue { labelValue = .string(flag ? "true" : "false") }
            guard labels.append(labelValue) else {
                unusable += 1
                continue
            }
            let values: [String: JSONValue]
            if case .object(let object)? = try? JSONParser.parse(input.utf8) { values = object } else { values = [:] }
            for (i, feature) in model.features.enumerated() { _ = builders[i].append(values[feature.name], lenient: true) }
            served.append(prediction.flatMap(codec.output))
            versions.append(version)
            times.append(time)
            end = end ?? time
            start = time
        }
        // Newest first from PostgreSQL; oldest first for training, so the newest slice is the holdout.
        return LabelledRows(
            predictions: LabelledPredictions(
                features: FeatureTable(columns: zip(model.features, builders).map { .init(name: $0.name, values: $1.reversed) }),
                target: .init(name: model.target ?? "label", values: labels.reversed), served: served.reversed(),
                versions: versions.reversed()),
            start: start, end: end, times: times.reversed(), unusable: unusable)
    }
}

/// One typed column being read.
struct ColumnBuilder {
    let kind: Feature.Kind
    var numbers: [Double] = []
    var categories: [String?] = []

    init(kind: Feature.Kind) { self.kind = kind }

    /// Appends a value read by the serving rule. Strictly (a label), a missing or wrongly typed value is refused;
    /// leniently (a feature), it is kept as missing, as training data may have gaps.
    @discardableResult
    mutating func append(_ value: JSONValue?, lenient: Bool = false) -> Bool {
        switch (kind, kind.read(value)) {
        case (_, .number(let x)): numbers.append(x)
        case (_, .flag(let flag)): numbers.append(flag ? 1 : 0)
        case (.categorical, .category(let text)): categories.append(text)
        default:
            guard lenient else { return false }
            if kind == .categorical { categories.append(nil) } else { numbers.append(.nan) }
        }
        return true
    }

    var values: FeatureTable.Values {
        switch kind {
        case .numeric: .numeric(numbers)
        case .boolean: .boolean(numbers)
        case .categorical: .categorical(categories)
        }
    }

    var reversed: FeatureTable.Values {
        switch kind {
        case .numeric: .numeric(numbers.reversed())
        case .boolean: .boolean(numbers.reversed())
        case .categorical: .categorical(categories.reversed())
        }
    }
}
