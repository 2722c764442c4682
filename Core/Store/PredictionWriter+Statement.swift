import CycloneModel
import CycloneMonitoring
import Foundation
import PostgresNIO

extension PredictionWriter {
    /// The statement that stores `batch` and its rollups at once: a rollup is written only when its
    /// predictions were (a retried batch whose first attempt committed stores nothing twice).
    static func statement(_ batch: [PredictionRow], rejected: [DriftRollups.Version: Int]) -> PostgresQuery {
        let rollups = DriftRollups.rows(for: batch, rejected: rejected)
        var cells: [String] = [], counts: [String] = [], sums: [String] = [], unseen: [String] = []
        for var rollup in rollups {
            rollup.tally.trimUnseenNames()
            let sorted = rollup.tally.cells.sorted { $0.key < $1.key }
            cells.append("{" + sorted.map { String($0.key) }.joined(separator: ",") + "}")
            counts.append("{" + sorted.map { String($0.value.count) }.joined(separator: ",") + "}")
            sums.append("{" + sorted.map { "\($0.value.sum)" }.joined(separator: ",") + "}")
            unseen.append(rollup.tally.unseen.isEmpty ? "" : JSONValue.object(rollup.tally.unseen.mapValues { .number(Double($0)) }).jsonText)
        }
        let ids = batch.map(\.id)
        let names = batch.map(\.modelName)
        let versions = batch.map(\.modelVersion)
        let inputs = batch.map(\.input)
        let predictions = batch.map(\.prediction)
        let keys = batch.map { $0.key ?? "" }
        let times = batch.map(\.createdAt)
        let latencies = batch.map { $0.latencyMs.map { String(Float($0)) } ?? "" }
        let shadowVersions = batch.map { $0.shadow?.version ?? "" }
        let shadowPredictions = batch.map { $0.shadow?.prediction ?? "" }
        return """
            WITH stored AS (
                INSERT INTO prediction (id, model_name, model_version, input, prediction, key, created_at, latency_ms,
                                        shadow_version, shadow_prediction)
                SELECT id, m, v, i::jsonb, p::jsonb, NULLIF(k, ''), t, NULLIF(ms, '')::real, NULLIF(sv, ''),
                       NULLIF(sp, '')::jsonb
                FROM UNNEST(\(ids)::uuid[], \(names)::text[], \(versions)::text[], \(inputs)::text[],
                            \(predictions)::text[], \(keys)::text[], \(times)::timestamptz[], \(latencies)::text[],
                            \(shadowVersions)::text[], \(shadowPredictions)::text[])
                     AS r(id, m, v, i, p, k, t, ms, sv, sp)
                ON CONFLICT DO NOTHING
                RETURNING model_name, model_version)
            INSERT INTO drift_rollup (model_name, model_version, layout, first_at, last_at, rows, rejected, cells, counts,
                                      sums, unseen)
            SELECT m, v, NULLIF(lay, '')::bigint, f, l, n, x, c::int4[], k::int4[], s::float8[], NULLIF(u, '')::jsonb
            FROM UNNEST(\(rollups.map(\.version.name))::text[], \(rollups.map(\.version.version))::text[],
                        \(rollups.map { $0.layout.map(String.init) ?? "" })::text[],
                        \(rollups.map(\.first))::timestamptz[], \(rollups.map(\.last))::timestamptz[],
                        \(rollups.map(\.tally.rows))::int4[], \(rollups.map(\.rejected))::int4[], \(cells)::text[],
                        \(counts)::text[], \(sums)::text[], \(unseen)::text[]) AS r(m, v, lay, f, l, n, x, c, k, s, u)
            WHERE (n = 0 AND x > 0)
               OR EXISTS (SELECT FROM stored WHERE stored.model_name = r.m AND stored.model_version = r.v)
            """
    }
}
