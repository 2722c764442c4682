import Configuration
import CycloneEvaluation
import CycloneServer

/// Everything `evaluate` reads from its environment.
struct EvaluateSettings: Sendable {
    /// `PORT`, `MAX_BODY_BYTES`, `GOOGLE_CLOUD_PROJECT`.
    var server: ServerSettings
    /// `DATABASE_URL`, `DATABASE_POOL_SIZE`.
    var database: DatabaseSettings
    /// The windows, the policy, `RETRAIN_COMMAND` and `ALERT_WEBHOOK_URL`.
    var evaluation: EvaluationSettings

    init(reader: ConfigReader) throws {
        server = try ServerSettings(reader: reader)
        database = try DatabaseSettings(reader: reader)
        evaluation = try EvaluationSettings(reader: reader)
    }
}
