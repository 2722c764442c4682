import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// `cyclone drift`'s comparison of two files: Evidently's choice of test, exact statistics from the raw
/// values, the data-quality checks, and clear refusals.
@Suite struct FileDriftTests {
    static func csv(_ rows: Int, seed: UInt64, shift: Double = 0, colours: [String] = ["red", "blue", "green"],
                    blank: (Int) -> Bool = { _ in false }, oddFlag: (Int) -> Bool = { _ in false }) -> CSV
    {
        var generator = SplitMix64(seed: seed)
        return CSV(header: ["x", "colour", "flag", "id"], rows: (0..<rows).map { i in
            let x = generator.normal() + shift
            let colour = colours[Int(generator.uniform() * Double(colours.count))]
            let flag = generator.uniform() < 0.3 ? "true" : "false"
            return [blank(i) ? "" : "\(x)", colour, oddFlag(i) ? "maybe" : flag, "\(i)"]
        })
    }

    @Test func aSmallReferenceIsTestedForSignificanceWithExactStatistics() throws {
        // The shifted file is the calm one with x moved: its other columns are the calm file's.
        let reference = Self.csv(800, seed: 1), calm = Self.csv(600, seed: 2), shifted = Self.csv(600, seed: 2, shift: 0.4)
        let same = try FileDrift(reference: reference, current: calm, columns: ["x", "colour", "flag"])
        #expect(same.drift.features.map(\.test) == [.kolmogorovSmirnov, .chiSquared, .zTest])
        #expect(!same.drift.datasetDrift && same.drift.drifted == 0, "\(same.drift.features)")
        #expect(!same.dataQuality.breached)

        let moved = try FileDrift(reference: reference, current: shifted, columns: ["x", "colour", "flag"])
        let x = try #require(moved.drift.features.first)
        let exact = try #require(kolmogorovSmirnovTest(reference: reference.column("x")!.map { Double($0)! },
                                                       current: shifted.column("x")!.map { Double($0)! }))
        #expect(x.statistic == exact.statistic && x.pValue == exact.pValue && x.drifted)
        #expect(moved.drift.features.map(\.drifted) == [true, false, false] && !moved.drift.datasetDrift)
        #expect(moved.drift.drifted == 1 && moved.drift.driftedShare == 1.0 / 3)
    }

    @Test func aLargeReferenceIsJudgedByDistanceAndBrokenCellsAreDataQuality() throws {
        let reference = Self.csv(5_000, seed: 4)
        let current = Self.csv(2_000, seed: 5, shift: 0.5, colours: ["red", "blue", "purple"],
                               blank: { $0 % 4 == 0 }, oddFlag: { $0 % 20 == 0 })
        let comparison = try FileDrift(reference: reference, current: current, columns: ["x", "colour", "flag"])
        let features = comparison.drift.features
        #expect(features.map(\.test) == [.wasserstein, .jensenShannon, .jensenShannon])
        let raw = { (file: CSV) in file.column("x")!.compactMap { Double($0) } }
        let std = try #require(FeatureProfile.numeric(raw(reference)).std)
        #expect(features[0].statistic == wassersteinDistance(reference: raw(reference), current: raw(current)) / std)
        #expect(features[0].drifted && features[1].drifted && comparison.drift.datasetDrift)
        #expect(features[0].missing == 500 && features[2].invalid == 100 && features[1].unseen ?? 0 > 500)
        #expect(comparison.dataQuality.breaches.map { "\($0.feature) \($0.check.rawValue)" }
            == ["x missing", "colour unseen", "flag invalid"])
        #expect(!comparison.dataQuality.checks.contains { $0.check == .refused }, "a file has no refused requests")

        let json = try JSONEncoder().encode(comparison)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["dataset_drift"] as? Bool == true && object["current_rows"] as? Int == 2_000)
        let first = try #require((object["columns"] as? [[String: Any]])?.first)
        for key in ["feature", "test", "statistic", "threshold", "drifted", "psi"] { #expect(first[key] != nil, "\(key)") }
        #expect(try JSONDecoder().decode(FileDrift.self, from: json) == comparison)
    }

    /// Cases where Evidently's choices and pandas' reading decide the verdict: `NA` cells in a numeric column
    /// are missing values (a text column keeps them as a category), a constant reference that moves drifts
    /// (distance over 0.001), a category only the current file has makes chi-squared of a two-valued column,
    /// and the test is chosen by the column's values, not the file's rows.
    @Test func evidentlysChoicesAndPandasMissingValues() throws {
        var generator = SplitMix64(seed: 9)
        let rows = 1_050
        let reference = CSV(header: ["x", "code", "level", "pair"], rows: (0..<rows).map { i in
            [i % 10 == 0 ? "NA" : "\(generator.normal())", i % 7 == 0 ? "NA" : "EU", "5", i % 2 == 0 ? "a" : "b"]
        })
        let current = CSV(header: ["x", "code", "level", "pair"], rows: (0..<500).map { i in
            [i % 9 == 0 ? "nan" : "\(generator.normal())", "EU", "5.05", i % 30 == 0 ? "c" : i % 2 == 0 ? "a" : "b"]
        })
        let comparison = try FileDrift(reference: reference, current: current)
        let x = comparison.drift.features[0], code = comparison.drift.features[1]
        let level = comparison.drift.features[2], pair = comparison.drift.features[3]
        #expect(x.kind == .numeric && x.missing == 56 && abs(x.referenceMissingRate - 0.1) < 0.001)
        // 945 values of x: Kolmogorov–Smirnov, though the file has 1,050 rows.
        #expect(x.test == .kolmogorovSmirnov && !x.drifted, "\(x)")
        #expect(code.kind == .categorical && code.missing == 0)
        #expect(level.test == .wasserstein && level.drifted && abs((level.statistic ?? 0) - 50) < 1e-9, "\(level)")
        #expect(pair.test == .jensenShannon)
        let small = try FileDrift(reference: CSV(header: reference.header, rows: Array(reference.rows.prefix(500))),
                                  current: current, columns: ["pair"])
        #expect(small.drift.features[0].test == .chiSquared && small.drift.features[0].drifted, "\(small.drift.features[0])")
    }

    @Test func columnsTheCurrentFileLacksOrTheReferenceCannotTypeAreRefused() throws {
        let reference = Self.csv(50, seed: 6)
        let lacking = CSV(header: ["x", "flag"], rows: [["1", "true"]])
        let error = #expect(throws: FileDrift.Failure.self) {
            try FileDrift(reference: reference, current: lacking, columns: ["x", "colour"])
        }
        #expect(error?.description == "column 'colour' is in the reference but not in the current file (its columns: x, flag)")
        #expect(throws: FileDrift.Failure.self) {
            try FileDrift(reference: reference, current: reference, columns: ["colour"], kinds: ["colour": .numeric])
        }
    }

    /// A directory given for a file is one line a user can act on, not Foundation's "error 256".
    @Test func aDirectoryIsRefusedAsADirectory() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("drift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = #expect(throws: CSV.ParseError.self) { try CSV(contentsOf: folder) }
        #expect(error == CSV.ParseError(line: 0, message: "cannot read the file: it is a directory"))
    }

    /// Values near 1e154 square beyond a double: the multivariate check still runs, and as each column is
    /// scaled by a power of two (2^512 here), its figures are those of the same data unscaled, to the bit. A
    /// column of one value far beyond (1e200) is centred on it exactly and changes no figure.
    @Test func valuesNear1e154KeepTheMultivariateCheck() throws {
        func file(seed: UInt64, times factor: Double, constant: String? = nil) -> CSV {
            var generator = SplitMix64(seed: seed)
            return CSV(header: ["x", "y", "z"] + (constant == nil ? [] : ["level"]), rows: (0..<300).map { _ in
                let x = generator.normal()
                return [x, x + 0.3 * generator.normal(), generator.normal()].map { "\($0 * factor)" } + (constant.map { [$0] } ?? [])
            })
        }
        let huge = 0x1p512  // 1.3e154
        let plain = try #require(try FileDrift(reference: file(seed: 16, times: 1), current: file(seed: 17, times: 1)).multivariate)
        let scaled = try FileDrift(reference: file(seed: 16, times: huge), current: file(seed: 17, times: huge))
        #expect(scaled.multivariate == plain, "\(scaled.multivariate?.text ?? "no check")")
        #expect(scaled.drift.drifted == 0)
        let level = try #require(try FileDrift(reference: file(seed: 16, times: 1, constant: "1.2345e200"),
                                               current: file(seed: 17, times: 1, constant: "1.2345e200")).multivariate)
        #expect(level.features.count == 4 && abs(level.value - plain.value) < 1e-12 && abs(level.upper - plain.upper) < 1e-12,
                "\(level.text)")
    }

    /// An infinity (`inf`, `-Infinity`, `1e999`) in a numeric column is a missing value, as `NaN` is: the column
    /// stays numeric and is tested on its numbers, the infinities counted as missing on either side.
    @Test func infinitiesAreMissingValuesAndKeepAColumnNumeric() throws {
        var generator = SplitMix64(seed: 18)
        let spellings = ["inf", "-inf", "Infinity", "-Infinity", "1e999"]
        let reference = CSV(header: ["x"], rows: (0..<400).map { i in
            [i % 20 == 0 ? spellings[i / 20 % spellings.count] : "\(generator.normal())"]
        })
        let current = CSV(header: ["x"], rows: (0..<200).map { i in [i % 10 == 0 ? "INF" : "\(generator.normal())"] })
        let x = try #require(try FileDrift(reference: reference, current: current).drift.features.first)
        #expect(x.kind == .numeric && x.test == .kolmogorovSmirnov && x.isTested && !x.drifted, "\(x)")
        #expect(x.referenceMissingRate == 0.05 && x.missing == 20 && x.invalid == 0 && x.unseen == nil, "\(x)")
        for cell in ["+inf", " -Infinity", "-1e400", "nan"] { #expect(FeatureTable.read(cell, as: .numeric) == .missing, "\(cell)") }
        #expect(FeatureTable.read("inf", as: .boolean) == .missing)
        #expect(FeatureTable.read("infinite", as: .numeric) == .invalid)
        #expect(FeatureTable.read("inf", as: .categorical) == .category("inf"))
    }

    /// A current column without a valid value is not tested: no statistic, not counted among the tested
    /// columns, and `drifted` `null` in the JSON rather than a claim of no drift.
    @Test func aColumnWithoutValuesInTheCurrentFileIsNotTested() throws {
        let reference = Self.csv(300, seed: 19), current = Self.csv(100, seed: 20, blank: { _ in true })
        let comparison = try FileDrift(reference: reference, current: current, columns: ["x", "colour"])
        let x = comparison.drift.features[0]
        #expect(!x.isTested && x.note == "no values in the window" && x.missing == 100, "\(x)")
        #expect(comparison.drift.tested == 1 && comparison.drift.features[1].isTested)

        let json = try JSONEncoder().encode(comparison)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let columns = try #require(object["columns"] as? [[String: Any]])
        #expect(columns[0]["drifted"] is NSNull, "\(columns[0])")
        #expect(columns[1]["drifted"] as? Bool == false && object["tested"] as? Int == 1)
        #expect(try JSONDecoder().decode(FileDrift.self, from: json) == comparison)
    }

    /// A reference column that does not vary (a constant, or a variation a double cannot square) leaves the
    /// multivariate check errors of 0 and a band of no width: a current the same as the reference is inside it,
    /// and the constant moving is outside.
    @Test func aReferenceThatHardlyVariesDoesNotDriftAgainstItself() throws {
        var generator = SplitMix64(seed: 21)
        let x = (0..<300).map { _ in generator.normal() }
        let file = { (level: (Int) -> String) in CSV(header: ["level", "x"], rows: x.indices.map { [level($0), "\(x[$0])"] }) }
        let constant = file { _ in "1.5" }
        let check = try #require(try FileDrift(reference: constant, current: constant).multivariate)
        #expect(check.upper == 0 && check.value == 0 && !check.drifted, "\(check.text)")
        #expect(try #require(try FileDrift(reference: constant, current: file { _ in "1.6" }).multivariate).drifted)
        let tiny: [(Int) -> String] = [{ "\(1e-200 * x[$0])" }, { "\(Double.leastNonzeroMagnitude * Double($0 % 2))" },
                                       { "\(1 + 1e-16 * x[$0])" }]
        for level in tiny {
            let reference = file(level)
            let same = try FileDrift(reference: reference, current: reference)
            let check = try #require(same.multivariate)
            #expect(!check.drifted && same.drift.drifted == 0, "\(check.text)")
        }
    }
}
