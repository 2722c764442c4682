import Configuration
import CycloneCloud
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTraining

/// What the retrain job reads from its environment. The evaluator's platform sets the first three.
struct RetrainSettings: Sendable {
    /// `RETRAIN_MODEL_NAME` and `RETRAIN_PARENT_VERSION` (required): the model and the live version to beat.
    var modelName: String
    var parentVersion: String
    /// `RETRAIN_EVENT_ID`: the `retrain_requested` event this run answers, when the evaluator started it.
    var eventID: Int64?
    /// `TRAINING_WINDOW_ROWS` (100000) newest labelled predictions, no older than `TRAINING_WINDOW_MAX_AGE` (30d),
    /// and the candidate windows `TRAINING_WINDOWS` (`1,3,all`; `all` at most `TRAINING_MAX_ROWS`, 1000000).
    var windows: TrainingWindows
    /// `TRAINING_FAMILIES` (`all`: every family that can model the task competes with the live one's; `live`: its
    /// own alone), `HOLDOUT_SHARE` (0.2), `MIN_IMPROVEMENT` (0.01), `RETRAIN_METRIC` (the task's default),
    /// `MIN_TRAINING_ROWS` (100).
    var options: RetrainOptions
    var database: DatabaseSettings
    /// `PLATFORM` and its settings: where an accepted candidate is deployed (the local model folder, or a
    /// Cloud Run revision), and `CANARY_PERCENT` (10), the share of traffic it gets first until the evaluator
    /// promotes or rolls it back; 0 deploys it to all traffic at once.
    var platform: PlatformSettings

    init(reader: ConfigReader) throws {
        modelName = try reader.required("retrain.model.name", variable: "RETRAIN_MODEL_NAME")
        parentVersion = try reader.required("retrain.parent.version", variable: "RETRAIN_PARENT_VERSION")
        eventID = try reader.setting("retrain.event.id", variable: "RETRAIN_EVENT_ID", default: nil,
                                     expected: "an event id (a positive integer)") { Int64($0).flatMap { $0 > 0 ? $0 : nil } }
        windows = try TrainingWindows(reader)
        var options = RetrainOptions()
        options.windows = windows.sizes
        options.families = try reader.setting("training.families", variable: "TRAINING_FAMILIES", default: Family.allCases,
                                              expected: Family.listExpected, Family.list)
        options.holdout = try reader.setting("holdout.share", variable: "HOLDOUT_SHARE", default: 0.2,
                                             expected: "a share above 0 and below 1") {
            Double($0).flatMap { $0 > 0 && $0 < 1 ? $0 : nil }
        }
        options.minimumImprovement = try reader.setting("min.improvement", variable: "MIN_IMPROVEMENT", default: 0.01,
                                                        expected: "a share of at least 0, such as 0.01",
                                                        Double.nonNegative)
        options.metric = try reader.setting(
            "retrain.metric", variable: "RETRAIN_METRIC", default: nil,
            expected: "one of \(PerformanceMetric.allCases.map(\.rawValue).joined(separator: ", "))") {
                PerformanceMetric(rawValue: $0)
            }
        options.minimumRows = try reader.setting("min.training.rows", variable: "MIN_TRAINING_ROWS", default: 100,
                                                 expected: "a positive integer", Int.positive)
        self.options = options
        database = try DatabaseSettings(reader: reader)
        platform = try PlatformSettings(reader: reader)
    }
}
