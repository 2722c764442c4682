import Logging
import PostgresNIO

/// Maintenance of the daily partitions of `prediction` (see `0002_partitions.sql`).
public struct Partitions: Sendable {
    public struct Change: Sendable, Equatable {
        public var action: String
        public var partition: String
    }

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Creates partitions from yesterday to `aheadDays` ahead (moving waiting rows out of the default
    /// partition) and, when `retainDays` is set, drops the days older than that, with their drift rollups.
    @discardableResult
    public func maintain(aheadDays: Int = 7, retainDays: Int? = nil) async throws -> [Change] {
        var changes: [Change] = []
        let rows = try await client.query(
            "SELECT action, partition_name FROM cyclone_ensure_partitions(\(aheadDays)::int, \(retainDays)::int)", logger: logger)
        for try await (action, partition) in rows.decode((String, String).self) {
            changes.append(Change(action: action, partition: partition))
        }
        if let retainDays {
            // The drift rollups of the dropped days go with them.
            try await client.query("""
                DELETE FROM drift_rollup
                WHERE last_at < ((now() AT TIME ZONE 'UTC')::date - \(retainDays)::int)::timestamp AT TIME ZONE 'UTC'
                """, logger: logger)
        }
        return changes
    }
}
