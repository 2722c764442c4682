import CycloneMonitoring
import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

/// `Tests/Fixtures/drift/rank_tests.json`, made by `scripts/fixtures/rank_tests.py` with SciPy.
struct RankTestCases: Decodable {
    struct MannWhitney: Decodable, CustomTestStringConvertible {
        var name: String
        var current, reference: [Double]
        var statistic, p_value: Double
        var testDescription: String { name }
    }
    var mannwhitney: [MannWhitney]
    struct PairedT: Decodable, CustomTestStringConvertible {
        var name: String
        var live, challenger: [Double]
        var statistic, p_value, batch_statistic, batch_p_value: Double
        var testDescription: String { name }
    }
    var paired_t: [PairedT]

    static func load() throws -> RankTestCases { try Fixture.load(RankTestCases.self, "drift/rank_tests.json") }
}

@Suite struct LossShiftTests {
    @Test(arguments: try RankTestCases.load().mannwhitney)
    func mannWhitneyMatchesSciPy(_ c: RankTestCases.MannWhitney) throws {
        let result = try #require(mannWhitneyUGreater(current: c.current, reference: c.reference))
        #expect(result.statistic == c.statistic)
        #expect(abs(result.pValue - c.p_value) <= 1e-9 * max(c.p_value, 1e-300) + 1e-15,
                "p \(result.pValue) vs SciPy \(c.p_value)")
    }

    /// Serially correlated losses (|AR(1)| with φ = 0.8, as hourly errors are) make the plain rank test fire
    /// in about 11 % of stationary windows at p < 0.01; with the correction for the ranks' autocorrelation,
    /// in about 2 %, and a loss grown by half is still caught about half the time (2,000 trials each; figures
    /// from the run that chose the bands, seed 2026: 0.55 %, 1.3 %, 2.2 %, 3.1 % false alarms at φ = 0,
    /// 0.5, 0.8, 0.95 against 0.75 %, 2.8 %, 11 %, 26 % uncorrected).
    @Test func serialCorrelationDoesNotMakeFalseAlarms() {
        var random = SplitMix64(seed: 2026)
        func ar(_ n: Int, _ phi: Double, scale: Double = 1) -> [Double] {
            var e = random.normal()
            return (0..<n).map { _ in
                e = phi * e + (1 - phi * phi).squareRoot() * random.normal()
                return abs(e) * scale
            }
        }
        let trials = 2_000
        var corrected = 0, plain = 0, caught = 0
        for _ in 0..<trials {
            let reference = ar(168, 0.8), current = ar(168, 0.8)
            let shift = LossShift(current: current, reference: reference)!
            if shift.pValue < 0.01 { corrected += 1 }
            if mannWhitneyUGreater(current: current, reference: reference)!.pValue < 0.01 { plain += 1 }
            if LossShift(current: ar(168, 0.8, scale: 1.5), reference: reference)!.pValue < 0.01 { caught += 1 }
        }
        let rate = { (count: Int) in Double(count) / Double(trials) }
        #expect(rate(plain) > 0.07, "the uncorrected test's false alarms: \(rate(plain))")
        #expect(rate(corrected) < 0.035, "false alarms: \(rate(corrected))")
        #expect(rate(caught) > 0.35, "caught: \(rate(caught))")
    }

    /// The false-alarm rate is what the level says: on windows drawn from one distribution the one-sided
    /// test fires in about 1 % of them at p < 0.01, and a loss that grew by half is caught nearly always.
    @Test func falseAlarmsMatchTheLevelAndARealShiftIsCaught() {
        var random = SplitMix64(seed: 77)
        func losses(_ n: Int, scale: Double) -> [Double] { (0..<n).map { _ in abs(random.normal()) * scale } }
        let trials = 4_000
        var falseAlarms = 0, caught = 0
        for _ in 0..<trials {
            let reference = losses(168, scale: 1)
            if LossShift(current: losses(168, scale: 1), reference: reference)!.pValue < 0.01 { falseAlarms += 1 }
            if LossShift(current: losses(168, scale: 1.5), reference: reference)!.pValue < 0.01 { caught += 1 }
        }
        let rate = Double(falseAlarms) / Double(trials)
        // Binomial(4000, 0.01): mean 40, standard deviation 6.3.
        #expect(rate > 0.004 && rate < 0.016, "false-alarm rate \(rate)")
        #expect(Double(caught) / Double(trials) > 0.9, "power \(Double(caught) / Double(trials))")
    }

    @Test func theRatioAndTheEdges() {
        let shift = LossShift(current: [2, 2, 2], reference: [1, 1, 1])!
        #expect(shift.ratio == 2 && shift.referenceRows == 3 && shift.currentRows == 3)
        #expect(LossShift(current: [], reference: [1]) == nil)
        #expect(LossShift(current: [1], reference: [0])!.ratio == .infinity)
        #expect(LossShift(current: [0], reference: [0])!.ratio == 1)
    }
}

