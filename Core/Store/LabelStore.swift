import CycloneModel
import Foundation
import Logging
import PostgresNIO

/// Attaches ground truth to stored predictions.
public struct LabelStore: Sendable {
    /// Which prediction a label is for: the id `predict` returned, or the caller's own key.
    public enum Target: Sendable, Hashable {
        case id(UUID)
        case key(String)
    }

    public struct Label: Sendable, Equatable {
        public var target: Target
        public var value: JSONValue
        public init(target: Target, value: JSONValue) {
            self.target = target
            self.value = value
        }
    }

    /// What a batch did.
    public struct Result: Sendable, Equatable {
        /// Predictions whose label was set (including those that already had this exact label).
        public var applied = 0
        /// Predictions that had a different label, now replaced.
        public var overwritten = 0
        /// Predictions that already had this exact label (a repeated delivery).
        public var unchanged = 0
        /// Targets that matched no stored prediction.
        public var notFound: [Target] = []
        public init() {}
    }

    /// A batch refused whole: the label at `position` of the request does not fit its prediction's model.
    public struct Misfit: Error, Equatable, CustomStringConvertible {
        public var position: Int
        public var model: String
        public var description: String {
            "the prediction is of regression model \(model): its label must be a number"
        }
    }

    public let client: PostgresClient
    public let logger: Logger
    /// Refuse a batch holding a label that cannot be its model's (a string or boolean for a regression).
    public var strict: Bool

    public init(client: PostgresClient, logger: Logger, strict: Bool = true) {
        self.client = client
        self.logger = logger
        self.strict = strict
    }

    /// Applies a batch of labels in one statement. A key labels every prediction stored with it. When the
    /// batch names a target twice, the last label wins. When `strict`, a label that cannot be its model's
    /// (not a number, for a regression) refuses the whole batch with `Misfit`, and nothing is applied. The task is
    /// the registry's, or, for a version the registry does not hold, read from the stored prediction.
    public func apply(_ labels: [Label]) async throws -> Result {
        var result = Result()
        guard !labels.isEmpty else { return result }
        // Last one wins, first position kept, so the result lists targets in request order.
        var position: [Target: Int] = [:]
        var unique: [Label] = []
        var requestPosition: [Int] = []  // where each unique label stands in the request
        for (index, label) in labels.enumerated() {
            if let slot = position[label.target] {
                unique[slot] = label
                requestPosition[slot] = index
            } else {
                position[label.target] = unique.count
                unique.append(label)
                requestPosition.append(index)
            }
        }
        let ordinals = Array(0..<unique.count)
        let ids = unique.map { if case .id(let id) = $0.target { id.uuidString } else { "" } }
        let keys = unique.map { if case .key(let key) = $0.target { key } else { "" } }
        let values = unique.map(\.value.jsonText)
        var matched = Set<Int>()
        let statement: PostgresQuery = """
            WITH input AS (
                SELECT o, NULLIF(i, '')::uuid AS id, NULLIF(k, '') AS key, l::jsonb AS label
                FROM UNNEST(\(ordinals)::int[], \(ids)::text[], \(keys)::text[], \(values)::text[]) AS t(o, i, k, l)
            ),
            target AS (
                SELECT i.o, p.id, p.created_at, p.model_name, p.model_version, p.prediction, p.label AS old_label,
                       i.label AS new_label
                FROM input i JOIN prediction p ON p.id = i.id
                UNION ALL
                SELECT i.o, p.id, p.created_at, p.model_name, p.model_version, p.prediction, p.label, i.label
                FROM input i JOIN prediction p ON p.key = i.key
            ),
            misfit AS (
                -- The registry's task; for a version it does not hold, the stored prediction's shape
                -- ({"value": …} is a regression's, as PredictionJSON reads it).
                SELECT t.o, t.model_name FROM target t
                LEFT JOIN model m ON m.name = t.model_name AND m.version = t.model_version
                WHERE \(strict) AND COALESCE(m.task = 'regression', t.prediction ? 'value')
                  AND jsonb_typeof(t.new_label) <> 'number'
                ORDER BY t.o LIMIT 1
            ),
            updated AS (
                UPDATE prediction p SET label = t.new_label, labeled_at = now()
                FROM target t
                WHERE p.id = t.id AND p.created_at = t.created_at AND p.label IS DISTINCT FROM t.new_label
                  AND NOT EXISTS (SELECT FROM misfit)
                RETURNING p.id
            )
            SELECT o,
                   count(*)::int,
                   (count(*) FILTER (WHERE old_label IS NOT NULL AND old_label IS DISTINCT FROM new_label))::int,
                   (count(*) FILTER (WHERE old_label IS NOT DISTINCT FROM new_label))::int,
                   (SELECT o FROM misfit), (SELECT model_name FROM misfit)
            FROM target GROUP BY o
            """
        // Answered once committed (see `committing`): an acknowledged label survives a crash.
        let logger = logger
        let rows = try await client.committing(logger: logger) { connection in
            var rows: [(Int, Int, Int, Int, Int?, String?)] = []
            for try await row in try await connection.query(statement, logger: logger)
                .decode((Int, Int, Int, Int, Int?, String?).self) { rows.append(row) }
            return rows
        }
        for (ordinal, count, overwritten, unchanged, misfit, model) in rows {
            if let misfit { throw Misfit(position: requestPosition[misfit], model: model ?? "") }
            matched.insert(ordinal)
            result.applied += count
            result.overwritten += overwritten
            result.unchanged += unchanged
        }
        result.notFound = unique.indices.filter { !matched.contains($0) }.map { unique[$0].target }
        return result
    }
}
