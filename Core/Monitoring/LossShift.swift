import CycloneModel
import Foundation

/// One-sided Welch t-test that `current`'s mean is above `reference`'s, as
/// `scipy.stats.ttest_ind(current, reference, equal_var=False, alternative="greater")`: t = (x̄ − ȳ) /
/// √(s²ₓ/n + s²ᵧ/m) and Student's t survival with the Welch–Satterthwaite degrees of freedom. When both
/// samples have no spread there is no evidence either way unless the means differ: t 0 and p-value 1 for
/// equal means (SciPy's NaN), ±`greatestFiniteMagnitude` and p 0 or 1 otherwise (SciPy's ±∞). `nil` when
/// either sample has fewer than two values.
public func welchTTestGreater(current: [Double], reference: [Double])
    -> (statistic: Double, pValue: Double, degreesOfFreedom: Double)?
{
    guard current.count > 1, reference.count > 1 else { return nil }
    let (x, y) = (sampleMoments(current), sampleMoments(reference))
    let (a, b) = (x.variance / Double(current.count), y.variance / Double(reference.count))
    guard a + b > 0 else {
        let (t, p) = noSpread(x.mean, y.mean)
        return (t, p, Double(current.count + reference.count - 2))
    }
    let t = (x.mean - y.mean) / (a + b).squareRoot()
    // Welch–Satterthwaite from the two shares of the variance, so that neither huge nor tiny variances
    // overflow or underflow on the way (a label of 1e90 would otherwise make it NaN and the p-value 0).
    let (r, q) = (a / (a + b), b / (a + b))
    let df = 1 / (r * r / Double(current.count - 1) + q * q / Double(reference.count - 1))
    guard t.isFinite, df.isFinite else { return (0, 1, 1) }
    return (t, studentTSurvival(t, degreesOfFreedom: df), df)
}

/// Whether a model's loss has grown: its newest labelled rows' mean loss against that of its reference window
/// (its first full live window, as NannyML and Evidently take a reference), by a one-sided Welch t-test on
/// batch means, and the ratio of the mean losses. Per-row losses are the absolute error for a regression and
/// the log loss for a classifier. The mean, because the mean loss is what a retrain is meant to lower (and
/// what the shadow verdict compares).
///
/// Losses in time order are seldom independent: an hour's error resembles the last (weather, a busy day), and most
/// follow a cycle (the hour of day, the weekday). A test that takes rows as independent fires far above its level
/// on persistent errors; a correction for the rows' lag-1 autocorrelation treats a daily cycle as persistence and
/// widens the test until a loss grown ×3.7 passes unflagged (Seattle's temperatures, p 0.2). So each window is cut
/// into `batchCount` (8) consecutive batches and the test is Welch's on the two windows' batch means (the
/// non-overlapping batch means of simulation output analysis): in the demo's week-long windows of hourly rows a batch
/// spans 21 hours, so the day's cycle largely cancels within it, while persistence shorter than a batch leaves the
/// batch means nearly independent; the t distribution with Welch's degrees of freedom pays for estimating their
/// spread from 16 numbers. Both windows are tested row by row when either has under 16 rows. The price: a sudden
/// jump, however large, fires only once more than half the current window comes after it (with 4 of 8 batches
/// raised the largest t is 2.65 on 7 degrees of freedom, p ≥ 0.017).
/// `scripts/bench/loss_test.py` measures both tests' false alarms and power on stationary and shifted streams.
///
/// The same test also weighs a window against the loss a version was expected to have, its losses on the
/// rows held out of its training (`HoldoutLoss`, kept as `summary` keeps a reference): NannyML takes its
/// reference from such a test set. A version poor from its first week is its own first window, and only this
/// second reference sees it.
public struct LossShift: Sendable, Equatable, Codable {
    public var referenceRows: Int
    public var currentRows: Int
    public var referenceMeanLoss: Double
    public var currentMeanLoss: Double
    /// Welch's t of the current window's batch means against the reference's, and its one-sided p-value.
    public var statistic: Double
    public var pValue: Double
    /// The batches each window was averaged in; 0 when the windows were tested row by row (either under
    /// `2 × batchCount` rows).
    public var batches: Int

    /// Batches a window of `2 × batchCount` rows or more is averaged in.
    public static let batchCount = 8

    /// `currentMeanLoss / referenceMeanLoss` (infinite when the reference's is 0 and the current's is not).
    public var ratio: Double {
        referenceMeanLoss > 0 ? currentMeanLoss / referenceMeanLoss : currentMeanLoss > 0 ? .infinity : 1
    }

    /// `current` and `reference` each in time order (either direction). A window of one loss is no evidence
    /// (t 0, p-value 1). `nil` when either is empty, or holds losses too large to sum.
    public init?(current: [Double], reference: [Double]) {
        guard let summary = Self.summary(reference) else { return nil }
        let batches = current.count >= 2 * Self.batchCount ? summary.batches : 0
        self.init(current: current, tested: batches > 0 ? summary.values : reference, rows: summary.rows,
                  mean: summary.mean, batches: batches)
    }

    /// The current window against the loss a version was expected to have: its losses on its holdout, as
    /// `summary` kept them. `nil` when `current` is empty or too large to sum, or when the holdout was batched
    /// and the window has too few rows to batch alike.
    public init?(current: [Double], expected: HoldoutLoss) {
        guard expected.rows > 0, !expected.values.isEmpty else { return nil }
        let batches = expected.batches > 0 ? Self.batchCount : 0
        guard batches == 0 || current.count >= 2 * Self.batchCount else { return nil }
        // A holdout kept whole is tested row by row; a window of many rows against it is tested so too.
        self.init(current: current, tested: expected.values, rows: expected.rows, mean: expected.mean,
                  batches: batches)
    }

    /// `losses` (in time order) kept as the test reads a reference: their count and mean, and their
    /// `batchCount` batch means when there are at least `2 × batchCount` of them, else the losses. `nil` when
    /// empty, or not finite.
    public static func summary(_ losses: [Double]) -> HoldoutLoss? {
        guard !losses.isEmpty, losses.allSatisfy(\.isFinite) else { return nil }
        let sum = losses.reduce(0, +)
        guard sum.isFinite else { return nil }
        let batches = losses.count >= 2 * batchCount ? batchCount : 0
        return HoldoutLoss(rows: losses.count, mean: sum / Double(losses.count),
                           values: batches > 0 ? batchMeans(losses, batches: batches) : losses, batches: batches)
    }

    private init?(current: [Double], tested reference: [Double], rows: Int, mean: Double, batches: Int) {
        guard !current.isEmpty, current.allSatisfy(\.isFinite), current.reduce(0, +).isFinite else { return nil }
        let tested = batches > 0 ? batchMeans(current, batches: batches) : current
        let test = welchTTestGreater(current: tested, reference: reference) ?? (0, 1, 0)
        referenceRows = rows
        currentRows = current.count
        referenceMeanLoss = mean
        currentMeanLoss = current.reduce(0, +) / Double(current.count)
        statistic = test.statistic
        pValue = test.pValue
        self.batches = batches
    }

    enum CodingKeys: String, CodingKey {
        case referenceRows = "reference_rows", currentRows = "current_rows", referenceMeanLoss = "reference_mean_loss",
             currentMeanLoss = "current_mean_loss", statistic, pValue = "p_value", batches
    }
}