/// The loss trigger's decision from a loss test: the level, the least growth, the labels, the floor.
@Suite struct LossTriggerPolicyTests {
    func shift(current: [Double], reference: [Double]) -> LossShift { LossShift(current: current, reference: reference)! }

    @Test func aSignificantGrowthAsksForARetrainASmallOrChanceOneDoesNot() {
        var policy = RetrainPolicy()
        policy.minimumLabels = 50
        let reference = (0..<100).map { Double($0 % 10) }
        // Every current loss above the reference's: p tiny, mean ×2.
        let grown = policy.judge(task: .regression, metrics: ["r2": 0.5], labels: 100, holdout: nil, drift: nil,
                                 lossShift: shift(current: reference.map { $0 * 2 + 1 }, reference: reference),
                                 referenceLabels: 100, referenceSize: 100)
        #expect(grown.retrain && grown.breached == true && grown.trigger == "loss" && grown.limit == nil, "\(grown)")
        #expect(grown.reason.hasPrefix("mean loss ×"), "\(grown.reason)")
        // Significant, but only 3 % more loss: below the least growth of ×1.1.
        policy.minimumLossRatio = 1.1
        let tight = (0..<100).map { 10 + Double($0 % 10) / 10 }
        let small = policy.judge(task: .regression, metrics: [:], labels: 100, holdout: nil, drift: nil,
                                 lossShift: shift(current: tight.map { $0 + 0.3 }, reference: tight),
                                 referenceLabels: 100, referenceSize: 100)
        #expect(!small.retrain && small.reason.contains("below the least growth"), "\(small.reason)")
        // The same losses: not significant.
        let same = policy.judge(task: .regression, metrics: [:], labels: 100, holdout: nil, drift: nil,
                                lossShift: shift(current: reference, reference: reference),
                                referenceLabels: 100, referenceSize: 100)
        #expect(!same.retrain && same.breached == false && same.reason.contains("not significant at 0.01"))
        // Too few labels since the reference: no decision.
        let few = policy.judge(task: .regression, metrics: [:], labels: 30, holdout: nil, drift: nil,
                               lossShift: shift(current: Array(reference.prefix(30)).map { $0 * 3 + 1 }, reference: reference),
                               referenceLabels: 100, referenceSize: 100)
        #expect(!few.retrain && few.reason.contains("fewer than the 50 needed"), "\(few.reason)")
    }

    @Test func whileTheReferenceFillsOnlyAnExplicitFloorDecides() {
        var policy = RetrainPolicy()
        let filling = policy.judge(task: .regression, metrics: ["r2": -2], labels: 500, holdout: nil, drift: nil,
                                   referenceLabels: 40, referenceSize: 1_000)
        #expect(!filling.retrain && filling.reason == "the reference window is filling: 40 of 1000 labels")
        policy.threshold = .absolute(0.4)
        let floor = policy.judge(task: .regression, metrics: ["r2": -2], labels: 500, holdout: nil, drift: nil,
                                 referenceLabels: 40, referenceSize: 1_000)
        #expect(floor.retrain && floor.limit == 0.4 && floor.reason.hasPrefix("r2 -2.0 < 0.4 on 500 labels"), "\(floor.reason)")
    }
}
