import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

@testable import CycloneMonitoring

/// CBPE against nannyml 0.13.1 on the fixtures `scripts/fixtures/nannyml/run_all.sh` generates (a reference
/// of 5,000 labelled rows, an analysis of 5,250 in chunks of 500): one set of probabilities nannyml calibrates,
/// one it leaves alone.
@Suite struct ConfidenceBasedEstimationTests {
    struct Scenario {
        var reference: [ConfidenceBasedEstimation.Row]
        var analysis: [ConfidenceBasedEstimation.Row]
        var calibrated: [Double]
        var expected: [String: Any]

        init(_ name: String) throws {
            func csv(_ file: String) throws -> (header: [String], rows: [[String]]) {
                let table = try CSV(contentsOf: Fixture.url("nannyml/\(name)/\(file)"))
                return (table.header, table.rows)
            }
            func rows(_ table: (header: [String], rows: [[String]]), labels: [Int]?) -> [ConfidenceBasedEstimation.Row] {
                let p = table.header.firstIndex(of: "y_pred_proba")!, y = table.header.firstIndex(of: "y_pred")!
                let t = table.header.firstIndex(of: "y_true")
                return table.rows.enumerated().map { index, row in
                    ConfidenceBasedEstimation.Row(probability: Double(row[p])!, predicted: Int(row[y])!,
                                                  label: labels?[index] ?? t.map { Int(row[$0])! })
                }
            }
            reference = rows(try csv("reference.csv"), labels: nil)
            let labels = try csv("analysis_labels.csv").rows.map { Int($0[0])! }
            analysis = rows(try csv("analysis.csv"), labels: labels)
            calibrated = try csv("calibrated_analysis.csv").rows.map { Double($0[0])! }
            expected = try JSONSerialization.jsonObject(with: Fixture.data("nannyml/\(name)/expected.json")) as! [String: Any]
        }
    }

    /// One metric of one chunk against nannyml's record of it: value, sampling error and band to 1e-6, the
    /// alert, and the realised value to 1e-12 (NaN where nannyml has none).
    static func check(_ got: ConfidenceBasedEstimation.Estimate, realised: Double, against want: [String: Any], _ what: String) {
        for (field, value) in [("value", got.value), ("sampling_error", got.samplingError),
                               ("lower_confidence_boundary", got.lower), ("upper_confidence_boundary", got.upper)] {
            #expect(abs(value - (want[field] as! Double)) < 1e-6, "\(what) \(field)")
        }
        #expect(got.alert == want["alert"] as? Bool, "\(what) alert")
        if let want = want["realized"] as? Double {
            #expect(abs(realised - want) < 1e-12, "\(what) realised")
        } else {
            #expect(realised.isNaN)
        }
    }

