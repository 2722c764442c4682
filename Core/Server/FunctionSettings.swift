import Configuration
import CycloneStore
import PostgresNIO

/// What every HTTP function reads from its environment.
public struct ServerSettings: Sendable {
    /// `PORT`: set by Cloud Run; 8080 when unset.
    public var port: Int
    /// `MAX_BODY_BYTES`: largest request body; 10 MiB.
    public var maxBodyBytes: Int
    /// `GOOGLE_CLOUD_PROJECT`: names the project in log lines' trace field; optional.
    public var project: String?

    public init(reader: ConfigReader) throws {
        port = try reader.setting("port", variable: "PORT", default: 8080, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        maxBodyBytes = try reader.setting("max.body.bytes", variable: "MAX_BODY_BYTES", default: 10 << 20,
                                          expected: "a positive integer", Int.positive)
        project = reader.string(forKey: "google.cloud.project")
    }
}

/// How a function reaches PostgreSQL.
public struct DatabaseSettings: Sendable {
    /// `DATABASE_URL` (required, secret) with `DATABASE_POOL_SIZE` (most connections; 4) applied.
    public var configuration: PostgresClient.Configuration
    public var poolSize: Int

    public init(reader: ConfigReader) throws {
        configuration = try PostgresClient.Configuration(
            databaseURL: reader.required("database.url", variable: "DATABASE_URL", isSecret: true,
                                         hint: "postgres://user:password@host:5432/database"))
        poolSize = try reader.setting("database.pool.size", variable: "DATABASE_POOL_SIZE", default: 4,
                                      expected: "a positive integer", Int.positive)
        configuration.options.maximumConnections = poolSize
        // Keep the pool at its size, without keep-alive pings: then returning a connection to the pool starts
        // no timer. PostgresNIO otherwise starts a sleeping idle or keep-alive timer on every release and
        // cancels it on the next lease; on Linux a cancelled sleep holds its task and timer until the original
        // deadline (30-60 s), which at thousands of INSERTs a second grew memory by megabytes a second.
        // A connection that dies idle fails its next query, which the writer retries.
        configuration.options.minimumConnections = poolSize
        configuration.options.keepAliveBehavior = nil
    }
}
