import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// `Tests/Fixtures/drift/fdr.json`, made by `scripts/fixtures/fdr.py` with SciPy.
struct FDRCases: Decodable {
    struct Case: Decodable, CustomTestStringConvertible {
        var p, adjusted: [Double]
        var testDescription: String { "\(p.count) p-values" }
    }
    var cases: [Case]
}

/// How often drift is reported on a stream that does not drift, and how soon on one that does, for the
/// correction and persistence settings: streams with a known answer, windows judged as the evaluator judges
/// them (a reference of 800 rows, so each column is tested for significance at p < 0.05).
@Suite struct DriftAlarmTests {
    @Test(arguments: try Fixture.load(FDRCases.self, "drift/fdr.json").cases)
    func benjaminiHochbergMatchesSciPy(_ c: FDRCases.Case) {
        for (got, want) in zip(benjaminiHochberg(c.p), c.adjusted) { #expect(abs(got - want) <= 1e-15 * max(1, want)) }
    }

    struct ContingencyCase: Decodable, CustomTestStringConvertible {
        var a, b: [Int]
        var statistic, p_value: Double
        var testDescription: String { "\(a) against \(b)" }
    }
    struct ContingencyCases: Decodable { var cases: [ContingencyCase] }

    /// The seasonal reference's test for categories, against `scripts/fixtures/contingency.py`.
    @Test(arguments: try Fixture.load(ContingencyCases.self, "drift/contingency.json").cases)
    func chiSquaredContingencyMatchesSciPy(_ c: ContingencyCase) throws {
        let test = try #require(chiSquaredContingency(c.a, c.b))
        expectClose(test.statistic, c.statistic, relative: 1e-12, "statistic")
        expectClose(test.pValue, c.p_value, relative: 1e-9, "p")
    }

    /// Against a window a season earlier, a categorical column of five categories (one rare) is compared as two
    /// samples: on stationary windows of 200 against 150 rows its false alarms stay near the 5 % level.
    @Test func seasonalCategoriesAreComparedAsTwoSamples() {
        let shares = [0.4, 0.3, 0.2, 0.09, 0.01], names = ["a", "b", "c", "d", "e"]
        func draw(_ n: Int, _ generator: inout SplitMix64) -> [String?] {
            (0..<n).map { _ in
                var u = generator.uniform(), k = 0
                while k < shares.count - 1, u >= shares[k] { u -= shares[k]; k += 1 }
                return names[k]
            }
        }
        var generator = SplitMix64(seed: 5)
        let profile = FeatureProfile.categorical(draw(2_000, &generator))
        var alarms = 0
        for _ in 0..<400 {
            let drift = profile.drift(against: categoricalWindow(draw(200, &generator)), feature: "k", referenceRows: 2_000,
                                      seasonal: categoricalWindow(draw(150, &generator)))
            #expect(drift.test == .chiSquared)
            if drift.drifted { alarms += 1 }
        }
        #expect(Double(alarms) / 400 < 0.08, "\(alarms) of 400 stationary windows drifted")
    }

    static let numeric = 8, categories = ["a", "b", "c", "d"]

    /// Eight numeric columns (standard normal, the first moved by `shift` standard deviations) and two
    /// categorical ones (four equally likely categories).
    static func columns(_ rows: Int, _ generator: inout SplitMix64, shift: Double = 0) -> [(String, [Double]?, [String?]?)] {
        var columns: [(String, [Double]?, [String?]?)] = []
        for k in 0..<numeric {
            columns.append(("x\(k)", (0..<rows).map { _ in generator.normal() + (k == 0 ? shift : 0) }, nil))
        }
        for k in 0..<2 {
            columns.append(("c\(k)", nil, (0..<rows).map { _ in categories[Int(generator.uniform() * 4)] }))
        }
        return columns
    }

    static func profile(seed: UInt64) -> ReferenceProfile {
        var generator = SplitMix64(seed: seed)
        let table = FeatureTable(columns: columns(800, &generator).map { name, numbers, texts in
            .init(name: name, values: numbers.map { .numeric($0) } ?? .categorical(texts!))
        })
        return ReferenceProfile(table: table)
    }

    static func window(_ profile: ReferenceProfile, _ generator: inout SplitMix64, shift: Double) -> [String: WindowColumn] {
        var windows: [String: WindowColumn] = [:]
        for (name, numbers, texts) in columns(200, &generator, shift: shift) {
            if let numbers {
                windows[name] = numericWindow(numbers, against: profile.features[name]!)
            } else {
                windows[name] = categoricalWindow(texts!)
            }
        }
        return windows
    }

    struct Rates: CustomStringConvertible {
        var windowsAlarmed = 0.0, columnAlarms = 0.0, datasetAlarms = 0.0, delay = 0.0, missed = 0
        var description: String {
            String(format: "windows with a false alarm %.1f %%, columns %.2f %%, dataset %.1f %%; detection after %.2f windows, %d missed",
                   100 * windowsAlarmed, 100 * columnAlarms, 100 * datasetAlarms, delay, missed)
        }
    }

    /// 16 stationary streams of 40 windows of 200 rows, and 16 streams whose x0 moves by half a standard
    /// deviation from the first window; the same streams for every setting.
    /// Every setting on the same streams: each window is tested once, uncorrected, and each setting then
    /// corrects and applies persistence to its own copy (the tests are the costly part).
    static func measure(_ settings: [DriftOptions]) -> [Rates] {
        let order = (0..<numeric).map { "x\($0)" } + ["c0", "c1"]
        var rates = [Rates](repeating: Rates(), count: settings.count)
        var windows = 0
        var delays = [Int](repeating: 0, count: settings.count)
        var uncorrected = DriftOptions()
        uncorrected.correction = .none
        for stream in 0..<16 {
            let profile = Self.profile(seed: UInt64(1_000 + stream))
            for shifted in [false, true] {
                var generator = SplitMix64(seed: UInt64(stream * 2 + (shifted ? 1 : 0)))
                var previous = [[String: Int]](repeating: [:], count: settings.count)
                var detected = [Int?](repeating: nil, count: settings.count)
                if !shifted { windows += 40 }
                for index in 0..<40 {
                    let tested = profile.drift(against: window(profile, &generator, shift: shifted ? 0.5 : 0),
                                               prediction: nil, order: order, options: uncorrected)
                    for (k, options) in settings.enumerated() {
                        var report = tested
                        report.correct(options: options)
                        report.applyPersistence(previous: previous[k], options: options)
                        for feature in report.features { previous[k][feature.feature] = feature.consecutive ?? 0 }
                        if shifted {
                            if detected[k] == nil, report.features[0].drifted { detected[k] = index }
                        } else {
                            let alarms = report.features.filter(\.drifted).count
                            if alarms > 0 { rates[k].windowsAlarmed += 1 }
                            rates[k].columnAlarms += Double(alarms) / Double(order.count)
                            if report.datasetDrift { rates[k].datasetAlarms += 1 }
                        }
                    }
                }
                if shifted {
                    for k in settings.indices {
                        if let found = detected[k] { rates[k].delay += Double(found); delays[k] += 1 } else { rates[k].missed += 1 }
                    }
                }
            }
        }
        for k in settings.indices {
            rates[k].windowsAlarmed /= Double(windows)
            rates[k].columnAlarms /= Double(windows)
            rates[k].datasetAlarms /= Double(windows)
            rates[k].delay /= Double(max(1, delays[k]))
        }
        return rates
    }

    /// Uncorrected, one window in three raises a false alarm on ten columns; Benjamini–Hochberg brings that near
    /// the 5 % level for the window, and two windows in a row to a fraction of a percent, while a half-standard-
    /// deviation shift is still caught in its first window (or, with persistence K, K − 1 windows later).
    @Test func falseAlarmsFallAndShiftsAreStillFound() {
        var settings: [(String, DriftOptions)] = []
        for (correction, persistence) in [(DriftOptions.Correction.none, 1), (.benjaminiHochberg, 1), (.benjaminiHochberg, 2),
                                          (.benjaminiHochberg, 3)] {
            var options = DriftOptions()
            options.correction = correction
            options.persistence = persistence
            settings.append(("\(correction.rawValue), persistence \(persistence)", options))
        }
        let rates = Self.measure(settings.map(\.1))
        for ((name, _), rate) in zip(settings, rates) { print("drift alarms (\(name)): \(rate)") }
        #expect(rates[0].windowsAlarmed > 0.25, "uncorrected: \(rates[0])")
        #expect(rates[1].windowsAlarmed < 0.09, "bh: \(rates[1])")
        #expect(rates[2].windowsAlarmed < 0.02 && rates[3].windowsAlarmed <= rates[2].windowsAlarmed, "persistence: \(rates[2]) \(rates[3])")
        #expect(rates.allSatisfy { $0.datasetAlarms == 0 })
        #expect(rates.allSatisfy { $0.missed == 0 })
        #expect(rates[0].delay < 0.5 && rates[1].delay < 0.5, "\(rates[0]) \(rates[1])")
        #expect(abs(rates[2].delay - rates[1].delay - 1) < 0.5 && abs(rates[3].delay - rates[1].delay - 2) < 0.5)
    }

    /// An hourly stream whose features follow the hour of day: `load` = 3·sin(2πh/24) + N(0, 1), and `shift`
    /// = day or night by the hour, mostly. A training profile over every hour (2,400 rows, so distances)
    /// against one hour's 200 rows drifts by construction; the same hour a day earlier does not, and a
    /// shift of one noise standard deviation in `load` is still found.
    @Test func aSeasonalReferenceCutsTheAlarmsOfADailyCycle() {
        func rows(_ n: Int, hour: Int, _ generator: inout SplitMix64, shift: Double = 0) -> (load: [Double], part: [String?]) {
            let level = 3 * sin(2 * Double.pi * Double(hour) / 24)
            let day = (7..<19).contains(hour)
            return ((0..<n).map { _ in level + generator.normal() + shift },
                    (0..<n).map { _ in generator.uniform() < (day ? 0.9 : 0.1) ? "day" : "night" })
        }
        var generator = SplitMix64(seed: 77)
        var load: [Double] = [], part: [String?] = []
        for hour in 0..<24 {
            let r = rows(100, hour: hour, &generator)
            load += r.load
            part += r.part
        }
        let profile = ReferenceProfile(table: FeatureTable(columns: [.init(name: "load", values: .numeric(load)),
                                                                    .init(name: "part", values: .categorical(part))]))
        func window(_ r: (load: [Double], part: [String?])) -> [String: WindowColumn] {
            ["load": numericWindow(r.load, against: profile.features["load"]!), "part": categoricalWindow(r.part)]
        }
        var againstProfile = 0, againstSeason = 0, windows = 0, found = 0, foundAgainstProfile = 0
        var yesterday = (0..<24).map { window(rows(200, hour: $0, &generator)) }
        for _ in 0..<10 {
            for hour in 0..<24 {
                let today = window(rows(200, hour: hour, &generator))
                let plain = profile.drift(against: today, prediction: nil, order: ["load", "part"])
                let seasonal = profile.drift(against: today, prediction: nil, order: ["load", "part"],
                                             seasonal: (yesterday[hour], nil))
                windows += 1
                if plain.features.contains(where: \.drifted) { againstProfile += 1 }
                if seasonal.features.contains(where: \.drifted) { againstSeason += 1 }
                let moved = window(rows(200, hour: hour, &generator, shift: 1))
                let shifted = profile.drift(against: moved, prediction: nil, order: ["load", "part"],
                                            seasonal: (yesterday[hour], nil))
                if shifted.features[0].drifted { found += 1 }
                if profile.drift(against: moved, prediction: nil, order: ["load", "part"]).features[0].drifted {
                    foundAgainstProfile += 1
                }
                yesterday[hour] = today
            }
        }
        print(String(format: "seasonal drift: windows with a false alarm %.1f %% against the profile, %.1f %% against the same hour a day earlier; a 1-sigma shift found in %.0f %% (%.0f %% against the profile)",
                     100 * Double(againstProfile) / Double(windows), 100 * Double(againstSeason) / Double(windows),
                     100 * Double(found) / Double(windows), 100 * Double(foundAgainstProfile) / Double(windows)))
        #expect(Double(againstProfile) / Double(windows) > 0.9)
        #expect(Double(againstSeason) / Double(windows) < 0.05)
        #expect(Double(found) / Double(windows) > 0.95)
    }

    /// The multivariate check as the evaluator runs it: a reference of one window (1,000 rows, so its band
    /// comes from ten batches), then 40 windows of 1,000 rows, on 16 streams each of six numeric features
    /// (four loading on one factor, two alone). With independent rows, and with rows whose factor is an AR(1)
    /// of coefficient 0.9 (as hourly data runs on), false alarms stay near the 3-sigma band's level; when x1
    /// turns its loading around (its own distribution unchanged) the first window sees it.
    @Test func multivariateFalseAlarmsAndDetection() {
        func rows(_ n: Int, _ generator: inout SplitMix64, factor: inout Double, persistence: Double, turned: Bool)
            -> FeatureTable
        {
            var x = [[Double]](repeating: [], count: 6)
            for _ in 0..<n {
                factor = persistence * factor + (1 - persistence * persistence).squareRoot() * generator.normal()
                for (j, loading) in [0.8, turned ? -0.7 : 0.7, 0.6, 0.5].enumerated() {
                    x[j].append(loading * factor + (1 - loading * loading).squareRoot() * generator.normal())
                }
                x[4].append(generator.normal())
                x[5].append(generator.normal() * 3 + 10)
            }
            return FeatureTable(columns: x.enumerated().map { .init(name: "x\($0)", values: .numeric($1)) })
        }
        for persistence in [0.0, 0.9] {
            var alarms = 0, windows = 0, delays: [Int] = [], missed = 0
            for stream in 0..<16 {
                for turned in [false, true] {
                    var generator = SplitMix64(seed: UInt64(500 + stream * 2 + (turned ? 1 : 0)))
                    var factor = 0.0
                    let reference = rows(1_000, &generator, factor: &factor, persistence: persistence, turned: false)
                    guard let fitted = DataReconstruction(reference: reference) else { Issue.record("no fit"); return }
                    let referenceErrors = fitted.errors(reference)
                    var detected: Int?
                    for index in 0..<40 {
                        let window = rows(1_000, &generator, factor: &factor, persistence: persistence, turned: turned)
                        guard let drift = ReconstructionDrift(fitted, referenceErrors: referenceErrors,
                                                              windowErrors: fitted.errors(window))
                        else { Issue.record("no verdict"); return }
                        if turned {
                            if drift.drifted {
                                detected = index
                                break
                            }
                        } else {
                            windows += 1
                            alarms += drift.drifted ? 1 : 0
                        }
                    }
                    if turned { if let detected { delays.append(detected) } else { missed += 1 } }
                }
            }
            let rate = Double(alarms) / Double(windows)
            let delay = Double(delays.reduce(0, +)) / Double(max(1, delays.count))
            print(String(format: "multivariate drift (AR(1) %.1f): windows with a false alarm %.1f %%; a turned correlation found after %.2f windows, %d of 16 missed",
                         persistence, 100 * rate, delay, missed))
            #expect(rate < 0.05, "AR(1) \(persistence): \(alarms) of \(windows)")
            #expect(missed == 0 && delays.allSatisfy { $0 == 0 }, "AR(1) \(persistence): delays \(delays), \(missed) missed")
        }
    }
}
