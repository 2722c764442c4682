import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// `Tests/Fixtures/drift/data_quality.json`, made by `scripts/fixtures/data_quality.py` with SciPy.
struct DataQualityCases: Decodable {
    struct Quantile: Decodable, CustomTestStringConvertible {
        var p, x: Double
        var testDescription: String { "p = \(p)" }
    }
    struct Wilson: Decodable, CustomTestStringConvertible {
        var successes, trials: Int
        var confidence, lower: Double
        var testDescription: String { "\(successes) of \(trials) at \(confidence)" }
    }
    var quantile: [Quantile]
    var wilson: [Wilson]

    static func load() throws -> DataQualityCases { try Fixture.load(DataQualityCases.self, "drift/data_quality.json") }
}

@Suite struct DataQualityTests {
    @Test(arguments: try DataQualityCases.load().quantile)
    func normalQuantileMatchesSciPy(_ c: DataQualityCases.Quantile) {
        expectClose(standardNormalQuantile(c.p), c.x, relative: 1e-13, "norm.ppf(\(c.p))")
    }

    @Test(arguments: try DataQualityCases.load().wilson)
    func wilsonLowerBoundMatchesSciPy(_ c: DataQualityCases.Wilson) {
        let lower = wilsonLowerBound(successes: c.successes, trials: c.trials, confidence: c.confidence)
        #expect(abs(lower - c.lower) <= 1e-12, "\(lower) vs SciPy's \(c.lower)")
    }

    /// A reference of 500 rows: x numeric in 0…1 with 40 % missing, colour red or blue.
    static func report(x: [Double], colour: [String?], refused: Int = 0, options: DataQualityOptions = .init())
        -> DataQualityReport
    {
        var generator = SplitMix64(seed: 3)
        let referenceX = (0..<500).map { i in i % 5 < 2 ? Double.nan : generator.uniform() }
        let profile = ReferenceProfile(rows: 500, features: [
            "x": .numeric(referenceX),
            "colour": .categorical((0..<500).map { $0 % 2 == 0 ? "red" : "blue" }),
        ])
        let columns = ["x": numericWindow(x, against: profile.features["x"]!), "colour": categoricalWindow(colour)]
        let drift = profile.drift(against: columns, prediction: nil, order: ["x", "colour"])
        return drift.dataQuality(refused: refused, rows: x.count, options: options)
    }

    @Test func aFeatureGoneMissingBreachesAndOneMissingValueInAFewRowsDoesNot() {
        let gone = Self.report(x: [Double](repeating: .nan, count: 10), colour: [String?](repeating: nil, count: 10))
        #expect(gone.breaches.map { "\($0.feature) \($0.check.rawValue)" } == ["x missing", "colour missing"])
        let x = try! #require(gone.checks.first { $0.feature == "x" && $0.check == .missing })
        #expect(x.share == 1 && x.referenceShare == 0.4 && x.count == 10 && x.of == 10)
        #expect(gone.summary?.contains("x: 10 of 10 missing (100 %, reference 40 %)") == true, "\(gone.summary ?? "")")

        // One missing colour of three: 33 %, but its lower bound at 99 % is well under 10 %.
        let few = Self.report(x: [0.2, 0.5, 0.7], colour: ["red", nil, "blue"])
        #expect(!few.breached, "\(few.breaches)")
        // x missing at 45 % against the reference's 40 %: within the 10 points allowed.
        let usual = Self.report(x: (0..<1000).map { $0 % 20 < 9 ? .nan : Double($0 % 97) / 97 },
                                colour: (0..<1000).map { $0 % 2 == 0 ? "red" : "blue" })
        #expect(!usual.breached, "\(usual.breaches)")
    }

    @Test func outOfRangeUnseenAndRefusedBreachPastTheirShares() {
        let n = 400
        let x = (0..<n).map { i in i % 4 == 0 ? 5.0 : Double(i % 89) / 89 }  // 25 % above the reference maximum
        let colour: [String?] = (0..<n).map { $0 % 10 == 0 ? "green" : "red" }  // 10 % unseen
        let report = Self.report(x: x, colour: colour, refused: 60)
        #expect(report.breaches.map { "\($0.feature) \($0.check.rawValue)" }
            == ["x out_of_range", "colour unseen", "dataset refused"])
        let refused = try! #require(report.checks.last)
        #expect(refused.count == 60 && refused.of == 460)

        // Off for one feature, looser for all: the same window passes.
        var options = DataQualityOptions()
        options.outOfRange = try! #require(DataQualityOptions.Limit("0.05,x=off"))
        options.unseen = try! #require(DataQualityOptions.Limit("0.5"))
        options.refused = DataQualityOptions.Limit(nil)
        let relaxed = Self.report(x: x, colour: colour, refused: 60, options: options)
        #expect(!relaxed.breached, "\(relaxed.breaches)")
        #expect(!relaxed.checks.contains { $0.feature == "x" && $0.check == .outOfRange })
        #expect(!relaxed.checks.contains { $0.check == .refused })

        // A threshold of 0: a single unseen category breaches on a large enough window.
        options.unseen = DataQualityOptions.Limit(0)
        let strict = Self.report(x: x, colour: (0..<n).map { $0 == 7 ? "green" : "red" }, options: options)
        #expect(strict.breaches.map(\.check) == [.unseen])
    }

    @Test func limitsAreReadWithExceptionsAndBadTextIsRefused() throws {
        let limit = try #require(DataQualityOptions.Limit("0.1, income=0.5 ,zip=off"))
        #expect(limit.share(for: "age") == 0.1 && limit.share(for: "income") == 0.5 && limit.share(for: "zip") == nil)
        #expect(DataQualityOptions.Limit("off")?.share == nil)
        for bad in ["", "1.5", "-0.1", "x", "0.1,income", "0.1,=0.2", "0.1,a=0.2,a=0.3", "0.1,a=2", "nan"] {
            #expect(DataQualityOptions.Limit(bad) == nil, "'\(bad)' was read")
        }
    }

    /// Data quality alone asks for no retrain unless `RETRAIN_ON_DATA_QUALITY` says so; either way the judgement
    /// records the breach.
    @Test func theBreachIsAnAlertNotARetrainByDefault() {
        let broken = Self.report(x: [Double](repeating: .nan, count: 50), colour: [String?](repeating: "red", count: 50))
        var policy = RetrainPolicy()
        policy.trigger = .threshold
        policy.minimumLabels = 10
        let metrics = ["rmse": 1.0, "r2": 0.9]
        let calm = policy.judge(task: .regression, metrics: metrics, labels: 50, holdout: ["rmse": 1, "r2": 0.9],
                                drift: nil, dataQuality: broken)
        #expect(!calm.retrain && calm.dataQualityBreached == true)
        #expect(calm.reason.contains("RETRAIN_ON_DATA_QUALITY is off"), "\(calm.reason)")
        policy.retrainOnDataQuality = true
        let acting = policy.judge(task: .regression, metrics: metrics, labels: 50, holdout: ["rmse": 1, "r2": 0.9],
                                  drift: nil, dataQuality: broken)
        #expect(acting.retrain && acting.reason.hasPrefix("data quality (x: 50 of 50 missing"), "\(acting.reason)")
        let clean = policy.judge(task: .regression, metrics: metrics, labels: 50, holdout: ["rmse": 1, "r2": 0.9],
                                 drift: nil, dataQuality: Self.report(x: [0.5], colour: ["red"]))
        #expect(!clean.retrain && clean.dataQualityBreached == false)
    }
}
