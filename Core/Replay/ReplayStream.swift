import CycloneModel
import CycloneStore
import CycloneTraining
import Foundation

/// Labelled rows in time order, ready to replay: each row's time, its instance as predict takes it, its
/// label as label-ingest takes it, and the typed table the baselines train on.
public struct ReplayStream: Sendable {
    public var times: [Date]
    public var features: FeatureTable
    public var target: FeatureTable.Column
    /// Each row's instance, a JSON object.
    public var instances: [String]
    /// Each row's label, a JSON value (`null` when the row has none).
    public var labels: [String]
    /// Whether the row has a label (one without is predicted, never labelled).
    public var labelled: [Bool]

    public var count: Int { times.count }

    /// The target column's cells, or an error naming the columns there are.
    static func column(_ name: String, of csv: CSV, option: String) throws -> [String] {
        guard let cells = csv.column(name) else {
            throw ReplayError("\(option) '\(name)' is not a column (columns: \(csv.header.joined(separator: ", ")))")
        }
        return cells
    }

    /// Types `csv`'s columns (inferred, or as `kinds` says), reads `time` as timestamps and orders the rows by
    /// them. Every column but `time`, `target` and `ignore` is a feature.
    public init(csv: CSV, time: String, target: String, task: ModelArtifact.Task, kinds: [String: Feature.Kind],
         ignore: [String]) throws {
        let timeCells = try Self.column(time, of: csv, option: "--time")
        let targetCells = try Self.column(target, of: csv, option: "--target")
        var parsed: [Date] = []
        parsed.reserveCapacity(timeCells.count)
        for (row, cell) in timeCells.enumerated() {
            guard let date = Self.timestamp(cell) else {
                throw ReplayError("row \(row + 1), column '\(time)': '\(cell)' is not a time (ISO 8601 such as 2025-01-31T08:00:00Z or 2025-01-31 08:00, or Unix seconds or milliseconds)")
            }
            parsed.append(date)
        }
        let order = parsed.indices.sorted { (parsed[$0], $0) < (parsed[$1], $1) }
        let sorted = csv.selecting(rows: order)
        let names = csv.header.filter { $0 != time && $0 != target && !ignore.contains($0) }
        guard !names.isEmpty else { throw ReplayError("no feature columns left besides --time and --target") }
        features = try FeatureTable(csv: sorted, columns: names, kinds: kinds)
        let targetKind: Feature.Kind = task == .regression ? .numeric : .categorical
        self.target = FeatureTable.Column(name: target, values: try FeatureTable.parse(order.map { targetCells[$0] },
                                                                                as: targetKind, column: target))
        times = order.map { parsed[$0] }
        instances = (0..<order.count).map { [features] row in
            JSONValue.object(Dictionary(uniqueKeysWithValues: features.columns.map { ($0.name, Self.json($0.values, row)) })).jsonText
        }
        labels = (0..<order.count).map { [values = self.target.values] in Self.json(values, $0).jsonText }
        let targetValues = self.target.values
        labelled = (0..<order.count).map { Self.json(targetValues, $0) != .null }
    }

    /// `rows` as a model's history (`History`): instance, label and time, each row keyed by the columns
    /// `keyed` names (all of them when nil).
    public func history(_ rows: some Sequence<Int>, keyed: Set<String>? = nil) -> [History.Row] {
        let keyColumns = features.columns.filter { keyed?.contains($0.name) ?? true }
        return rows.map { row in
            let key = keyed == nil ? nil
                : JSONValue.object(Dictionary(uniqueKeysWithValues: keyColumns.map { ($0.name, Self.json($0.values, row)) })).jsonText
            return History.Row(input: instances[row], label: labels[row], time: times[row], key: key)
        }
    }

    /// The rows of each calendar month (UTC) within `rows`, in order.
    public func months(in rows: Range<Int>) -> [(month: String, rows: Range<Int>)] {
        var months: [(month: String, rows: Range<Int>)] = []
        var lower = rows.lowerBound
        while lower < rows.upperBound {
            let month = Self.month(times[lower])
            var upper = lower
            while upper < rows.upperBound, Self.month(times[upper]) == month { upper += 1 }
            months.append((month, lower..<upper))
            lower = upper
        }
        return months
    }

    static func month(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month())
    }

    /// The rows with times in `range`, as indices (the rows are in time order).
    public func rows(in range: Range<Date>) -> Range<Int> {
        let lower = times.partitioningIndex { $0 >= range.lowerBound }
        let upper = times.partitioningIndex { $0 >= range.upperBound }
        return lower..<max(lower, upper)
    }

    private static func json(_ values: FeatureTable.Values, _ row: Int) -> JSONValue {
        switch values {
        case .numeric(let v): v[row].isNaN ? .null : .number(v[row])
        case .boolean(let v): v[row].isNaN ? .null : .bool(v[row] == 1)
        case .categorical(let v): v[row].map { .string($0) } ?? .null
        }
    }

    /// ISO 8601 with or without a zone (UTC when none) and fractional seconds, a date alone, or Unix time in
    /// seconds or milliseconds (a number from 1e8 to 1e10, or from 1e11 to 1e13).
    public static func timestamp(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let number = Double(trimmed) {
            if (1e8...1e10).contains(number) { return Date(timeIntervalSince1970: number) }
            if (1e11...1e13).contains(number) { return Date(timeIntervalSince1970: number / 1000) }
            return nil
        }
        if let date = try? Date(trimmed, strategy: .iso8601) { return date }
        if let date = try? Date(trimmed, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return date
        }
        for formatter in localFormats {
            if let date = formatter.date(from: trimmed) { return date }
        }
        return nil
    }

    /// Times without a zone, read as UTC.
    private static let localFormats: [DateFormatter] = [
        "yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss.SSS", "yyyy-MM-dd HH:mm:ss",
        "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm", "yyyy-MM-dd",
    ].map { format in
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter
    }
}

extension Collection {
    /// The first index whose element satisfies `predicate`, which must be false then true along the collection.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Index {
        var low = startIndex, n = count
        while n > 0 {
            let half = n / 2
            let middle = index(low, offsetBy: half)
            if predicate(self[middle]) { n = half } else { low = index(after: middle); n -= half + 1 }
        }
        return low
    }
}

/// A backtest that cannot go on, in one sentence.
public struct ReplayError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
