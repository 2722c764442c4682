import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// `Tests/Fixtures/drift/cases.json`, made by `scripts/fixtures/drift.py` with SciPy and NumPy.
struct DriftCases: Decodable {
    struct KS: Decodable, CustomTestStringConvertible {
        var name: String
        var reference, current: [Double]
        var statistic, p_value: Double
        var exact: Bool
        var testDescription: String { name }
    }
    struct ChiSquare: Decodable, CustomTestStringConvertible {
        var name: String
        var reference_counts, current_counts: [Int]
        var statistic, p_value: Double
        var testDescription: String { name }
    }
    struct ZTest: Decodable, CustomTestStringConvertible {
        var name: String
        var reference_successes, reference_count, current_successes, current_count: Int
        var statistic, p_value: Double
        var testDescription: String { name }
    }
    struct Wasserstein: Decodable, CustomTestStringConvertible {
        var name: String
        var reference, current: [Double]
        var distance: Double
        var testDescription: String { name }
    }
    struct JensenShannon: Decodable, CustomTestStringConvertible {
        var name: String
        var p, q: [Double]
        var distance: Double
        var testDescription: String { name }
    }
    struct PSI: Decodable, CustomTestStringConvertible {
        var name: String
        var reference, current, edges: [Double]
        var psi: Double
        var testDescription: String { name }
    }
    var ks: [KS]
    var chisquare: [ChiSquare]
    var z_test: [ZTest]
    var wasserstein: [Wasserstein]
    var jensenshannon: [JensenShannon]
    var psi: [PSI]

    static func load() throws -> DriftCases { try Fixture.load(DriftCases.self, "drift/cases.json") }
}

/// Statistics to 1e-12; p-values to 1e-9 relative (they come from special functions).
@Suite struct DriftStatisticsTests {
    @Test(arguments: try DriftCases.load().ks)
    func kolmogorovSmirnovStatisticMatchesSciPy(_ c: DriftCases.KS) {
        expectClose(kolmogorovSmirnovStatistic(reference: c.reference, current: c.current), c.statistic,
                    relative: 1e-12, "ks")
    }

    /// Exact p-values to 1e-9; beyond 10,000 values (SciPy's asymptotic branch) within the stated 2 %.
    @Test(arguments: try DriftCases.load().ks)
    func kolmogorovSmirnovPValueMatchesSciPy(_ c: DriftCases.KS) throws {
        let result = try #require(kolmogorovSmirnovTest(reference: c.reference, current: c.current))
        #expect(result.statistic == kolmogorovSmirnovStatistic(reference: c.reference, current: c.current))
        let tolerance = c.exact ? 1e-9 : 0.02
        #expect(abs(result.pValue - c.p_value) <= tolerance * max(c.p_value, 1e-300) + 1e-15,
                "p \(result.pValue) vs SciPy \(c.p_value)")
    }

    @Test(arguments: try DriftCases.load().chisquare)
    func chiSquaredMatchesSciPy(_ c: DriftCases.ChiSquare) throws {
        let result = try #require(chiSquaredTest(referenceCounts: c.reference_counts, currentCounts: c.current_counts))
        expectClose(result.statistic, c.statistic, relative: 1e-12, "statistic")
        #expect(abs(result.pValue - c.p_value) <= 1e-9 * max(c.p_value, 1e-300) + 1e-15, "p \(result.pValue) vs \(c.p_value)")
    }

    @Test(arguments: try DriftCases.load().z_test)
    func zTestMatchesSciPy(_ c: DriftCases.ZTest) throws {
        let result = try #require(twoProportionZTest(
            referenceSuccesses: c.reference_successes, referenceCount: c.reference_count,
            currentSuccesses: c.current_successes, currentCount: c.current_count))
        expectClose(result.statistic, c.statistic, relative: 1e-12, "statistic")
        #expect(abs(result.pValue - c.p_value) <= 1e-9 * max(c.p_value, 1e-300) + 1e-15, "p \(result.pValue) vs \(c.p_value)")
    }

    @Test(arguments: try DriftCases.load().wasserstein)
    func wassersteinMatchesSciPy(_ c: DriftCases.Wasserstein) {
        expectClose(wassersteinDistance(reference: c.reference, current: c.current), c.distance,
                    relative: 1e-12, "distance")
    }

    @Test(arguments: try DriftCases.load().jensenshannon)
    func jensenShannonMatchesSciPy(_ c: DriftCases.JensenShannon) {
        expectClose(jensenShannonDistance(c.p, c.q), c.distance, relative: 1e-12, "distance")
    }

    @Test(arguments: try DriftCases.load().psi)
    func populationStabilityIndexMatchesNumPy(_ c: DriftCases.PSI) throws {
        let result = try #require(populationStabilityIndex(reference: c.reference, current: c.current))
        #expect(result.edges == c.edges)
        expectClose(result.psi, c.psi, relative: 1e-12, "psi")
    }

    /// A sample against itself shows no drift by any measure.
    @Test func aSampleAgainstItselfHasNoDrift() {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<50 {
            let sample = (0..<(5 + Int(generator.next() % 300))).map { _ in Double(generator.next() % 1000) / 10 }
            #expect(kolmogorovSmirnovStatistic(reference: sample, current: sample) == 0)
            #expect(wassersteinDistance(reference: sample, current: sample) == 0)
            #expect(populationStabilityIndex(reference: sample, current: sample)!.psi == 0)
            #expect(jensenShannonDistance([1, 2, 3], [1, 2, 3]) == 0)
        }
    }
}
