import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import CycloneTraining
import Foundation
import Testing

@Suite struct ReferenceProfileTests {
    func train(_ name: String) throws -> (ModelArtifact, LinearCase) {
        let c = try LinearCase.all().first { $0.name == name }!
        return (try c.trainedModel(), c)
    }

    /// Training writes the profile of its own rows: every feature, missing values counted, the model's
    /// predictions profiled, and it survives the trip through the model file.
    @Test func trainingWritesTheProfileOfItsData() throws {
        let (model, c) = try train("ridge_mixed")
        let profile = try #require(model.profile)
        #expect(profile.rows == 400)
        #expect(Set(profile.features.keys) == Set(c.featureNames))
        let temp = try #require(profile.features["temp"])
        #expect(temp.count + temp.missing == 400)
        #expect(temp.missing > 0)
        #expect(temp.edges?.count == ReferenceProfile.binCount + 1)
        #expect(temp.counts?.reduce(0, +) == temp.count)
        #expect(temp.values?.count == temp.count)  // 400 rows: small enough to keep the values
        expectClose(temp.mean!, c.preprocessing.numeric["temp"]!.mean, relative: 1e-12, "mean")
        let season = try #require(profile.features["season"])
        #expect(season.categories?.keys.sorted() == c.preprocessing.categorical["season"]!.categories)
        #expect(profile.features["holiday"]?.categories?.keys.sorted() == ["false", "true"])
        let prediction = try #require(profile.prediction)
        #expect(prediction.kind == .numeric && prediction.count == 400)
        #expect(try ModelArtifact.decode(model.encoded()) == model)
    }

    @Test func classifiersProfileTheirPredictedDistribution() throws {
        let (binary, _) = try train("logistic_binary")
        let probabilities = try #require(binary.profile?.prediction)
        #expect(probabilities.kind == .numeric)
        #expect(probabilities.min! >= 0 && probabilities.max! <= 1)
        let (multiclass, c) = try train("logistic_multiclass")
        let classes = try #require(multiclass.profile?.prediction?.categories)
        #expect(Set(classes.keys).isSubset(of: Set(c.classes!)))
        #expect(classes.values.reduce(0, +) == 400)
    }

    /// 100 quantile bins keep a KS statistic computed from the bins within 0.01 of the exact one.
    @Test func binnedKolmogorovSmirnovIsWithinOnePercent() {
        var generator = SplitMix64(seed: 11)
        func normal() -> Double {
            let u = Double(generator.next() % 1_000_000 + 1) / 1_000_001, v = Double(generator.next() % 1_000_000) / 1_000_000
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        for round in 0..<20 {
            let reference = (0..<5000).map { _ in normal() }
            let shift = Double(round) / 40
            let current = (0..<(500 + round * 100)).map { _ in normal() * (1 + shift / 2) + shift }
            let profile = FeatureProfile.numeric(reference)
            #expect(profile.values == nil)  // 5000 rows: too many to keep
            let edges = profile.edges!, counts = profile.counts!
            // Both CDFs at each inner edge, from the bins.
            let inner = Array(edges[1..<ReferenceProfile.binCount])
            var currentCounts = [Int](repeating: 0, count: ReferenceProfile.binCount)
            for x in current { currentCounts[binIndex(inner, x)] += 1 }
            var binned = 0.0, r = 0, k = 0
            for b in 0..<(ReferenceProfile.binCount - 1) {
                r += counts[b]; k += currentCounts[b]
                binned = max(binned, abs(Double(r) / 5000 - Double(k) / Double(current.count)))
            }
            let exact = kolmogorovSmirnovStatistic(reference: reference, current: current)
            #expect(abs(binned - exact) <= 0.01 + 1e-12, "round \(round): binned \(binned), exact \(exact)")
        }
    }
}
