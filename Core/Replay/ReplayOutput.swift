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
        guard let live = serving.first(where: { $0.performance?.labelled ?? 0 > 0 }) ?? serving.first else {
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
            parts.append(text)
        } else if let labels = live.performance?.labelled {
            parts.append("\(labels) labels so far")
        }
        if let drift = live.drift?.report {
            let drifted = drift.features.filter(\.drifted).map(\.feature)
            parts.append(drifted.isEmpty ? "no drift" : "drift: " + drifted.joined(separator: ", "))
        }
        say("\(Self.day(date))  " + parts.joined(separator: "  ·  "))
    }

    public static func number(_ value: Double) -> String { String(format: abs(value) >= 100 ? "%.0f" : "%.3g", value) }
}

/// The closing table: the metric per month of the replay for the first model left alone, the loop, and a
/// retrain at every month's start.
public struct MonthlyTable: Sendable {
    public struct Row: Sendable {
        public var month: String
        public var rows: Int
        public var values: [Double?]
    }

    public var metric: String
    public var columns: [String]
    public var rows: [Row] = []
    public var retrains: [String] = []

    /// Months of `times` from `rows`, with each strategy's outputs scored by `model`'s metrics.
    init(metric: String, model: ModelArtifact, stream: ReplayStream, rows range: Range<Int>,
         strategies: [(name: String, outputs: [Output?], retrains: String)]) {
        self.metric = metric
        columns = strategies.map(\.name)
        retrains = strategies.map(\.retrains)
        for (month, rows) in stream.months(in: range) {
            self.rows.append(Self.row(month, rows, model: model, stream: stream, strategies: strategies, metric: metric))
        }
        rows.append(Self.row("all", range, model: model, stream: stream, strategies: strategies, metric: metric))
    }

    private static func row(_ month: String, _ range: Range<Int>, model: ModelArtifact, stream: ReplayStream,
                            strategies: [(name: String, outputs: [Output?], retrains: String)], metric: String) -> Row {
        let labels = stream.target.values.selecting(rows: Array(range))
        return Row(month: month, rows: range.count, values: strategies.map {
            model.metrics(outputs: Array($0.outputs[range]), labels: labels)[metric]
        })
    }

    public var text: String {
        let width = max(14, columns.map(\.count).max() ?? 0)
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = ["\(metric) per month, lower is better".replacingOccurrences(
            of: "lower", with: PerformanceMetric(rawValue: metric)?.higherIsBetter == true ? "higher" : "lower")]
        func lead(_ first: String, _ second: String) -> String {
            first.padding(toLength: 9, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 7 - second.count)) + second
        }
        lines.append(lead("month", "rows") + columns.map(cell).joined())
        for row in rows {
            lines.append(lead(row.month, "\(row.rows)") + row.values.map { cell($0.map(ReplayOutput.number) ?? "–") }.joined())
        }
        lines.append(lead("retrains", "") + retrains.map(cell).joined())
        return lines.joined(separator: "\n")
    }
}
