import CycloneModel
import CycloneMonitoring
import Foundation
import Testing

@Suite struct PairedLossTests {
    @Test(arguments: try RankTestCases.load().wilcoxon)
    func wilcoxonMatchesSciPy(_ c: RankTestCases.Wilcoxon) throws {
        let result = try #require(wilcoxonSignedRankGreater(zip(c.live, c.challenger).map { $0 - $1 }))
        #expect(result.statistic == c.statistic)
        #expect(abs(result.pValue - c.p_value) <= 1e-9 * max(c.p_value, 1e-300) + 1e-15,
                "p \(result.pValue) vs SciPy \(c.p_value)")
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
        // d = 0.5, 1, 0, 2: the zero dropped, ranks 1, 2, 3, all positive.
        let better = try #require(PairedLossComparison(live: [1, 2, 3, 4], challenger: [0.5, 1, 3, 2]))
        #expect(better.pairs == 4 && better.liveMeanLoss == 2.5 && better.challengerMeanLoss == 1.625)
        #expect(better.statistic == 6 && abs(better.pValue - 0.05440471502027284) < 1e-15, "\(better)")
        #expect(abs(better.improvement - 0.35) < 1e-15)
        let worse = try #require(PairedLossComparison(live: [1, 1, 1], challenger: [2, 2, 2]))
        #expect(worse.improvement == -1 && worse.statistic == 0 && worse.pValue > 0.5)
        #expect(PairedLossComparison(live: [], challenger: []) == nil)
        #expect(PairedLossComparison(live: [0], challenger: [1])!.improvement == -.infinity)
        let same = try #require(PairedLossComparison(live: [0, 0], challenger: [0, 0]))
        #expect(same.improvement == 0 && same.statistic == 0 && same.pValue == 1)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(better)) as? [String: Any]
        #expect(json.map { Set($0.keys) }
                    == ["pairs", "live_mean_loss", "challenger_mean_loss", "statistic", "p_value"])
        #expect(try JSONDecoder().decode(PairedLossComparison.self, from: JSONEncoder().encode(better)) == better)
    }
}
