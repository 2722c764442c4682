import Configuration
import CycloneRuntime
import Foundation

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

    /// The training windows' variables as set here (checked), for the retrains this process starts: the
    /// loop's policy lives with evaluate, so a retrain job's own environment need not change with it.
    public static func trainingOverrides(_ reader: ConfigReader) throws -> [String: String] {
        _ = try TrainingWindows(reader)
        var overrides: [String: String] = [:]
        for (key, variable) in [("training.window.rows", "TRAINING_WINDOW_ROWS"), ("training.window.max.age", "TRAINING_WINDOW_MAX_AGE"),
                                ("training.windows", "TRAINING_WINDOWS"), ("training.max.rows", "TRAINING_MAX_ROWS"),
                                ("training.families", "TRAINING_FAMILIES")] {
            if let value = reader.nonEmpty(ConfigKey(key)) { overrides[variable] = value }
        }
        return overrides
    }
}

/// The windows a retrain's candidates train on: the newest `TRAINING_WINDOW_ROWS` (100000) labelled
/// predictions, multiples of it, and every one within `TRAINING_WINDOW_MAX_AGE` (30d), as
/// `TRAINING_WINDOWS` lists them (`1,3,all`); `all` reads at most `TRAINING_MAX_ROWS` (1000000).
public struct TrainingWindows: Sendable, Equatable {
    /// The newest window, and how old a row may be.
    public var newest: WindowBounds
    /// The windows, in rows, narrowest first (`all` as `maxRows`).
    public var sizes: [Int]

    public init(newest: WindowBounds, sizes: [Int]) {
        self.newest = newest
        self.sizes = sizes
    }

    public init(_ reader: ConfigReader) throws {
        newest = try WindowBounds.training(reader)
        let rows = newest.rows
        // Never below the newest window: a TRAINING_WINDOW_ROWS beyond it is read whole, as it always was.
        let maxRows = max(rows, try reader.setting("training.max.rows", variable: "TRAINING_MAX_ROWS", default: 1_000_000,
                                                   expected: "a positive integer", Int.positive))
        sizes = try reader.setting("training.windows", variable: "TRAINING_WINDOWS", default: [rows, rows.multipliedReportingOverflow(by: 3).overflow ? maxRows : 3 * rows, maxRows],
                                   expected: "multiples of TRAINING_WINDOW_ROWS and `all`, such as 1,3,all") { text in
            var sizes: [Int] = []
            for word in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
                if word.lowercased() == "all" {
                    sizes.append(maxRows)
                } else if let multiple = Int(word), multiple > 0 {
                    let (size, overflow) = multiple.multipliedReportingOverflow(by: rows)  // beyond Int: the most rows
                    sizes.append(overflow ? maxRows : size)
                } else {
                    return nil
                }
            }
            return sizes.isEmpty ? nil : sizes
        }
        sizes = Array(Set(sizes.map { min($0, maxRows) })).sorted()
    }

    /// What a retrain reads, no older than the age limit: the widest window's rows, and the holdout's
    /// (`holdout` of the newest window) after them, since the windows are counted before the holdout.
    public func read(holdout: Double) -> WindowBounds {
        let held = Int((Double(min(newest.rows, sizes.first ?? newest.rows)) * holdout).rounded())
        let (rows, overflow) = (sizes.last ?? newest.rows).addingReportingOverflow(held)
        return WindowBounds(rows: overflow ? Int.max : rows, maxAge: newest.maxAge)
    }
}