    @Test(arguments: ["binary_miscalibrated", "binary_wellcalibrated"])
    func estimatesEqualNannyML(_ name: String) throws {
        let scenario = try Scenario(name)
        let estimation = try #require(ConfidenceBasedEstimation(reference: scenario.reference, chunkSize: 500))
        let calibration = scenario.expected["calibration"] as! [String: Any]
        #expect(estimation.calibrates == calibration["needs_calibration"] as? Bool)
        let diagnostics = calibration["diagnostics"] as! [String: Any]
        if let before = diagnostics["ece_before"] as? Double {
            #expect(abs(estimation.calibrationError!.before - before) < 1e-12)
        }
        // The calibrated probabilities, to the bit nearly.
        let calibrated = estimation.calibrated(scenario.analysis.map(\.probability))
        #expect(zip(calibrated, scenario.calibrated).allSatisfy { abs($0 - $1) < 1e-12 })

        let thresholds = scenario.expected["thresholds"] as! [String: [String: Double]]
        for metric in ConfidenceBasedEstimation.Metric.allCases {
            let (lower, upper) = estimation.thresholds[metric]!
            #expect(abs(lower - thresholds[metric.rawValue]!["lower"]!) < 1e-9, "\(metric)")
            #expect(abs(upper - thresholds[metric.rawValue]!["upper"]!) < 1e-9, "\(metric)")
        }
        var checked = 0
        for (period, rows) in [("reference_chunks", scenario.reference), ("analysis_chunks_with_labels", scenario.analysis)] {
            let chunks = scenario.expected[period] as! [[String: Any]]
            let ranges = ConfidenceBasedEstimation.chunks(rows.count, size: 500)
            #expect(ranges.count == chunks.count)
            for (range, chunk) in zip(ranges, chunks) {
                #expect(chunk["key"] as? String == "[\(range.lowerBound):\(range.upperBound - 1)]")
                let window = Array(rows[range])
                let estimates = estimation.estimate(window)
                let metrics = chunk["metrics"] as! [String: [String: Any]]
                for metric in ConfidenceBasedEstimation.Metric.allCases {
                    let realised = ConfidenceBasedEstimation.realised(metric, labels: window.map { $0.label! },
                                                                      predicted: window.map(\.predicted),
                                                                      probabilities: window.map(\.probability))
                    Self.check(estimates[metric]!, realised: realised, against: metrics[metric.rawValue]!,
                               "\(period) \(chunk["key"]!) \(metric)")
                    checked += 1
                }
            }
        }
        #expect(checked == 6 * 21)
    }

    /// Three classes: each calibrated on its own, renormalised, macro-averaged.
    @Test func multiclassEstimatesEqualNannyML() throws {
        func csv(_ file: String) throws -> CSV { try CSV(contentsOf: Fixture.url("nannyml/multiclass/\(file)")) }
        let expected = try JSONSerialization.jsonObject(with: Fixture.data("nannyml/multiclass/expected.json")) as! [String: Any]
        let config = expected["config"] as! [String: Any]
        let classes = config["classes_sorted"] as! [String]
        let columnOf = config["y_pred_proba"] as! [String: String]
        func rows(_ table: CSV, labels: [String]?) -> [MulticlassConfidenceBasedEstimation.Row] {
            let columns = classes.map { table.header.firstIndex(of: columnOf[$0]!)! }
            let predicted = table.header.firstIndex(of: "y_pred")!, truth = table.header.firstIndex(of: "y_true")
            return table.rows.enumerated().map { index, row in
                MulticlassConfidenceBasedEstimation.Row(
                    probabilities: columns.map { Double(row[$0])! }, predicted: classes.firstIndex(of: row[predicted])!,
                    label: (labels?[index] ?? truth.map { row[$0] }).flatMap { classes.firstIndex(of: $0) })
            }
        }
        let reference = rows(try csv("reference.csv"), labels: nil)
        let analysis = rows(try csv("analysis.csv"), labels: try csv("analysis_labels.csv").rows.map { $0[0] })
        let estimation = try #require(MulticlassConfidenceBasedEstimation(reference: reference, classCount: 3, chunkSize: 500))
        let calibration = expected["calibration"] as! [String: [String: Any]]
        #expect(estimation.calibrates == classes.map { calibration[$0]?["calibrator"] as? String == "IsotonicCalibrator" })
        let calibratedTable = try csv("calibrated_analysis.csv")
        let calibrated = estimation.calibrated(analysis)
        for (k, name) in classes.enumerated() {
            let column = calibratedTable.header.firstIndex(of: columnOf[name]!)!
            #expect(zip(calibrated, calibratedTable.rows).allSatisfy { abs($0[k] - Double($1[column])!) < 1e-12 }, "\(name)")
        }
        var checked = 0
        for (period, rows) in [("reference_chunks", reference), ("analysis_chunks_with_labels", analysis)] {
            let chunks = expected[period] as! [[String: Any]]
            for (range, chunk) in zip(ConfidenceBasedEstimation.chunks(rows.count, size: 500), chunks) {
                let window = Array(rows[range])
                let estimates = estimation.estimate(window)
                let metrics = chunk["metrics"] as! [String: [String: Any]]
                for metric in ConfidenceBasedEstimation.Metric.allCases {
                    Self.check(estimates[metric]!, realised: MulticlassConfidenceBasedEstimation.realised(metric, window, classCount: 3),
                               against: metrics[metric.rawValue]!, "\(period) \(chunk["key"]!) \(metric)")
                    checked += 1
                }
            }
        }
        #expect(checked == 6 * (12 + 13))
    }

