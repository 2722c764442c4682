import Configuration
import CycloneRuntime
import PostgresNIO

/// How a function reaches PostgreSQL.
public struct DatabaseSettings: Sendable {
    /// `DATABASE_URL` (required, secret), as read.
    public var url: DatabaseURL
    /// The pool's: `url` with `DATABASE_POOL_SIZE` (most connections; 4) applied.
    public var configuration: PostgresClient.Configuration
    public var poolSize: Int

    public init(reader: ConfigReader) throws {
        url = try DatabaseURL(reader.required("database.url", variable: "DATABASE_URL", isSecret: true,
                                              hint: "postgres://user:password@host:5432/database"))
        configuration = url.client
        poolSize = try reader.setting("database.pool.size", variable: "DATABASE_POOL_SIZE", default: 4,
                                      expected: "a positive integer", Int.positive)
        configuration.options.maximumConnections = poolSize
        // One connection stays open; the others close after a minute idle. The minimum must stay below any
        // count the pool can fall to: PostgresNIO 1.33.2 destroys all but one connection attempt while the
        // server is unreachable and, when it comes back, does not refill to the minimum before serving, so a
        // second concurrent query then traps on `minimumConcurrentConnections <= stats.active` in
        // `createNewDemandConnectionIfPossible` (the minimum equal to the size crashed label-ingest that way).
        // The retried attempt always counts as active, so a minimum of one holds.
        configuration.options.minimumConnections = 1
        // No keep-alive pings: a connection that died idle fails its next query, which callers retry.
        configuration.options.keepAliveBehavior = nil
    }
}
