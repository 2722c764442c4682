import CycloneModel
import CycloneMonitoring
import Foundation
import Testing

@Suite struct PairedLossTests {
    @Test(arguments: try LossTestCases.load().paired_t)
    func pairedTMatchesSciPy(_ c: LossTestCases.PairedT) throws {
        let result = try #require(pairedTTestGreater(zip(c.live, c.challenger).map { $0 - $1 }))
        #expect(abs(result.statistic - c.statistic) <= 1e-12 * max(abs(c.statistic), 1), "t \(result.statistic) vs SciPy \(c.statistic)")
        #expect(abs(result.pValue - c.p_value) <= 1e-9 * max(c.p_value, 1e-300) + 1e-15,
                "p \(result.pValue) vs SciPy \(c.p_value)")
        // What the shadow verdict tests: the t-test on the means of 20 consecutive batches (40 pairs or more).
        let comparison = try #require(PairedLossComparison(live: c.live, challenger: c.challenger))
        #expect(comparison.batches == (c.live.count >= 40 ? 20 : c.live.count))
        #expect(abs(comparison.statistic - c.batch_statistic) <= 1e-12 * max(abs(c.batch_statistic), 1),
                "batch t \(comparison.statistic) vs SciPy \(c.batch_statistic)")
        #expect(abs(comparison.pValue - c.batch_p_value) <= 1e-9 * max(c.batch_p_value, 1e-300) + 1e-15,
                "batch p \(comparison.pValue) vs SciPy \(c.batch_p_value)")
    }

    /// Student's t survival against SciPy's `stats.t.sf` at a few points (fractional degrees of freedom too).
    @Test(arguments: [(2.0, 5.0, 0.050969739414929174), (-1.0, 10.0, 0.8295534338489701), (0.5, 1.0, 0.35241638234956674),
                      (3.0, 40.5, 0.0023015458800154085), (10.0, 3.0, 0.0010641995292070751)])
    func studentTMatchesSciPy(_ t: Double, _ nu: Double, _ expected: Double) {
        #expect(abs(studentTSurvival(t, degreesOfFreedom: nu) - expected) <= 1e-12 * expected + 1e-15,
                "\(studentTSurvival(t, degreesOfFreedom: nu)) vs \(expected)")
    }

    /// The false-alarm rate is what the level says: on the paired losses of two equally good models the
    /// one-sided test fires in about 5 % of comparisons at p < 0.05, and a challenger with a fifth less loss is
    /// caught nearly always.
    @Test func falseAlarmsMatchTheLevelAndABetterChallengerIsCaught() {
        var random = SplitMix64(seed: 2026)
        // Absolute errors on the same rows: each row's own noise, shared by both models, plus each model's error
        // with standard deviation `live` or `challenger`.
        func compare(_ n: Int, live: Double, challenger: Double) -> PairedLossComparison {
            var liveLosses: [Double] = [], challengerLosses: [Double] = []
            for _ in 0..<n {
                let noise = random.normal()
                liveLosses.append(abs(noise + live * random.normal()))
                challengerLosses.append(abs(noise + challenger * random.normal()))
            }
            return PairedLossComparison(live: liveLosses, challenger: challengerLosses)!
        }
        let trials = 2_000
        var falseAlarms = 0, caught = 0
        for _ in 0..<trials {
            if compare(300, live: 1, challenger: 1).pValue < 0.05 { falseAlarms += 1 }
            // E|noise + error| ∝ √(1 + σ²), and √(1.28 / 2) = 0.8: a fifth less loss.
            if compare(300, live: 1, challenger: 0.28.squareRoot()).pValue < 0.05 { caught += 1 }
        }
        let rate = Double(falseAlarms) / Double(trials), power = Double(caught) / Double(trials)
        // Binomial(2000, 0.05): mean 100, standard deviation 9.7.
        #expect(rate > 0.035 && rate < 0.065, "false-alarm rate \(rate)")
        #expect(power > 0.97, "power \(power)")
    }

    @Test func theMeansTheImprovementAndTheEdges() throws {
        // d = 0.5, 1, 0, 2: mean 0.875, t = 2.0494 on 3 degrees of freedom, as SciPy's ttest_1samp (fewer
        // than 40 pairs: no batches).
        let better = try #require(PairedLossComparison(live: [1, 2, 3, 4], challenger: [0.5, 1, 3, 2]))
        #expect(better.pairs == 4 && better.liveMeanLoss == 2.5 && better.challengerMeanLoss == 1.625)
        let plain = try #require(pairedTTestGreater([0.5, 1, 0, 2]))
        #expect(better.batches == 4 && better.statistic == plain.statistic && better.pValue == plain.pValue)
        #expect(abs(plain.statistic - 2.04939015319192) < 1e-12 && abs(plain.pValue - 0.06642092027988782) < 1e-12, "\(plain)")
        #expect(abs(better.improvement - 0.35) < 1e-15)
        // Constant differences: t is as large as a Double goes (SciPy's ∞), still encodable.
        let worse = try #require(PairedLossComparison(live: [1, 1, 1], challenger: [2, 2, 2]))
        #expect(worse.improvement == -1 && worse.statistic == -.greatestFiniteMagnitude && worse.pValue == 1)
        #expect(PairedLossComparison(live: [], challenger: []) == nil)
        #expect(PairedLossComparison(live: [1], challenger: [1]) == nil)
        #expect(PairedLossComparison(live: [0, 0], challenger: [1, 1])!.improvement == -.infinity)
        let same = try #require(PairedLossComparison(live: [0, 0], challenger: [0, 0]))
        #expect(same.improvement == 0 && same.statistic == 0 && same.pValue == 1)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(better)) as? [String: Any]
        #expect(json.map { Set($0.keys) }
                    == ["pairs", "live_mean_loss", "challenger_mean_loss", "statistic", "p_value", "batches"])
        #expect(try JSONDecoder().decode(PairedLossComparison.self, from: JSONEncoder().encode(better)) == better)
    }
}