    /// numpy's RandomState(42).permutation(10), pinned from numpy itself.
    @Test func theShuffleIsNumpys() {
        var random = NumpyRandomState(seed: 42)
        #expect(random.permutation(10) == [8, 1, 5, 0, 7, 2, 9, 4, 3, 6])
    }

    @Test func aReferenceItCannotFitOnIsRefused() {
        let rows = (0..<100).map { ConfidenceBasedEstimation.Row(probability: Double($0) / 100, predicted: 1, label: 1) }
        #expect(ConfidenceBasedEstimation(reference: rows, chunkSize: 10) == nil, "one class")
        let twos = rows.enumerated().map { index, row in
            ConfidenceBasedEstimation.Row(probability: row.probability, predicted: 1, label: index % 2 + 1)
        }
        #expect(ConfidenceBasedEstimation(reference: twos, chunkSize: 10) == nil, "labels 1 and 2")
        var nan = twos.map { ConfidenceBasedEstimation.Row(probability: $0.probability, predicted: 1, label: $0.label! - 1) }
        #expect(ConfidenceBasedEstimation(reference: nan, chunkSize: 10) != nil)
        nan[3].probability = .nan
        #expect(ConfidenceBasedEstimation(reference: nan, chunkSize: 10) == nil, "a NaN probability")
    }

    /// Bad rows in a window are left out, never trap; an empty window estimates nothing and alerts nothing.
    @Test func badRowsAreLeftOutAndAnEmptyWindowAlertsNothing() throws {
        let scenario = try Scenario("binary_miscalibrated")
        let estimation = try #require(ConfidenceBasedEstimation(reference: scenario.reference, chunkSize: 500))
        let window = Array(scenario.analysis.prefix(500))
        var spoilt = window
        spoilt.append(.init(probability: .nan, predicted: 1))
        spoilt.append(.init(probability: .infinity, predicted: 0))
        spoilt.append(.init(probability: 0.5, predicted: 7))
        #expect(estimation.estimate(spoilt) == estimation.estimate(window))
        let empty = estimation.estimate([])
        #expect(empty.values.allSatisfy { $0.value.isNaN && !$0.alert && $0.lower.isNaN })
        // Every calibrated probability 0: ROC AUC is undefined, and so is its band.
        let zeros = (0..<10).map { _ in ConfidenceBasedEstimation.Row(probability: 0, predicted: 0) }
        let auc = try #require(estimation.estimate(zeros)[.rocAUC])
        #expect(!auc.alert && (auc.value.isNaN == auc.lower.isNaN))

        var rows = (0..<60).map { index in
            MulticlassConfidenceBasedEstimation.Row(probabilities: [0.2, 0.3, 0.5].shuffled(), predicted: index % 3, label: index % 3)
        }
        let multiclass = try #require(MulticlassConfidenceBasedEstimation(reference: rows, classCount: 3, chunkSize: 20))
        rows.append(.init(probabilities: [0.1, 0.9], predicted: 1))
        rows.append(.init(probabilities: [0.1, 0.1, 0.8], predicted: 9))
        rows.append(.init(probabilities: [.nan, 0.1, 0.8], predicted: 0))
        #expect(multiclass.estimate(rows)[.accuracy]?.value.isFinite == true)
        #expect(MulticlassConfidenceBasedEstimation.realised(.accuracy, rows, classCount: 3).isFinite)
    }
}
