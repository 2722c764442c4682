import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// The multivariate check against nannyml 0.13.1's `DataReconstructionDriftCalculator` on the fixture
/// `scripts/fixtures/nannyml/reconstruction_fixture.py` writes: 5,000 reference rows (x1…x4 numeric, x3 with
/// gaps, `colour` categorical with gaps), 5,250 analysis rows in chunks of 500 whose second half turns the
/// correlation of x1 and x2 around and brings an unseen colour.
@Suite struct ReconstructionDriftTests {
    static let features = ["x1", "x2", "x3", "x4", "colour"]

    struct Scenario {
        var reference: FeatureTable, analysis: FeatureTable
        nonisolated(unsafe) var expected: [String: Any]

        init() throws {
            func table(_ file: String) throws -> FeatureTable {
                try FeatureTable(csv: try CSV(contentsOf: Fixture.url("nannyml/reconstruction/\(file)")),
                                 columns: ReconstructionDriftTests.features)
            }
            reference = try table("reference.csv")
            analysis = try table("analysis.csv")
            expected = try JSONSerialization.jsonObject(with: Fixture.data("nannyml/reconstruction/expected.json"))
                as! [String: Any]
        }

        func chunks(_ period: String) -> [[String: Any]] {
            (expected[period] as! [[String: Any]]).map {
                ($0["metrics"] as! [String: Any])["reconstruction_error"] as! [String: Any]
            }
        }
    }

    static func mean(_ values: ArraySlice<Double>) -> Double { values.reduce(0, +) / Double(values.count) }

