import CycloneModel
import CycloneMonitoring
import Foundation
import Logging
import PostgresNIO

/// The `drift_rollup` table (see `0004_drift_rollup.sql`): what the writer commits beside each batch of
/// predictions, and its upkeep.
public struct DriftRollups: Sendable {
    /// A model version, as rollups are kept per version.
    public struct Version: Hashable, Sendable {
        public var name: String
        public var version: String

        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }

    /// One rollup row, as parameters of the writer's INSERT.
    struct Row {
        var version: Version
        /// The `DriftLayout.fingerprint` of its cells; `nil` when it has none.
        var layout: Int64?
        var first: Date
        var last: Date
        var tally = DriftTally()
        var rejected = 0
    }

    /// Rollups merge into blocks of at most this many rows (and one minute of predictions).
    public static let blockRows = 1_000

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The rollups of a batch: one per model version, with the rejected requests counted since the last one.
    static func rows(for batch: [PredictionRow], rejected: [Version: Int]) -> [Row] {
        struct Key: Hashable {
            var version: Version
            var layout: Int64?
        }
        var rows: [Key: Row] = [:]
        for prediction in batch {
            let version = Version(name: prediction.modelName, version: prediction.modelVersion)
            let key = Key(version: version, layout: prediction.drift?.layout)
            var row = rows[key] ?? Row(version: version, layout: key.layout, first: prediction.createdAt,
                                       last: prediction.createdAt)
            row.first = min(row.first, prediction.createdAt)
            row.last = max(row.last, prediction.createdAt)
            if let cells = prediction.drift { row.tally.add(cells) } else { row.tally.rows += 1 }
            rows[key] = row
        }
        // Refusals ride on the version's row of the batch when it has one (stored only with its predictions,
        // so a retried batch counts them once); otherwise in a row of their own.
        let now = Date()
        for (version, count) in rejected where count > 0 {
            let key = rows.keys.first { $0.version == version } ?? Key(version: version, layout: nil)
            rows[key, default: Row(version: version, layout: nil, first: now, last: now)].rejected += count
        }
        return rows.values.sorted {
            ($0.version.name, $0.version.version, $0.layout ?? 0) < ($1.version.name, $1.version.version, $1.layout ?? 0)
        }
    }

    /// Merges the rollups of batches committed before `settled` into blocks within one minute of predictions,
    /// a block closing once it holds `blockRows` rows (so it holds at most that plus one batch), so a long
    /// window adds up few rows. One merge runs at a time (a transaction-scoped advisory lock; a second caller
    /// merges nothing); each block is built from the rows its own statement deleted. Returns the blocks written.
    @discardableResult
    public func compact(settledBefore settled: Date, blockRows: Int = DriftRollups.blockRows) async throws -> Int {
        let rows = try await client.query("""
            WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtext('cyclone_compact_drift_rollups')) AS held),
            loose AS (
                SELECT id, coalesce(layout, 0) AS lk, date_trunc('minute', first_at) AS minute,
                       greatest(sum(rows) OVER (PARTITION BY model_name, model_version, layout, date_trunc('minute', first_at)
                                                ORDER BY first_at, id) - 1, 0) / \(blockRows) AS block
                FROM drift_rollup WHERE NOT compacted AND last_at < \(settled) AND (SELECT held FROM lock)),
            gone AS (
                DELETE FROM drift_rollup d USING loose l WHERE d.id = l.id
                RETURNING d.model_name, d.model_version, l.lk, l.minute, l.block, d.first_at, d.last_at, d.rows,
                          d.rejected, d.cells, d.counts, d.sums, d.unseen),
            blocks AS (
                SELECT model_name, model_version, lk, minute, block, min(first_at) AS first_at,
                       max(last_at) AS last_at, sum(rows)::int AS rows, sum(rejected)::int AS rejected
                FROM gone GROUP BY 1, 2, 3, 4, 5),
            cell AS (
                SELECT model_name, model_version, lk, minute, block, array_agg(c ORDER BY c) AS cells,
                       array_agg(n ORDER BY c) AS counts, array_agg(s ORDER BY c) AS sums
                FROM (SELECT model_name, model_version, lk, minute, block, u.c, sum(u.n)::int AS n, sum(u.s) AS s
                      FROM gone, unnest(cells, counts, sums) AS u(c, n, s) GROUP BY 1, 2, 3, 4, 5, 6) summed
                GROUP BY 1, 2, 3, 4, 5),
            name AS (
                SELECT model_name, model_version, lk, minute, block, jsonb_object_agg(k, n) AS unseen
                FROM (SELECT *, row_number() OVER (PARTITION BY model_name, model_version, lk, minute, block,
                                                   split_part(k, ':', 1) ORDER BY n DESC, k) AS rank
                      FROM (SELECT model_name, model_version, lk, minute, block, u.k, sum(u.n::int) AS n
                            FROM gone, jsonb_each_text(unseen) AS u(k, n) GROUP BY 1, 2, 3, 4, 5, 6) summed) ranked
                WHERE rank <= \(DriftTally.unseenNamesKept)
                GROUP BY 1, 2, 3, 4, 5),
            made AS (
                INSERT INTO drift_rollup (model_name, model_version, layout, first_at, last_at, rows, rejected, cells,
                                          counts, sums, unseen, compacted)
                SELECT b.model_name, b.model_version, NULLIF(b.lk, 0), b.first_at, b.last_at, b.rows, b.rejected,
                       coalesce(c.cells, '{}'), coalesce(c.counts, '{}'), coalesce(c.sums, '{}'), n.unseen, true
                FROM blocks b
                LEFT JOIN cell c USING (model_name, model_version, lk, minute, block)
                LEFT JOIN name n USING (model_name, model_version, lk, minute, block)
                RETURNING 1)
            SELECT count(*)::int FROM made
            """, logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}
