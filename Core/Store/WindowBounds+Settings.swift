import Configuration
import CycloneRuntime

extension WindowBounds {
    /// `TRAINING_WINDOW_ROWS` (100000) newest labelled predictions, no older than `TRAINING_WINDOW_MAX_AGE`
    /// (30d): what retrain trains and judges on.
    public static func training(_ reader: ConfigReader) throws -> WindowBounds {
        WindowBounds(
            rows: try reader.setting("training.window.rows", variable: "TRAINING_WINDOW_ROWS", default: 100_000,
                                     expected: "a positive integer", Int.positive),
            maxAge: try reader.setting("training.window.max.age", variable: "TRAINING_WINDOW_MAX_AGE",
                                       default: .seconds(30 * 86_400), expected: "a duration such as 12h or 30d",
                                       Duration.setting))
    }

    /// The training window's variables as set here (checked), for the retrains this process starts: the
    /// loop's policy lives with evaluate, so a retrain job's own environment need not change with it.
    public static func trainingOverrides(_ reader: ConfigReader) throws -> [String: String] {
        _ = try training(reader)
        var overrides: [String: String] = [:]
        for (key, variable) in [("training.window.rows", "TRAINING_WINDOW_ROWS"), ("training.window.max.age", "TRAINING_WINDOW_MAX_AGE")] {
            if let value = reader.nonEmpty(ConfigKey(key)) { overrides[variable] = value }
        }
        return overrides
    }
}
