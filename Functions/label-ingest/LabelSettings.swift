import Configuration
import CycloneServer
import CycloneStore
import PostgresNIO

/// Everything `label-ingest` reads from its environment.
struct LabelSettings: Sendable {
    /// `PORT`: set by Cloud Run; 8080 when unset.
    var port: Int
    /// `DATABASE_URL`: `postgres://user:pass@host:5432/db`, or a `/cloudsql/…` socket host. Required, secret.
    var database: PostgresClient.Configuration
    /// `DATABASE_POOL_SIZE`: most connections to PostgreSQL; 4 by default.
    var poolSize: Int
    /// `MAX_LABELS`: most labels in one request; 10000.
    var maxLabels: Int
    /// `MAX_BODY_BYTES`: largest request body; 10 MiB.
    var maxBodyBytes: Int
    /// `GOOGLE_CLOUD_PROJECT`: names the project in log lines' trace field; optional.
    var project: String?

    init(reader: ConfigReader) throws {
        port = try reader.setting("port", variable: "PORT", default: 8080, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        database = try PostgresClient.Configuration(
            databaseURL: reader.required("database.url", variable: "DATABASE_URL", isSecret: true,
                                         hint: "postgres://user:password@host:5432/database"))
        poolSize = try reader.setting("database.pool.size", variable: "DATABASE_POOL_SIZE", default: 4,
                                      expected: "a positive integer", Int.positive)
        maxLabels = try reader.setting("max.labels", variable: "MAX_LABELS", default: 10_000,
                                       expected: "a positive integer", Int.positive)
        maxBodyBytes = try reader.setting("max.body.bytes", variable: "MAX_BODY_BYTES", default: 10 << 20,
                                          expected: "a positive integer", Int.positive)
        project = reader.string(forKey: "google.cloud.project")
        database.options.maximumConnections = poolSize
    }
}
