import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// The window counted on the reference's bins, as the evaluator's SQL counts it.
func numericWindow(_ values: [Double], against profile: FeatureProfile) -> WindowColumn {
    let binning = NumericBinning(profile)!
    var column = WindowColumn(binning: binning)
    for value in values { column.add(value, binning: binning) }
    return column
}

func categoricalWindow(_ values: [String?]) -> WindowColumn {
    var column = WindowColumn()
    for value in values { column.add(category: value) }
    return column
}

/// Binned drift against SciPy's exact statistics on the fixtures, within the tolerances `FeatureDrift` states.
@Suite struct FeatureDriftTests {
    /// KS from the bins misses at most the largest reference bin's share; its p-value is exact for the binned
    /// statistic, so the verdict agrees with SciPy's whenever SciPy's p-value is not at the edge.
    @Test(arguments: try DriftCases.load().ks.filter { $0.reference.count <= ReferenceProfile.rawLimit })
    func binnedKolmogorovSmirnovIsWithinOneBinOfSciPy(_ c: DriftCases.KS) throws {
        let profile = FeatureProfile.numeric(c.reference)
        let drift = profile.drift(against: numericWindow(c.current, against: profile), feature: "x",
                                  referenceRows: c.reference.count)
        #expect(drift.test == .kolmogorovSmirnov)
        let largestBin = Double(profile.counts!.max()!) / Double(c.reference.count)
        let statistic = try #require(drift.statistic)
        #expect(statistic <= c.statistic + 1e-12, "binned \(statistic) exceeds exact \(c.statistic)")
        #expect(statistic >= c.statistic - largestBin - 1e-12, "binned \(statistic) vs exact \(c.statistic)")
        #expect(drift.pValue == kolmogorovSmirnovPValue(statistic: statistic, n1: c.reference.count, n2: c.current.count))
        if c.p_value < 0.01 || c.p_value > 0.2 { #expect(drift.drifted == (c.p_value < 0.05)) }
    }

    /// Wasserstein from the bins: within 2 % of the reference standard deviation of SciPy's distance.
    @Test(arguments: try DriftCases.load().wasserstein)
    func binnedWassersteinIsCloseToSciPy(_ c: DriftCases.Wasserstein) throws {
        let profile = FeatureProfile.numeric(c.reference)
        var options = DriftOptions()
        options.smallReference = 0  // force the distance test
        let drift = profile.drift(against: numericWindow(c.current, against: profile), feature: "x",
                                  referenceRows: c.reference.count, options: options)
        #expect(drift.test == .wasserstein)
        let std = try #require(profile.std)
        let statistic = try #require(drift.statistic)
        #expect(abs(statistic - c.distance / std) <= 0.02, "binned \(statistic) vs SciPy \(c.distance / std)")
    }

    /// Without the raw reference values (references over 1,000 rows) the bin midpoints stand in for them.
    @Test func wassersteinFromBinMidpointsIsCloseToSciPy() throws {
        let c = try #require(try DriftCases.load().wasserstein.first { $0.name == "shifted_normal" })
        var profile = FeatureProfile.numeric(c.reference)
        profile.values = nil
        var options = DriftOptions()
        options.smallReference = 0
        let drift = profile.drift(against: numericWindow(c.current, against: profile), feature: "x",
                                  referenceRows: 5_000, options: options)
        #expect(abs(try #require(drift.statistic) - c.distance / profile.std!) <= 0.02)
    }

    /// PSI over the profile's deciles equals PSI from the raw reference (fixtures without tied edges).
    @Test(arguments: try DriftCases.load().psi.filter { Set($0.edges).count == $0.edges.count })
    func binnedPSIEqualsNumPy(_ c: DriftCases.PSI) throws {
        let profile = FeatureProfile.numeric(c.reference)
        let drift = profile.drift(against: numericWindow(c.current, against: profile), feature: "x",
                                  referenceRows: c.reference.count)
        expectClose(try #require(drift.psi), c.psi, relative: 1e-9, "psi")
        #expect(drift.stability == FeatureDrift.Stability(psi: c.psi))
    }

    @Test func valuesOutsideTheReferenceRangeAreCountedAndDrift() throws {
        let c = try #require(try DriftCases.load().ks.first { $0.name == "current_outside_range" })
        let profile = FeatureProfile.numeric(c.reference)
        let drift = profile.drift(against: numericWindow(c.current, against: profile), feature: "x",
                                  referenceRows: c.reference.count)
        let outside = c.current.filter { $0 < profile.min! || $0 > profile.max! }.count
        #expect(drift.outOfRange == outside && outside == 150)
        #expect(drift.drifted)
        #expect(drift.stability == .major)
    }

    /// Chi-squared for many categories on a small reference, Z-test for two, Jensen–Shannon on a large one.
    @Test func categoricalTestsFollowEvidentlysChoice() throws {
        let c = try #require(try DriftCases.load().chisquare.first { $0.name == "shifted" })
        let names = (0..<c.reference_counts.count).map { "c\($0)" }
        func expand(_ counts: [Int]) -> [String?] { zip(names, counts).flatMap { Array(repeating: $0, count: $1) } }
        let profile = FeatureProfile.categorical(expand(c.reference_counts))
        let window = categoricalWindow(expand(c.current_counts))
        let small = profile.drift(against: window, feature: "f", referenceRows: 1_000)
        #expect(small.test == .chiSquared)
        expectClose(try #require(small.statistic), c.statistic, relative: 1e-12, "chi-squared")
        expectClose(try #require(small.pValue), c.p_value, relative: 1e-9, "p")
        #expect(small.drifted == (c.p_value < 0.05))

        // The test is chosen by the column's reference values, so a lower limit stands in for a large reference.
        var options = DriftOptions()
        options.smallReference = profile.count - 1
        let large = profile.drift(against: window, feature: "f", referenceRows: 1_001, options: options)
        #expect(large.test == .jensenShannon)
        #expect(profile.drift(against: window, feature: "f", referenceRows: 1_001).test == .chiSquared,
                "the column's values, not the rows, choose the test")
        let p = c.reference_counts.map(Double.init) + [0], q = c.current_counts.map(Double.init) + [0]
        expectClose(try #require(large.statistic), jensenShannonDistance(p, q), relative: 1e-12, "js")

        let z = try #require(try DriftCases.load().z_test.first { $0.name == "moderate_shift" })
        let twoValued = FeatureProfile.categorical(
            Array(repeating: "a", count: z.reference_successes) + Array(repeating: "b", count: z.reference_count - z.reference_successes))
        let zDrift = twoValued.drift(
            against: categoricalWindow(Array(repeating: "a", count: z.current_successes)
                                       + Array(repeating: "b", count: z.current_count - z.current_successes)),
            feature: "g", referenceRows: z.reference_count)
        #expect(zDrift.test == .zTest)
        expectClose(try #require(zDrift.statistic), z.statistic, relative: 1e-12, "z")
        expectClose(try #require(zDrift.pValue), z.p_value, relative: 1e-9, "p")
    }

    @Test func unseenCategoriesHaveTheirOwnBinAndCountTowardsDrift() throws {
        let reference = FeatureProfile.categorical(Array(repeating: "red", count: 300) + Array(repeating: "blue", count: 300)
                                                   + Array(repeating: "green", count: 300))
        let same = categoricalWindow(Array(repeating: "red", count: 100) + Array(repeating: "blue", count: 100)
                                     + Array(repeating: "green", count: 100))
        #expect(!reference.drift(against: same, feature: "colour", referenceRows: 900).drifted)
        var novel = same
        for _ in 0..<5 { novel.add(category: "purple") }
        let drift = reference.drift(against: novel, feature: "colour", referenceRows: 900)
        #expect(drift.unseen == 5 && drift.unseenCategories == ["purple": 5])
        #expect(drift.drifted, "five rows of a category the model never saw are drift")
        #expect(try #require(drift.psi) > 0.01)
    }

    @Test func missingValuesAreCountedAndAnEmptyColumnSaysSo() throws {
        let profile = FeatureProfile.numeric([1, 2, 3, 4, 5, .nan])
        let binning = NumericBinning(profile)!
        var window = WindowColumn(binning: binning)
        for _ in 0..<4 { window.add(.nan, binning: binning) }
        window.invalid = 1
        let drift = profile.drift(against: window, feature: "x", referenceRows: 6)
        #expect(drift.statistic == nil && !drift.drifted && !drift.isTested)
        #expect(drift.note == "no values in the window")
        #expect(drift.rows == 5 && drift.missing == 4 && drift.invalid == 1 && drift.missingRate == 0.8)
        expectClose(drift.referenceMissingRate, 1.0 / 6, relative: 1e-12)
    }

    /// Counting sorted numbers by walking the thresholds gives `add`'s bins: values on an edge, below the
    /// reference's minimum, at and above its maximum, repeated values, −0 and 0.
    @Test func sortedNumbersFallInTheBinsAddFinds() throws {
        var generator = SplitMix64(seed: 12)
        let reference = (0..<3_000).map { _ in (generator.normal() * 4).rounded() / 4 }
        let profile = FeatureProfile.numeric(reference)
        let binning = NumericBinning(profile)!
        let current = (0..<5_000).map { _ in (generator.normal() * 5).rounded() / 4 }
            + binning.thresholds + [-0.0, 0, reference.min()!, reference.max()!, 1e300, -1e300]
        var sorted = WindowColumn(binning: binning)
        sorted.add(sorted: sortedNumbers(current), binning: binning)
        let one = numericWindow(current, against: profile)
        #expect(sorted.binCounts == one.binCounts && sorted.count == one.count)
        for (a, b) in zip(sorted.binSums, one.binSums) { expectClose(a, b, relative: 1e-12) }
    }

    /// Dataset drift when at least half of the tested features drift; untested ones do not count.
    @Test func datasetDriftNeedsHalfOfTheTestedFeatures() throws {
        var generator = SplitMix64(seed: 11)
        func normal(_ n: Int, mean: Double) -> [Double] { (0..<n).map { _ in mean + generator.normal() } }
        let profile = ReferenceProfile(rows: 800, features: [
            "a": .numeric(normal(800, mean: 0)), "b": .numeric(normal(800, mean: 0)),
            "c": .numeric(normal(800, mean: 0)), "d": .numeric(normal(800, mean: 0)),
        ])
        func window(_ shifted: Set<String>) -> [String: WindowColumn] {
            Dictionary(uniqueKeysWithValues: ["a", "b", "c"].map { name in
                (name, numericWindow(normal(500, mean: shifted.contains(name) ? 1 : 0), against: profile.features[name]!))
            })
        }
        let order = ["a", "b", "c", "d"]
        let one = profile.drift(against: window(["a"]), prediction: nil, order: order)
        #expect(one.features.map(\.drifted) == [true, false, false, false])
        #expect(one.tested == 3 && one.drifted == 1 && !one.datasetDrift, "d has no values in the window")
        let two = profile.drift(against: window(["a", "b"]), prediction: nil, order: order)
        #expect(two.drifted == 2 && two.datasetDrift)
    }
}

/// The threshold trigger (`RETRAIN_TRIGGER=threshold`); the loss trigger is `LossShiftTests`' and
/// `LossTriggerTests`'.
@Suite struct RetrainPolicyTests {
    @Test func absoluteAndRelativeThresholdsBreachInTheMetricsDirection() {
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        let r2 = policy.judge(task: .regression, metrics: ["r2": 0.39], labels: 500, holdout: nil, drift: nil)
        #expect(r2.breached == true && r2.retrain && r2.limit == 0.4)
        #expect(policy.judge(task: .regression, metrics: ["r2": 0.4], labels: 500, holdout: nil, drift: nil).breached == false)

        policy.metric = .rmse
        policy.threshold = RetrainPolicy.Threshold("1.25x")
        let worse = policy.judge(task: .regression, metrics: ["rmse": 13], labels: 500, holdout: ["rmse": 10], drift: nil)
        #expect(worse.breached == true && worse.limit == 12.5)
        #expect(policy.judge(task: .regression, metrics: ["rmse": 12], labels: 500, holdout: ["rmse": 10], drift: nil).breached == false)
        let noHoldout = policy.judge(task: .regression, metrics: ["rmse": 99], labels: 500, holdout: nil, drift: nil)
        #expect(noHoldout.breached == nil && !noHoldout.retrain && noHoldout.reason.contains("no holdout rmse"))
    }

    @Test func belowTheMinimumLabelsNothingIsDecided() {
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        policy.minimumLabels = 200
        let judgement = policy.judge(task: .regression, metrics: ["r2": -3], labels: 199, holdout: nil, drift: nil)
        #expect(judgement.breached == nil && !judgement.retrain)
        #expect(judgement.reason == "199 labels, fewer than the 200 needed for a decision")
    }

    @Test func driftAloneRetrainsOnlyWhenOptedIn() {
        let drift = DriftReport(features: [], prediction: nil, tested: 4, drifted: 3, driftedShare: 0.75, datasetDrift: true)
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        let off = policy.judge(task: .regression, metrics: ["r2": 0.9], labels: 500, holdout: nil, drift: drift)
        #expect(!off.retrain && off.datasetDrift && off.reason.contains("RETRAIN_ON_DRIFT is off"))
        policy.retrainOnDrift = true
        #expect(policy.judge(task: .regression, metrics: ["r2": 0.9], labels: 500, holdout: nil, drift: drift).retrain)
    }

    @Test func thresholdsParse() {
        #expect(RetrainPolicy.Threshold("0.4") == .absolute(0.4))
        #expect(RetrainPolicy.Threshold("1.25x") == .relative(1.25))
        #expect(RetrainPolicy.Threshold("x0.9") == .relative(0.9))
        #expect(RetrainPolicy.Threshold("-2x") == nil && RetrainPolicy.Threshold("fast") == nil)
        let binary = RetrainPolicy().resolved(for: .binary)
        #expect(binary.metric == .rocAUC && binary.threshold == .relative(0.9))
    }

    /// A relative threshold scales the holdout value's magnitude: a model performing as it did on its holdout
    /// never breaches, even when that value is negative.
    @Test(arguments: [(0.5, 0.45), (-0.4, -0.44)])
    func relativeThresholdsAllowSlackBelowTheHoldout(_ holdout: Double, _ limit: Double) {
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        policy.metric = .r2
        policy.threshold = .relative(0.9)
        let judged = policy.judge(task: .regression, metrics: ["r2": holdout], labels: 500, holdout: ["r2": holdout],
                                  drift: nil)
        #expect(abs((judged.limit ?? .nan) - limit) < 1e-12 && judged.breached == false, "\(judged)")
        var rmse = RetrainPolicy()
        rmse.trigger = .threshold
        rmse.metric = .rmse
        rmse.threshold = .relative(1.25)
        #expect(rmse.judge(task: .regression, metrics: ["rmse": 13], labels: 500, holdout: ["rmse": 10], drift: nil)
            .limit == 12.5)
    }
}
