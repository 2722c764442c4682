import Configuration
import CycloneCloud
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTraining

/// What an evaluation cycle reads from the environment (`evaluate` and `cyclone evaluate` alike).
public struct EvaluationSettings: Sendable {
    /// `PERFORMANCE_WINDOW_ROWS` (1000) newest labelled predictions, no older than `PERFORMANCE_WINDOW_MAX_AGE` (7d).
    public var performance: WindowBounds
    /// `DRIFT_WINDOW_ROWS` (100000) newest predictions, no older than `DRIFT_WINDOW` (1h).
    public var drift: WindowBounds
    /// `RETRAIN_TRIGGER` (`loss`), `RETRAIN_ALPHA` (0.01), `RETRAIN_MIN_LOSS_RATIO` (1.1), `RETRAIN_DATA_GROWTH`
    /// (2), `RETRAIN_METRIC`,
    /// `RETRAIN_THRESHOLD`, `MIN_LABELS` (100), `RETRAIN_COOLDOWN` (1h), `RETRAIN_ON_DRIFT` (false),
    /// `PERFORMANCE_SOURCE` (`realised`; `estimated`, `auto`).
    public var policy: RetrainPolicy
    /// `DATA_QUALITY_MISSING` (0.1), `DATA_QUALITY_INVALID` (0.01), `DATA_QUALITY_OUT_OF_RANGE` (0.05),
    /// `DATA_QUALITY_UNSEEN` (0.05), `DATA_QUALITY_REFUSED` (0.05): the share that breaches each check, `off`,
    /// and exceptions by feature (`0.1,income=0.5`); `RETRAIN_ON_DATA_QUALITY` (false) is in `policy`.
    public var dataQuality: DataQualityOptions
    /// `DRIFT_CORRECTION` (`bh`: Benjamini–Hochberg over a window's p-values; `none`) and `DRIFT_PERSISTENCE`
    /// (1): the windows in a row a column's test must drift before it is reported as drifting.
    public var driftOptions = DriftOptions()
    /// `DRIFT_SEASON` (off): compare the drift window with the same window this long earlier (`1d`, `7d`)
    /// rather than with the training profile, where the version served then.
    public var driftSeason: Duration?
    /// `RETRAIN_TIMEOUT` (2h): a requested retrain that has not reported by then no longer blocks the next.
    public var retrainTimeout: Duration
    /// `PLATFORM` and its settings: where retrains run and canaries are promoted or rolled back.
    public var platform: PlatformSettings
    /// `ALERT_WEBHOOK_URL`: where alerts are POSTed as JSON; unset: alerts are log lines only.
    public var alertWebhook: String?
    /// `CANARY_MIN_LABELS` (100): labels each of canary and live need, since the canary started, before it is
    /// judged. `CANARY_TOLERANCE` (0): how much worse than live (a share of live's value) the canary may be
    /// and still be promoted.
    public var canaryMinimumLabels: Int
    public var canaryTolerance: Double
    /// `CANARY_MAX_AGE` (24h): a canary still short of labels this long after it started is rolled back.
    public var canaryMaxAge: Duration
    /// `SHADOW_ROWS` (`PERFORMANCE_WINDOW_ROWS`): the labelled pairs of a shadow's full sample, fixed before it
    /// starts; `SHADOW_LOOKS` (4): the looks at it, at equal steps (1: one test at the full sample);
    /// `SHADOW_ALPHA` (0.05): the chance over all looks that a shadow no better than live passes the boundary;
    /// `SHADOW_LAST_LOOK` (`lower`): whether the last look also promotes a lower mean loss short of it;
    /// `MIN_IMPROVEMENT` (0.01): how much lower (a share) the shadow's mean loss must be; `SHADOW_MAX_AGE` (7d):
    /// a shadow still short of its next look this long after it started is discarded.
    public var shadow: ShadowPolicy
    /// `TRAINING_WINDOW_ROWS`, `TRAINING_WINDOW_MAX_AGE`, `TRAINING_WINDOWS`, `TRAINING_MAX_ROWS` and `TRAINING_FAMILIES` when set
    /// here: passed on to each retrain started.
    public var trainingWindow: [String: String]
    /// `ESTIMATION_MAX_ROWS` (10000): the most rows of the reference and of the window that what is computed
    /// row by row (the performance estimate, target drift, the multivariate check) reads; a longer side is read
    /// as an evenly spaced sample, so a cycle's cost stays bounded whatever `PERFORMANCE_WINDOW_ROWS` is.
    public var estimationSample: Int
    /// `EVALUATE_MODELS` (every model): the model names this evaluator judges, comma-separated (spaces around a
    /// name dropped); the others' predictions are left to another evaluator (one with its own policy, or another
    /// replay in the database).
    public var models: Set<String>?

