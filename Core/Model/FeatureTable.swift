import Foundation

/// Training data by column, typed by feature kind. Missing values are `nan` (numeric, boolean) or `nil`.
public struct FeatureTable: Sendable {
    public enum Values: Sendable, Equatable {
        case numeric([Double])
        case boolean([Double])
        case categorical([String?])

        public var count: Int {
            switch self {
            case .numeric(let v), .boolean(let v): v.count
            case .categorical(let v): v.count
            }
        }

        public var kind: Feature.Kind {
            switch self {
            case .numeric: .numeric
            case .boolean: .boolean
            case .categorical: .categorical
            }
        }
    }

    public struct Column: Sendable {
        public var name: String
        public var values: Values
        public init(name: String, values: Values) {
            self.name = name
            self.values = values
        }
    }

    public var columns: [Column]
    public var rowCount: Int { columns.first?.values.count ?? 0 }

    public init(columns: [Column]) { self.columns = columns }

    /// Why CSV columns could not be typed as asked.
    public struct TypingError: Error, CustomStringConvertible, Equatable {
        public var column: String
        public var message: String
        public var description: String { "column '\(column)': \(message)" }
        public init(column: String, message: String) {
            self.column = column
            self.message = message
        }
    }

    /// Types the named CSV columns: a column is numeric when every non-empty cell is a number, boolean when
    /// every non-empty cell is `true` or `false` (any case), categorical otherwise. An empty cell is missing,
    /// and so, in a numeric or boolean column, is a token pandas reads as missing (`NA`, `NaN`, `null`,
    /// `None`, `N/A`…; `missingTokens`); in a categorical column such a token is a category like any other.
    /// `kinds` overrides the inference per column.
    public init(csv: CSV, columns names: [String], kinds: [String: Feature.Kind] = [:]) throws(TypingError) {
        var columns: [Column] = []
        for name in names {
            guard let cells = csv.column(name) else {
                throw TypingError(column: name, message: "not in the file (columns: \(csv.header.joined(separator: ", ")))")
            }
            let values: Values
            if let kind = kinds[name] {
                values = try Self.parse(cells, as: kind, column: name)
            } else {
                values = try Self.inferAndParse(cells, column: name)
            }
            columns.append(Column(name: name, values: values))
        }
        self.columns = columns
    }

    /// The cells pandas' `read_csv` takes for missing values besides an empty one.
    public static let missingTokens: Set<String> = [
        "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
        "NULL", "NaN", "None", "n/a", "nan", "null",
    ]

    /// `parse(cells, as: inferKind(cells))`, reading the numbers of a numeric column once. No missing token is a
    /// number, so a cell that reads as one is not looked up among them.
    static func inferAndParse(_ cells: [String], column: String) throws(TypingError) -> Values {
        var values = [Double](repeating: .nan, count: cells.count)
        for (i, cell) in cells.enumerated() where !cell.isEmpty {
            if let number = parseNumber(cell) {
                values[i] = number
            } else if !missingTokens.contains(cell) {
                return try parse(cells, as: inferKind(cells), column: column)
            }
        }
        return .numeric(values)
    }

    public static func inferKind(_ cells: [String]) -> Feature.Kind {
        let present = cells.lazy.filter { !$0.isEmpty && !missingTokens.contains($0) }
        if present.isEmpty { return .numeric }
        if present.allSatisfy({ parseNumber($0) != nil }) { return .numeric }
        if present.allSatisfy({ parseBool($0) != nil }) { return .boolean }
        return .categorical
    }

    public static func parse(_ cells: [String], as kind: Feature.Kind, column: String) throws(TypingError) -> Values {
        switch kind {
        case .numeric:
            var values = [Double](repeating: .nan, count: cells.count)
            for (i, cell) in cells.enumerated() where !cell.isEmpty {
                if let number = parseNumber(cell) {
                    values[i] = number
                } else if !missingTokens.contains(cell) {
                    throw TypingError(column: column, message: "row \(i + 1): '\(cell)' is not a finite number")
                }
            }
            return .numeric(values)
        case .boolean:
            var values = [Double](repeating: .nan, count: cells.count)
            for (i, cell) in cells.enumerated() where !cell.isEmpty && !missingTokens.contains(cell) {
                if let flag = parseBool(cell) {
                    values[i] = flag ? 1 : 0
                } else if let number = parseNumber(cell), number == 0 || number == 1 {
                    values[i] = number
                } else {
                    throw TypingError(column: column, message: "row \(i + 1): '\(cell)' is not true or false")
                }
            }
            return .boolean(values)
        case .categorical:
            return .categorical(cells.map { $0.isEmpty ? nil : $0 })
        }
    }

    /// One cell read as `kind`, by the rules of `parse`, a cell of another type being `.invalid` rather than an
    /// error: how a file of new rows is counted against a reference (`cyclone drift`).
    public static func read(_ cell: String, as kind: Feature.Kind) -> Feature.Kind.Reading {
        if cell.isEmpty { return .missing }
        if kind == .numeric, let number = parseNumber(cell) { return .number(number) }
        if kind != .categorical, missingTokens.contains(cell) { return .missing }
        switch kind {
        case .numeric:
            return .invalid
        case .boolean:
            if let flag = parseBool(cell) { return .flag(flag) }
            if let number = parseNumber(cell), number == 0 || number == 1 { return .flag(number == 1) }
            return .invalid
        case .categorical:
            return .category(cell)
        }
    }

    static func parseNumber(_ text: String) -> Double? {
        // Most cells have no spaces around them: parse them as they are (trimming goes through NSString).
        let value: Double?
        if let first = text.utf8.first, let last = text.utf8.last, first != 0x20, first != 0x09, last != 0x20, last != 0x09 {
            value = Double(text)
        } else {
            value = Double(text.trimmingCharacters(in: .whitespaces))
        }
        guard let value else { return nil }
        // "nan" and "inf" parse as Double but are not data.
        return value.isFinite ? value : nil
    }

    static func parseBool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }
}
