import CycloneModel
@testable import CycloneReplay
import CycloneTraining
import Foundation
import Testing

/// The backtest's set-up and baselines, without the servers or the command line.
@Suite struct BacktestTests {
    private func synthetic(days: Int = 75) -> Backtest.Options {
        var options = Backtest.Options(binaries: "/nonexistent")
        options.days = days
        options.training.boosting.trees = 30
        return options
    }

    @Test func theFirstModelTrainsOnTheFirstMonthAndTheRestIsReplayed() throws {
        let backtest = try Backtest(synthetic())
        #expect(backtest.model.name == "bikes" && backtest.model.version == "1" && backtest.model.task == .regression)
        #expect(backtest.model.training?.rows == 744 * 4 / 5, "January less a fifth held out")
        #expect(backtest.start == Date(timeIntervalSince1970: 1_738_368_000))  // 2025-02-01
        #expect(backtest.replayRows.count == 672 + 384)
        #expect(backtest.stream.months(in: backtest.replayRows).map(\.month) == ["2025-02", "2025-03"])
        #expect(backtest.metric == "r2" && backtest.threshold == nil && backtest.error == "rmse")
        #expect(backtest.replayRows.allSatisfy { backtest.firstModelOutputs[$0] != nil })
        #expect(backtest.firstModelOutputs[..<backtest.replayRows.lowerBound].allSatisfy { $0 == nil })
        #expect(backtest.header.contains("evaluate every 1d, labels after 1d"), "\(backtest.header)")
    }

    /// The monthly baseline retrains at each month's start after the first, on rows whose labels were known
    /// by then; its outputs differ from the first model's from that month on, not before.
    @Test func theMonthlyBaselineRetrainsAtEachMonthsStart() throws {
        let backtest = try Backtest(synthetic(days: 120))
        let monthly = backtest.monthlyBaseline()
        let months = backtest.stream.months(in: backtest.replayRows)
        #expect(months.map(\.month) == ["2025-02", "2025-03", "2025-04"])  // 120 days end on 30 April
        #expect(monthly.retrains == 2)
        #expect(months[0].rows.allSatisfy { monthly.outputs[$0] == backtest.firstModelOutputs[$0] })
        #expect(months[1].rows.contains { monthly.outputs[$0] != backtest.firstModelOutputs[$0] })
        // After the e-bikes arrive (April) the month-old model is closer than the first one.
        let april = Array(months[2].rows)
        let labels = backtest.stream.target.values.selecting(rows: april)
        let rmse = { (outputs: [Output?]) in
            backtest.model.metrics(outputs: april.map { outputs[$0] }, labels: labels)["rmse"] ?? .nan
        }
        #expect(rmse(monthly.outputs) < rmse(backtest.firstModelOutputs))
    }

    /// The expanding baseline trains on every labelled row known at the month's start, not the newest
    /// `trainingRows`: from the second replayed month on, it serves other predictions than the window's.
    @Test func theExpandingBaselineTrainsOnEveryRowSoFar() throws {
        var options = synthetic()
        options.trainingRows = 300
        let backtest = try Backtest(options)
        let (window, expanding) = (backtest.monthlyBaseline(), backtest.monthlyBaseline(expanding: true))
        #expect(expanding.retrains == window.retrains)
        let months = backtest.stream.months(in: backtest.replayRows)
        #expect(months[0].rows.allSatisfy { expanding.outputs[$0] == window.outputs[$0] })
        #expect(months[1].rows.contains { expanding.outputs[$0] != window.outputs[$0] })
        let table = backtest.table(LoopReplay.Outcome(served: backtest.firstModelOutputs))
        #expect(table.columns == ["first model", "Cyclone loop", "every month", "expanding"])
        #expect(table.rows.map(\.month) == ["2025-02", "2025-03", "all", "mean"])
        #expect(table.retrains == [0, 0, 1, 1] && table.fits == [0, 0, 1, 1] && table.deploys == [0, 0, 1, 1])
        // The loop column here is the first model's outputs: the same figures as the first column.
        #expect(table.rows.allSatisfy { $0.values[0] == $0.values[1] })
        #expect(table.text.split(separator: "\n").last?.hasPrefix("deploys") == true, "\(table.text)")
    }

    @Test func badOptionsAreRefusedWithTheOptionNamed() {
        var options = synthetic()
        options.trainingRows = 100
        #expect(throws: ReplayError("--training-rows must be at least 125")) { try Backtest(options) }
        options = synthetic(days: 20)
        #expect(throws: ReplayError("--days must be 45 to 365")) { try Backtest(options) }
        options = synthetic()
        options.metric = "roc_auc"
        #expect(throws: ReplayError.self) { try Backtest(options) }
        options = synthetic()
        options.threshold = "lots"
        #expect(throws: ReplayError("--threshold must be a number or a factor such as 0.8x, not 'lots'")) { try Backtest(options) }
        options = synthetic()
        options.evaluateEvery = 30
        #expect(throws: ReplayError("--evaluate-every must be at least 1m")) { try Backtest(options) }
    }

    @Test func durationsAreWrittenInTheirLargestWholeUnit() {
        #expect(Backtest.duration(86_400) == "1d")
        #expect(Backtest.duration(43_200) == "12h")
        #expect(Backtest.duration(5_400) == "90m")
        #expect(Backtest.duration(90) == "90s")
        #expect(Backtest.duration(0) == "0s")
    }
}

@Suite struct ReplayStreamTests {
    /// Rows come back in time order whatever the file's order (ties in file order); a row without a label is
    /// predicted, never labelled; times in several formats are read.
    @Test func rowsAreOrderedByTheirTime() throws {
        let csv = CSV(header: ["at", "x", "y"], rows: [
            ["2025-01-02 00:00", "2", "20"],
            ["1735689600", "1", ""],
            ["2025-01-01T12:00:00Z", "3", "30"],
            ["2025-01-01T12:00:00.000Z", "4", "40"],
        ])
        let stream = try ReplayStream(csv: csv, time: "at", target: "y", task: .regression, kinds: [:], ignore: [])
        #expect(stream.times.map(\.timeIntervalSince1970) == [1_735_689_600, 1_735_732_800, 1_735_732_800, 1_735_776_000])
        #expect(stream.instances == [#"{"x":1}"#, #"{"x":3}"#, #"{"x":4}"#, #"{"x":2}"#])
        #expect(stream.labels == ["null", "30", "40", "20"])
        #expect(stream.labelled == [false, true, true, true])
        #expect(stream.rows(in: Date(timeIntervalSince1970: 1_735_732_800)..<Date.distantFuture) == 1..<4)
    }

    @Test func aTimeThatDoesNotParseNamesItsRowAndColumn() {
        let csv = CSV(header: ["at", "x", "y"], rows: [["yesterday", "1", "2"]])
        let error = #expect(throws: ReplayError.self) {
            try ReplayStream(csv: csv, time: "at", target: "y", task: .regression, kinds: [:], ignore: [])
        }
        #expect(error?.description.hasPrefix("row 1, column 'at': 'yesterday' is not a time") == true, "\(String(describing: error))")
    }
}
