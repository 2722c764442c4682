import Configuration
import CycloneHTTP
import CycloneRuntime
import CycloneStore
import PostgresNIO

/// Everything `label-ingest` reads from its environment.
struct LabelSettings: Sendable {
    /// `PORT`, `MAX_BODY_BYTES`, `GOOGLE_CLOUD_PROJECT`.
    var server: ServerSettings
    /// `DATABASE_URL`, `DATABASE_POOL_SIZE`.
    var database: DatabaseSettings
    /// `DATABASE_TIMEOUT`: how long a batch may wait for PostgreSQL before the answer is 503; `5s`.
    var databaseTimeout: Duration
    /// `MAX_LABELS`: most labels in one request; 10000.
    var maxLabels: Int
    /// `STRICT_LABELS`: refuse a request holding a label its model cannot have (a string or boolean for a
    /// regression); `true`. With `false` it is stored, and counted as invalid by the evaluator.
    var strictLabels: Bool

    init(reader: ConfigReader) throws {
        server = try ServerSettings(reader: reader)
        database = try DatabaseSettings(reader: reader)
        databaseTimeout = try reader.setting("database.timeout", variable: "DATABASE_TIMEOUT", default: .seconds(5),
                                             expected: "a duration such as 500ms or 2s", Duration.setting)
        maxLabels = try reader.setting("max.labels", variable: "MAX_LABELS", default: 10_000,
                                       expected: "a positive integer", Int.positive)
        strictLabels = try reader.setting("strict.labels", variable: "STRICT_LABELS", default: true,
                                          expected: "true or false") { Bool($0) }
    }
}
