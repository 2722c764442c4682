import Foundation
import Logging
import PostgresNIO

/// Labelled rows a model may learn from that it never served, such as the data its first version was trained
/// on. A retrain reads them beside the labelled predictions (`LabelledRows`), so its widest window reaches
/// back before the first deployment; evaluation never reads them.
public struct History: Sendable {
    /// One labelled row: the instance and label as JSON text (as predict and label-ingest take them), and
    /// what identifies the instance: by default all of it; a file's rows, the model's features alone, whose
    /// types the schema fixes (the file's other columns are typed by inference, which a row added to the file
    /// can change).
    public struct Row: Sendable {
        public var input: String
        public var label: String
        public var time: Date
        public var key: String

        public init(input: String, label: String, time: Date, key: String? = nil) {
            self.input = input
            self.label = label
            self.time = time
            self.key = key ?? input
        }
    }

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Stores `rows` as `model`'s history, noting `source` (where they came from: a file's SHA-256, say). A row
    /// already stored (the same time, key and label) is not stored again. One transaction: all or nothing.
    /// Returns how many rows were new.
    @discardableResult
    public func add(model: String, source: String, rows: [Row]) async throws -> Int {
        try await client.withTransaction(logger: logger) { connection in
            var added = 0
            for start in stride(from: 0, to: rows.count, by: Self.batch) {
                let slice = rows[start..<min(rows.count, start + Self.batch)]
                let result = try await connection.query("""
                    INSERT INTO history (model_name, digest, input, label, created_at, source)
                    SELECT \(model),
                           sha256(convert_to((extract(epoch FROM t) * 1000000)::bigint::text || ' ' || k::jsonb::text || ' '
                                             || y::jsonb::text, 'UTF8')),
                           i::jsonb, y::jsonb, t, \(source)
                    FROM UNNEST(\(slice.map(\.input))::text[], \(slice.map(\.label))::text[], \(slice.map(\.time))::timestamptz[],
                                \(slice.map(\.key))::text[]) AS r(i, y, t, k)
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                    """, logger: logger)
                for try await _ in result.decode(Int32.self) { added += 1 }
            }
            return added
        }
    }

    /// Rows a statement carries.
    static let batch = 5_000
}