    public init(reader: ConfigReader) throws {
        performance = WindowBounds(
            rows: try reader.setting("performance.window.rows", variable: "PERFORMANCE_WINDOW_ROWS", default: 1_000,
                                     expected: "a positive integer", Int.positive),
            maxAge: try reader.setting("performance.window.max.age", variable: "PERFORMANCE_WINDOW_MAX_AGE",
                                       default: .seconds(7 * 86_400), expected: "a duration such as 12h or 7d",
                                       Duration.setting))
        drift = WindowBounds(
            rows: try reader.setting("drift.window.rows", variable: "DRIFT_WINDOW_ROWS", default: 100_000,
                                     expected: "a positive integer", Int.positive),
            maxAge: try reader.setting("drift.window", variable: "DRIFT_WINDOW", default: .seconds(3_600),
                                       expected: "a duration such as 30m or 1h", Duration.setting))
        var policy = RetrainPolicy()
        policy.metric = try reader.setting(
            "retrain.metric", variable: "RETRAIN_METRIC", default: nil,
            expected: "one of \(PerformanceMetric.allCases.map(\.rawValue).joined(separator: ", "))") {
                PerformanceMetric(rawValue: $0)
            }
        policy.threshold = try reader.setting("retrain.threshold", variable: "RETRAIN_THRESHOLD", default: nil,
                                              expected: "a number (absolute) or a factor such as 1.25x (relative)") {
            RetrainPolicy.Threshold($0)
        }
        policy.minimumLabels = try reader.setting("min.labels", variable: "MIN_LABELS", default: 100,
                                                  expected: "a positive integer", Int.positive)
        policy.cooldown = try reader.setting("retrain.cooldown", variable: "RETRAIN_COOLDOWN", default: .seconds(3_600),
                                             expected: "a duration such as 30m or 1h", Duration.setting)
        policy.trigger = try reader.setting("retrain.trigger", variable: "RETRAIN_TRIGGER", default: .loss,
                                            expected: "loss or threshold") { RetrainPolicy.Trigger(rawValue: $0) }
        policy.alpha = try reader.setting("retrain.alpha", variable: "RETRAIN_ALPHA", default: 0.01,
                                          expected: "a level above 0 and below 1, such as 0.01") {
            Double($0).flatMap { $0 > 0 && $0 < 1 ? $0 : nil }
        }
        policy.minimumLossRatio = try reader.setting("retrain.min.loss.ratio", variable: "RETRAIN_MIN_LOSS_RATIO",
                                                     default: 1.1, expected: "a ratio of at least 1, such as 1.1") {
            Double($0).flatMap { $0 >= 1 && $0.isFinite ? $0 : nil }
        }
        policy.dataGrowth = try reader.setting("retrain.data.growth", variable: "RETRAIN_DATA_GROWTH", default: 2,
                                               expected: "a factor above 1 and at most 1000, such as 2, or off") { text -> Double?? in
            if text == "off" { return .some(nil) }
            guard let factor = Double(text), factor > 1, factor <= 1_000 else { return nil }
            return .some(factor)
        }
        policy.retrainOnDrift = try reader.setting("retrain.on.drift", variable: "RETRAIN_ON_DRIFT", default: false,
                                                   expected: "true or false") { ["true": true, "false": false][$0] }
        policy.source = try reader.setting(
            "performance.source", variable: "PERFORMANCE_SOURCE", default: .realised,
            expected: "realised, estimated or auto") { RetrainPolicy.Source(rawValue: $0) }
        policy.retrainOnDataQuality = try reader.setting(
            "retrain.on.data.quality", variable: "RETRAIN_ON_DATA_QUALITY", default: false,
            expected: "true or false") { ["true": true, "false": false][$0] }
        self.policy = policy
        dataQuality = try DataQualityOptions(reader: reader)
        driftOptions.correction = try reader.setting(
            "drift.correction", variable: "DRIFT_CORRECTION", default: .benjaminiHochberg, expected: "bh or none") {
            DriftOptions.Correction(rawValue: $0)
        }
        driftSeason = try reader.setting(
            "drift.season", variable: "DRIFT_SEASON", default: nil,
            expected: "a duration such as 1d or 7d, or off") { text -> Duration?? in
            if text == "off" { return .some(nil) }
            guard let season = Duration.setting(text), season > .zero else { return nil }
            return .some(season)
        }
        if let season = driftSeason, season < drift.maxAge {
            throw SettingError(variable: "DRIFT_SEASON", message: "(\(season.settingText)) is shorter than DRIFT_WINDOW (\(drift.maxAge.settingText)): the window a season earlier would overlap the current one")
        }
        driftOptions.persistence = try reader.setting(
            "drift.persistence", variable: "DRIFT_PERSISTENCE", default: 1, expected: "a whole number from 1 to 100") {
            Int($0).flatMap { (1...100).contains($0) ? $0 : nil }
        }
        retrainTimeout = try reader.setting("retrain.timeout", variable: "RETRAIN_TIMEOUT", default: .seconds(7_200),
                                            expected: "a duration such as 30m or 2h", Duration.setting)
        platform = try PlatformSettings(reader: reader)
        alertWebhook = reader.nonEmpty("alert.webhook.url")
        canaryMinimumLabels = try reader.setting("canary.min.labels", variable: "CANARY_MIN_LABELS", default: 100,
                                                 expected: "a positive integer", Int.positive)
        canaryMaxAge = try reader.setting("canary.max.age", variable: "CANARY_MAX_AGE", default: .seconds(86_400),
                                          expected: "a duration such as 12h or 1d", Duration.setting)
        trainingWindow = try WindowBounds.trainingOverrides(reader)
        estimationSample = try reader.setting("estimation.max.rows", variable: "ESTIMATION_MAX_ROWS", default: 10_000,
                                              expected: "a positive integer", Int.positive)
        // Passed on as it is written, so checked here: a retrain that cannot start is found at evaluate's start.
        _ = try reader.setting("training.families", variable: "TRAINING_FAMILIES", default: Family.allCases,
                               expected: Family.listExpected, Family.list)
        shadow = ShadowPolicy(
            rows: try reader.setting("shadow.rows", variable: "SHADOW_ROWS", default: performance.rows,
                                     expected: "a positive integer", Int.positive),
            alpha: try reader.setting("shadow.alpha", variable: "SHADOW_ALPHA", default: 0.05,
                                      expected: "a level above 0 and below 1, such as 0.05") {
                Double($0).flatMap { $0 > 0 && $0 < 1 ? $0 : nil }
            },
            minimumImprovement: try reader.setting("min.improvement", variable: "MIN_IMPROVEMENT", default: 0.01,
                                                   expected: "a share of at least 0, such as 0.01", Double.nonNegative),
            maxAge: try reader.setting("shadow.max.age", variable: "SHADOW_MAX_AGE", default: .seconds(7 * 86_400),
                                       expected: "a duration such as 3d or 12h", Duration.setting),
            looks: try reader.setting("shadow.looks", variable: "SHADOW_LOOKS", default: 4,
                                      expected: "a whole number from 1 to 20") { Int($0).flatMap { (1...20).contains($0) ? $0 : nil } },
            lastLook: try reader.setting("shadow.last.look", variable: "SHADOW_LAST_LOOK", default: .lower,
                                         expected: "lower or significant") { ShadowPolicy.LastLook(rawValue: $0) })
        models = try reader.setting("evaluate.models", variable: "EVALUATE_MODELS", default: nil,
                                    expected: "model names separated by commas") { text -> Set<String>?? in
            // Spaces around a name go; a name may hold spaces of its own (a model named after its file).
            let names = text.split(separator: ",", omittingEmptySubsequences: false).map { name in
                String(name.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
            }
            return names.contains(where: \.isEmpty) ? nil : .some(Set(names))
        }
        canaryTolerance = try reader.setting("canary.tolerance", variable: "CANARY_TOLERANCE", default: 0,
                                             expected: "a share of at least 0, such as 0.02", Double.nonNegative)
    }
}

extension DataQualityOptions {
    /// `DATA_QUALITY_MISSING`, `DATA_QUALITY_INVALID`, `DATA_QUALITY_OUT_OF_RANGE`, `DATA_QUALITY_UNSEEN` and
    /// `DATA_QUALITY_REFUSED`, each over its default.
    public init(reader: ConfigReader) throws {
        self.init()
        for (check, key, variable) in [(\DataQualityOptions.missing, "data.quality.missing", "DATA_QUALITY_MISSING"),
                                       (\.invalid, "data.quality.invalid", "DATA_QUALITY_INVALID"),
                                       (\.outOfRange, "data.quality.out.of.range", "DATA_QUALITY_OUT_OF_RANGE"),
                                       (\.unseen, "data.quality.unseen", "DATA_QUALITY_UNSEEN"),
                                       (\.refused, "data.quality.refused", "DATA_QUALITY_REFUSED")]
        {
            self[keyPath: check] = try reader.setting(
                ConfigKey(key), variable: variable, default: self[keyPath: check],
                expected: "a share from 0 to 1 or off, then optionally feature=share pairs, such as 0.1,income=0.5",
                DataQualityOptions.Limit.init)
        }
    }
}
