import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneTraining
import Foundation

/// What the demo prints while it runs: a progress line a week of stream time, a line per event of the loop.
public struct ReplayOutput: Sendable {
    public init() {}

    public static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
    }

    /// Writes a line at once, unbuffered, so a pipe shows it as it happens.
    public func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    func event(at date: Date, _ line: String) { say("\(Self.day(date))   ▸ \(line)") }

    /// The date, what serves, its error and the policy's metric over the performance window (against the
    /// policy's limit), and the features whose drift test fired.
    func progress(at date: Date, report: EvaluationReport, metric: String, error: String) {
        let serving = report.models.filter(\.serving)
        // Right after a promotion the new version has served nothing yet: the one that served last speaks.
        guard let live = serving.first(where: { $0.performance?.labelled ?? 0 > 0 }) ?? serving.first
            ?? report.models.max(by: { $0.lastPrediction < $1.lastPrediction })
        else {
            return say("\(Self.day(date))  nothing served yet")
        }
        var parts = ["\(live.name)@\(live.version)"]
        let canaries = report.canaries.filter { $0.action == .waiting }.map { "@\($0.version)" }
        if !canaries.isEmpty { parts[0] += " + canary " + canaries.joined(separator: ", ") }
        if let judgement = live.judgement, let value = judgement.value {
            let errorValue = error == metric ? nil : live.performance?.metrics[error]
            var text = (errorValue.map { "\(error) \(Self.number($0)), " } ?? "")
                + "\(metric) \(Self.number(value)) over \(judgement.labels) labels"
            if let limit = judgement.limit { text += " (limit \(Self.number(limit)))" }
            if let shift = judgement.lossShift {
                text += ", loss ×\(Self.number(shift.ratio)) of its first window's (p \(String(format: "%.2g", shift.pValue)))"
            }
            if let shift = judgement.holdoutLossShift {
                text += ", \(judgement.lossShift == nil ? "loss " : "")×\(Self.number(shift.ratio)) of its holdout's (p \(String(format: "%.2g", shift.pValue)))"
            }
            parts.append(text)
        } else if let labels = live.performance?.labelled {
            parts.append("\(labels) labels so far")
        }
        // The estimate of the newest predictions, before their labels (DLE's rmse, CBPE's metric).
        if let estimate = live.estimate, let value = estimate.metrics[error] ?? estimate.metrics[metric] {
            let name = estimate.metrics[error] != nil ? error : metric
            parts.append("estimated \(name) \(Self.number(value.value)) on the newest \(estimate.rows) (\(estimate.labelled) labelled)")
        }
        if let drift = live.drift?.report {
            let drifted = drift.features.filter(\.drifted).map(\.feature)
            parts.append(drifted.isEmpty ? "no drift" : "drift: " + drifted.joined(separator: ", "))
        }
        say("\(Self.day(date))  " + parts.joined(separator: "  ·  "))
    }

    public static func number(_ value: Double) -> String { String(format: abs(value) >= 100 ? "%.0f" : "%.3g", value) }
}

/// The closing table: the metric per month of the replay for each strategy (the first model left alone, the
/// loop, the calendar baselines), over all rows, and the mean of the months (each month weighs the same,
/// however many rows it has); then each strategy's retrains, the models they fitted (compute: a loop's
/// retrain fits a candidate per training window and family and refits the one it accepts) and its deploys (models put
/// into service).
public struct MonthlyTable: Sendable {
    public struct Row: Sendable {
        public var month: String
        /// Rows in the month (or in all of them); `nil` for the mean of the months.
        public var rows: Int?
        public var values: [Double?]
    }

    /// One column: what a strategy served for each row, and how many models it trained and deployed.
    public struct Strategy: Sendable {
        public var name: String
        public var outputs: [Output?]
        public var retrains: Int
        public var fits: Int
        public var deploys: Int

        public init(name: String, outputs: [Output?], retrains: Int, fits: Int? = nil, deploys: Int) {
            self.name = name
            self.outputs = outputs
            self.retrains = retrains
            self.fits = fits ?? retrains
            self.deploys = deploys
        }
    }

    public var metric: String
    public var columns: [String]
    public var rows: [Row] = []
    public var retrains: [Int] = []
    public var fits: [Int] = []
    public var deploys: [Int] = []

    /// The months of `stream` within `rows`, with each strategy's outputs scored by `model`'s metrics.
    init(metric: String, model: ModelArtifact, stream: ReplayStream, rows range: Range<Int>, strategies: [Strategy]) {
        self.metric = metric
        columns = strategies.map(\.name)
        retrains = strategies.map(\.retrains)
        fits = strategies.map(\.fits)
        deploys = strategies.map(\.deploys)
        func row(_ month: String, _ range: Range<Int>) -> Row {
            let labels = stream.target.values.selecting(rows: Array(range))
            return Row(month: month, rows: range.count, values: strategies.map {
                model.metrics(outputs: Array($0.outputs[range]), labels: labels)[metric]
            })
        }
        let months = stream.months(in: range).map { row($0.month, $0.rows) }
        rows = months + [row("all", range)]
        rows.append(Row(month: "mean", rows: nil, values: strategies.indices.map { column in
            let values = months.compactMap { $0.values[column] }
            return values.count == months.count && !values.isEmpty ? values.reduce(0, +) / Double(values.count) : nil
        }))
    }

    /// What acting on estimates bought, when the table holds the loop (`Cyclone loop`) and the same replay
    /// judged by the labels alone (`labels only`): the metric over all rows and on the mean of months, each
    /// beside the other, and the retrains and deploys it took.
    public var earlyActionText: String? {
        guard let loop = columns.firstIndex(of: "Cyclone loop"), let labels = columns.firstIndex(of: "labels only"),
              let all = rows.first(where: { $0.month == "all" }), let mean = rows.first(where: { $0.month == "mean" })
        else { return nil }
        func pair(_ row: Row) -> String {
            "\(row.values[loop].map(ReplayOutput.number) ?? "–") against \(row.values[labels].map(ReplayOutput.number) ?? "–")"
        }
        var verdict = ""
        if let acted = all.values[loop], let waited = all.values[labels] {
            let higher = PerformanceMetric(rawValue: metric)?.higherIsBetter == true
            verdict = acted == waited ? " (the same)" : (higher ? acted > waited : acted < waited) ? " (better)" : " (worse)"
        }
        return "acting on the estimate before the labels: \(metric) \(pair(all)) over all rows\(verdict), \(pair(mean)) on the mean of months, "
            + "with \(retrains[loop]) retrains and \(deploys[loop]) deploys against \(retrains[labels]) and \(deploys[labels]) judged by the labels alone"
    }

    public var text: String {
        let width = max(14, columns.map { $0.count + 2 }.max() ?? 0)
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = ["\(metric) per month, lower is better".replacingOccurrences(
            of: "lower", with: PerformanceMetric(rawValue: metric)?.higherIsBetter == true ? "higher" : "lower")]
        func lead(_ first: String, _ second: String) -> String {
            first.padding(toLength: 9, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 7 - second.count)) + second
        }
        lines.append(lead("month", "rows") + columns.map(cell).joined())
        for row in rows {
            lines.append(lead(row.month, row.rows.map(String.init) ?? "") + row.values.map { cell($0.map(ReplayOutput.number) ?? "–") }.joined())
        }
        lines.append(lead("retrains", "") + retrains.map { cell("\($0)") }.joined())
        lines.append(lead("fits", "") + fits.map { cell("\($0)") }.joined())
        lines.append(lead("deploys", "") + deploys.map { cell("\($0)") }.joined())
        return lines.joined(separator: "\n")
    }
}
