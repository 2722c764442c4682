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

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies a batch of labels in one statement. A key labels every prediction stored with it. When the
    /// batch names a target twice, the last label wins.
    public func apply(_ labels: [Label]) async throws -> Result {
        var result = Result()
        guard !labels.isEmpty else { return result }
        // Last one wins, first position kept, so the result lists targets in request order.
        var position: [Target: Int] = [:]
        var unique: [Label] = []
        for label in labels {
            if let index = position[label.target] { unique[index] = label } else {
                position[label.target] = unique.count
                unique.append(label)
            }
        }
        let ordinals = Array(0..<unique.count)
        let ids = unique.map { if case .id(let id) = $0.target { id.uuidString } else { "" } }
        let keys = unique.map { if case .key(let key) = $0.target { key } else { "" } }
        let values = unique.map(\.value.jsonText)
        var matched = Set<Int>()
        let rows = try await client.query("""
            WITH input AS (
                SELECT o, NULLIF(i, '')::uuid AS id, NULLIF(k, '') AS key, l::jsonb AS label
                FROM UNNEST(\(ordinals)::int[], \(ids)::text[], \(keys)::text[], \(values)::text[]) AS t(o, i, k, l)
            ),
            target AS (
                SELECT i.o, p.id, p.created_at, p.label AS old_label, i.label AS new_label
                FROM input i JOIN prediction p ON p.id = i.id
                UNION ALL
                SELECT i.o, p.id, p.created_at, p.label, i.label
                FROM input i JOIN prediction p ON p.key = i.key
            ),
            updated AS (
                UPDATE prediction p SET label = t.new_label, labeled_at = now()
                FROM target t
                WHERE p.id = t.id AND p.created_at = t.created_at AND p.label IS DISTINCT FROM t.new_label
                RETURNING p.id
            )
            SELECT o,
                   count(*)::int,
                   (count(*) FILTER (WHERE old_label IS NOT NULL AND old_label IS DISTINCT FROM new_label))::int,
                   (count(*) FILTER (WHERE old_label IS NOT DISTINCT FROM new_label))::int
            FROM target GROUP BY o
            """, logger: logger)
        for try await (ordinal, count, overwritten, unchanged) in rows.decode((Int, Int, Int, Int).self) {
            matched.insert(ordinal)
            result.applied += count
            result.overwritten += overwritten
            result.unchanged += unchanged
        }
        result.notFound = unique.indices.filter { !matched.contains($0) }.map { unique[$0].target }
        return result
    }
}
