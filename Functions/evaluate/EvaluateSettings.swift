import Configuration
import CycloneEvaluation
import CycloneHTTP
import CycloneRuntime
import CycloneStore

/// Everything `evaluate` reads from its environment.
struct EvaluateSettings: Sendable {
    /// `PORT`, `MAX_BODY_BYTES`, `GOOGLE_CLOUD_PROJECT`.
    var server: ServerSettings
    /// `DATABASE_URL`, `DATABASE_POOL_SIZE`.
    var database: DatabaseSettings
    /// The windows, the policy, `RETRAIN_COMMAND` and `ALERT_WEBHOOK_URL`.
    var evaluation: EvaluationSettings
    /// `DATABASE_TIMEOUT`: how long a dashboard read, or a cycle's first query, may wait for PostgreSQL before
    /// the answer is 503; `10s`.
    var databaseTimeout: Duration

    init(reader: ConfigReader) throws {
        server = try ServerSettings(reader: reader)
        database = try DatabaseSettings(reader: reader)
        evaluation = try EvaluationSettings(reader: reader)
        databaseTimeout = try reader.setting("database.timeout", variable: "DATABASE_TIMEOUT", default: .seconds(10),
                                             expected: "a duration such as 500ms or 2s", Duration.setting)
    }
}