    @Test func thePCAEqualsScikitLearns() throws {
        let s = try Scenario()
        let fitted = try #require(DataReconstruction(reference: s.reference))
        let pca = s.expected["pca"] as! [String: Any]
        #expect(fitted.components == pca["components"] as! Int)
        let ratios = pca["explained_variance_ratio"] as! [Double]
        for (got, want) in zip(fitted.explainedVarianceRatio, ratios) { #expect(abs(got - want) < 1e-12) }
        #expect(fitted.features == Self.features)
        // The reference's errors measured while fitting are those measured again; category counts handed in
        // (a profile's) fit the same PCA.
        #expect(fitted.referenceErrors == fitted.errors(s.reference))
        var counts: [String: [String: Int]] = [:]
        for column in s.reference.columns {
            if case .categorical(let cells) = column.values {
                counts[column.name] = cells.reduce(into: [:]) { counts, cell in if let cell { counts[cell, default: 0] += 1 } }
            }
        }
        #expect(!counts.isEmpty)
        let given = try #require(DataReconstruction(reference: s.reference, categoryCounts: counts))
        #expect(given.referenceErrors == fitted.referenceErrors && given.errors(s.analysis) == fitted.errors(s.analysis))
    }

    /// Past one block (the fit sums and measures 32,768 rows at a time, side by side): three blocks, the last
    /// short, give what one plain pass over every row gives, written out here (mean imputation, a boolean's
    /// category shares with missing cells on the mode, standardising, centring, the covariance, its eigen
    /// decomposition, the fewest components past 65 % of the variance, each row's distance to its projection).
    @Test func aFitOverManyBlocksEqualsOnePlainPass() throws {
        var random = SplitMix64(seed: 31)
        let rows = 70_000
        let a = (0..<rows).map { _ in random.normal() * 3 + 10 }
        let b = a.enumerated().map { i, x in i % 97 == 0 ? Double.nan : 0.5 * x + random.normal() }
        let c = (0..<rows).map { _ in random.normal() }
        let flag = (0..<rows).map { i in i % 13 == 0 ? Double.nan : random.normal() > 0.3 ? 1.0 : 0.0 }
        let table = FeatureTable(columns: [.init(name: "a", values: .numeric(a)), .init(name: "b", values: .numeric(b)),
                                           .init(name: "c", values: .numeric(c)), .init(name: "flag", values: .boolean(flag))])
        let fitted = try #require(DataReconstruction(reference: table))

        // The plain pass.
        func imputed(_ v: [Double]) -> [Double] {
            let present = v.filter { !$0.isNaN }
            let mean = present.reduce(0, +) / Double(present.count)
            return v.map { $0.isNaN ? mean : $0 }
        }
        let ones = flag.filter { $0 == 1 }.count, zeros = flag.filter { $0 == 0 }.count
        let mode = ones > zeros ? 1.0 : 0.0, missing = rows - ones - zeros
        let share = [0.0: Double(zeros + (mode == 0 ? missing : 0)) / Double(rows),
                     1.0: Double(ones + (mode == 1 ? missing : 0)) / Double(rows)]
        var columns = [imputed(a), imputed(b), imputed(c), flag.map { share[$0.isNaN ? mode : $0]! }]
        let p = columns.count
        for j in 0..<p {
            let mean = columns[j].reduce(0, +) / Double(rows)
            let sd = (columns[j].map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rows)).squareRoot()
            columns[j] = columns[j].map { ($0 - mean) / sd }
        }
        let centre = columns.map { $0.reduce(0, +) / Double(rows) }
        var covariance = [Double](repeating: 0, count: p * p)
        for i in 0..<rows { for r in 0..<p { for q in 0..<p { covariance[r * p + q] += (columns[r][i] - centre[r]) * (columns[q][i] - centre[q]) } } }
        let (values, vectors) = symmetricEigen(covariance, n: p)
        let total = values.reduce(0) { $0 + max($1, 0) }
        let ratios = values.map { max($0, 0) / total }
        var kept = 0, cumulative = 0.0
        while kept < p { cumulative += ratios[kept]; kept += 1; if cumulative > 0.65 { break } }
        #expect(fitted.components == kept)
        for (got, want) in zip(fitted.explainedVarianceRatio, ratios) { #expect(abs(got - want) < 1e-12) }
        var largest = 0.0
        for i in 0..<rows {
            let z = (0..<p).map { columns[$0][i] - centre[$0] }
            let scores = (0..<kept).map { k in (0..<p).reduce(0.0) { $0 + vectors[$1 * p + k] * z[$1] } }
            let squared = (0..<p).reduce(0.0) { sum, j in
                let back = (0..<kept).reduce(0.0) { $0 + scores[$1] * vectors[j * p + $1] }
                return sum + (z[j] - back) * (z[j] - back)
            }
            largest = max(largest, abs(fitted.referenceErrors[i] - squared.squareRoot()))
        }
        #expect(fitted.referenceErrors.count == rows && largest < 1e-9, "largest difference \(largest)")
        #expect(fitted.errors(table) == fitted.referenceErrors)
    }

    /// Every chunk's mean error, sampling error and alert, and the reference's band, equal nannyml's.
    @Test func everyChunkEqualsNannyML() throws {
        let s = try Scenario()
        let fitted = try #require(DataReconstruction(reference: s.reference))
        let referenceErrors = fitted.errors(s.reference), analysisErrors = fitted.errors(s.analysis)
        let ranges = ConfidenceBasedEstimation.chunks(referenceErrors.count, size: 500)
        let referenceChunks = s.chunks("reference_chunks")
        #expect(ranges.count == referenceChunks.count)
        for (range, want) in zip(ranges, referenceChunks) {
            #expect(abs(Self.mean(referenceErrors[range]) - (want["value"] as! Double)) < 1e-9, "reference \(range)")
        }
        let thresholds = s.expected["thresholds"] as! [String: Any]
        let band = ReconstructionDrift.nannyMLBand(referenceErrors: referenceErrors, chunkSize: 500)
        #expect(abs(band.upper - (thresholds["upper"] as! Double)) < 1e-9)
        #expect(abs(try #require(band.lower) - (thresholds["lower"] as! Double)) < 1e-9)
        let analysisChunks = s.chunks("analysis_chunks")
        let analysisRanges = ConfidenceBasedEstimation.chunks(analysisErrors.count, size: 500)
        #expect(analysisRanges.count == analysisChunks.count && analysisRanges.count == 11)
        var alerts = 0
        for (range, want) in zip(analysisRanges, analysisChunks) {
            let drift = try #require(ReconstructionDrift(fitted, referenceErrors: referenceErrors,
                                                         windowErrors: Array(analysisErrors[range])))
            #expect(abs(drift.value - (want["value"] as! Double)) < 1e-9, "value at \(range)")
            #expect(abs(drift.samplingError - (want["sampling_error"] as! Double)) < 1e-9, "sampling error at \(range)")
            // The band here is NannyML's widened for the reference mean's own error and the t quantile of ten
            // chunks; on these chunks the verdicts are the same.
            #expect(drift.upper > band.upper && drift.upper < band.upper + 0.5 * (band.upper - (band.lower ?? 0)))
            #expect(drift.drifted == (want["alert"] as! Bool), "alert at \(range)")
            alerts += drift.drifted ? 1 : 0
        }
        // The correlation turned around in the second half: the check sees it, and only there.
        #expect(alerts == 6)
    }

    /// Each feature keeps its distribution while x1 and x2 turn their correlation around: the univariate tests
    /// see nothing, the multivariate check sees it (`cyclone drift` on the two files).
    @Test func aTurnedCorrelationIsSeenOnlyByTheMultivariateCheck() throws {
        let reference = try CSV(contentsOf: Fixture.url("nannyml/reconstruction/reference.csv"))
        let analysis = try CSV(contentsOf: Fixture.url("nannyml/reconstruction/analysis.csv"))
        let numeric = ["x1", "x2", "x3", "x4"]
        let turned = CSV(header: analysis.header, rows: Array(analysis.rows[2625...]))
        let drift = try FileDrift(reference: reference, current: turned, columns: numeric)
        #expect(drift.drift.drifted == 0)
        let multivariate = try #require(drift.multivariate)
        #expect(multivariate.drifted && multivariate.value > multivariate.upper)
        let same = CSV(header: analysis.header, rows: Array(analysis.rows[..<2625]))
        let stationary = try #require(try FileDrift(reference: reference, current: same, columns: numeric).multivariate)
        #expect(!stationary.drifted)
    }

    /// A reference one row longer than ten windows is cut into ten equal batches, not ten windows and a row:
    /// the band stays as wide as with ten windows exactly (a one-row chunk would spread it tenfold).
    @Test func aShortLastChunkDoesNotWidenTheBand() throws {
        let s = try Scenario()
        let fitted = try #require(DataReconstruction(reference: s.reference))
        let errors = fitted.errors(s.reference), window = Array(fitted.errors(s.analysis)[..<500])
        let even = try #require(ReconstructionDrift(fitted, referenceErrors: errors, windowErrors: window))
        let longer = try #require(ReconstructionDrift(fitted, referenceErrors: errors + [errors[0]], windowErrors: window))
        let width = { (drift: ReconstructionDrift) in drift.upper - drift.reference }
        #expect(abs(width(longer) / width(even) - 1) < 0.05, "\(width(even)) \(width(longer))")
    }

    /// A sentinel value (the largest double) in the window is an error a hundred orders of magnitude out, not
    /// an infinity: the check drifts and its figures stay numbers a report can carry.
    @Test func aHugeValueIsDriftNotInfinity() throws {
        let s = try Scenario()
        var columns = s.analysis.columns
        guard case .numeric(var x1) = columns[0].values else { Issue.record("x1 is not numeric"); return }
        x1[0] = .greatestFiniteMagnitude
        columns[0].values = .numeric(x1)
        let drift = try #require(ReconstructionDrift(reference: s.reference, window: FeatureTable(columns: columns)))
        #expect(drift.drifted && drift.value.isFinite && drift.samplingError.isFinite)
        _ = try JSONEncoder().encode(drift)
    }

    @Test func oneColumnOrAnEmptyReferenceIsNoCheck() throws {
        let one = FeatureTable(columns: [.init(name: "x", values: .numeric([1, 2, 3, 4]))])
        #expect(DataReconstruction(reference: one) == nil)
        let allMissing = FeatureTable(columns: [.init(name: "x", values: .numeric([1, 2, 3, 4])),
                                                .init(name: "y", values: .numeric([.nan, .nan, .nan, .nan]))])
        #expect(DataReconstruction(reference: allMissing) == nil)
        // Two independent columns: the PCA keeps both, and every row is reconstructed to rounding.
        var generator = SplitMix64(seed: 4)
        let independent = FeatureTable(columns: [.init(name: "a", values: .numeric((0..<300).map { _ in generator.normal() })),
                                                 .init(name: "b", values: .numeric((0..<300).map { _ in generator.normal() }))])
        #expect(DataReconstruction(reference: independent) == nil)
    }

    /// The band's t quantile inverts the t survival function (itself checked against SciPy in PairedLossTests).
    @Test func theTQuantileInvertsTheSurvival() {
        for df in [1.0, 4, 9, 30, 1_000] {
            for tail in [0.0013498980316301, 0.025, 0.3] {
                let t = studentTQuantile(tail, degreesOfFreedom: df)
                #expect(abs(studentTSurvival(t, degreesOfFreedom: df) - tail) < 1e-12 * max(1, 1 / tail) * tail + 1e-15)
            }
        }
        #expect(abs(studentTQuantile(0.0013498980316301, degreesOfFreedom: 1e7) - 3) < 1e-4)
    }

    /// The eigen-decomposition against a matrix with known eigenvalues.
    @Test func jacobiFindsKnownEigenvalues() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1)/√2 and (1, −1)/√2.
        let (values, vectors) = symmetricEigen([2, 1, 1, 2], n: 2)
        #expect(abs(values[0] - 3) < 1e-12 && abs(values[1] - 1) < 1e-12)
        #expect(abs(abs(vectors[0]) - 0.5.squareRoot()) < 1e-12 && abs(vectors[0] - vectors[2]) < 1e-12)
    }
}
