import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import Foundation
import Testing

/// `Tests/Fixtures/metrics/cases.json`, made by `scripts/fixtures/metrics.py` with scikit-learn.
struct MetricCases: Decodable {
    struct Regression: Decodable, CustomTestStringConvertible {
        var name: String
        var y_true, y_pred: [Double]
        var rmse, mae, mean_error: Double
        var r2, mape: Double?
        var mape_skipped: Int
        var testDescription: String { name }
    }
    struct Binary: Decodable, CustomTestStringConvertible {
        var name: String
        var y_true: [Int]
        var scores: [Double]
        var accuracy, precision, recall, f1, log_loss, brier: Double
        var roc_auc: Double?
        var testDescription: String { name }
    }
    struct Multiclass: Decodable, CustomTestStringConvertible {
        var name: String
        var classes, y_true: [String]
        var probabilities: [[Double]]
        var accuracy, macro_f1, log_loss: Double
        var testDescription: String { name }
    }
    var regression: [Regression]
    var binary: [Binary]
    var multiclass: [Multiclass]

    static func load() throws -> MetricCases { try Fixture.load(MetricCases.self, "metrics/cases.json") }
}

func expectClose(_ actual: Double?, _ expected: Double?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let expected else {
        #expect(actual == nil, "\(what) should be nil", sourceLocation: sourceLocation)
        return
    }
    guard let actual else {
        Issue.record("\(what) is nil, expected \(expected)", sourceLocation: sourceLocation)
        return
    }
    expectClose(actual, expected, relative: 1e-12, what, sourceLocation: sourceLocation)
}

@Suite struct MetricsTests {
    @Test(arguments: try MetricCases.load().regression)
    func regressionMatchesScikitLearn(_ c: MetricCases.Regression) {
        let m = RegressionMetrics(labels: c.y_true, predictions: c.y_pred)
        #expect(m.count == c.y_true.count)
        expectClose(m.rmse, c.rmse, "rmse")
        expectClose(m.mae, c.mae, "mae")
        expectClose(m.meanError, c.mean_error, "mean error")
        expectClose(m.r2, c.r2, "r2")
        expectClose(m.mape, c.mape, "mape")
        #expect(m.mapeSkipped == c.mape_skipped)
    }

    @Test(arguments: try MetricCases.load().binary)
    func binaryMatchesScikitLearn(_ c: MetricCases.Binary) {
        let m = BinaryMetrics(positives: c.y_true.map { $0 == 1 }, scores: c.scores)
        expectClose(m.accuracy, c.accuracy, "accuracy")
        expectClose(m.precision, c.precision, "precision")
        expectClose(m.recall, c.recall, "recall")
        expectClose(m.f1, c.f1, "f1")
        expectClose(m.logLoss, c.log_loss, "log loss")
        expectClose(m.brier, c.brier, "brier")
        expectClose(m.rocAUC, c.roc_auc, "roc auc")
    }

    @Test(arguments: try MetricCases.load().multiclass)
    func multiclassMatchesScikitLearn(_ c: MetricCases.Multiclass) {
        let index = Dictionary(uniqueKeysWithValues: c.classes.enumerated().map { ($1, $0) })
        var sums = MulticlassMetrics.Sums(classCount: c.classes.count)
        for (label, probabilities) in zip(c.y_true, c.probabilities) {
            sums.add(label: index[label]!, probabilities: probabilities)
        }
        let m = MulticlassMetrics(sums: sums)
        expectClose(m.accuracy, c.accuracy, "accuracy")
        expectClose(m.macroF1, c.macro_f1, "macro f1")
        expectClose(m.logLoss, c.log_loss, "log loss")
    }

    @Test func emptyWindowsHaveNoMetrics() {
        let regression = RegressionMetrics(labels: [], predictions: [])
        #expect(regression.count == 0 && regression.rmse == nil && regression.r2 == nil && regression.mape == nil)
        let binary = BinaryMetrics(positives: [], scores: [])
        #expect(binary.accuracy == nil && binary.rocAUC == nil && binary.logLoss == nil)
        let multiclass = MulticlassMetrics(sums: .init(classCount: 3))
        #expect(multiclass.accuracy == nil && multiclass.macroF1 == nil)
    }

    /// Properties over random data (seeded, so a failure replays): AUC depends only on the order of the
    /// scores, and swapping the classes turns AUC into 1 − AUC.
    @Test func aucIgnoresMonotoneRescalingAndComplementsOnSwap() {
        var generator = SplitMix64(seed: 42)
        for round in 0..<200 {
            let n = 2 + Int(generator.next() % 200)
            let scores = (0..<n).map { _ in Double(generator.next() % 1000) / 1000 }
            let positives = (0..<n).map { _ in generator.next() % 2 == 0 }
            guard let auc = rocAUC(scores: scores, positives: positives) else { continue }
            let rescaled = rocAUC(scores: scores.map { 3 * $0 + 1 }, positives: positives)!
            let logged = rocAUC(scores: scores.map { log($0 + 0.001) }, positives: positives)!
            #expect(abs(auc - rescaled) < 1e-12 && abs(auc - logged) < 1e-12, "round \(round)")
            let swapped = rocAUC(scores: scores, positives: positives.map { !$0 })!
            #expect(abs(auc + swapped - 1) < 1e-12, "round \(round)")
        }
    }
}
