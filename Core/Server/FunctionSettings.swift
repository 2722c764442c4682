import Configuration
import CycloneStore
import PostgresNIO

/// What every HTTP function reads from its environment.
public struct ServerSettings: Sendable {
    /// `PORT`: set by Cloud Run; 8080 when unset.
    public var port: Int
    /// `MAX_BODY_BYTES`: largest request body; 10 MiB.
    public var maxBodyBytes: Int
    /// `MAX_BODY_BYTES_IN_FLIGHT`: the request bodies handled at once, in bytes; more wait for room (one
    /// alone always fits); 32 MiB.
    public var maxBodyBytesInFlight: Int
    /// `GOOGLE_CLOUD_PROJECT`: names the project in log lines' trace field; optional.
    public var project: String?

    public init(reader: ConfigReader) throws {
        port = try reader.setting("port", variable: "PORT", default: 8080, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        maxBodyBytes = try reader.setting("max.body.bytes", variable: "MAX_BODY_BYTES", default: 10 << 20,
                                          expected: "a positive integer", Int.positive)
        maxBodyBytesInFlight = try reader.setting("max.body.bytes.in.flight", variable: "MAX_BODY_BYTES_IN_FLIGHT",
                                                  default: 32 << 20, expected: "a positive integer", Int.positive)
        project = reader.string(forKey: "google.cloud.project")
    }
}

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
