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
        if let value = text.utf8.withContiguousStorageIfAvailable(fastDecimal) ?? nil { return value }
        // Most cells have no spaces around them: parse them as they are (trimming goes through NSString).
        let value: Double?
        if let first = text.utf8.first, let last = text.utf8.last, first != 0x20, first != 0x09, last != 0x20, last != 0x09 {
            value = Double(text)
        } else {
            value = Double(text.trimmingCharacters(in: .whitespaces))
        }
        // Hexadecimal ("0x1A", "0x1p3") parses as Double but is text to pandas.
        guard let value, !text.utf8.contains(UInt8(ascii: "x")), !text.utf8.contains(UInt8(ascii: "X")) else { return nil }
        // "nan" and "inf" parse as Double but are not data.
        return value.isFinite ? value : nil
    }

    /// A plain decimal (`-12.5`, `3e-4`) of at most 15 significant digits whose power of ten is within ±22,
    /// read exactly: its digits and the power of ten are both exact doubles, so one multiplication or division
    /// rounds correctly (Clinger's fast path) and gives what `strtod` gives. `nil` for anything else, which
    /// then takes the full parser.
    static func fastDecimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        var i = 0
        let n = bytes.count
        guard n > 0, n < 40 else { return nil }
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: UInt64 = 0, digits = 0, exponent = 0, seen = false, point = false
        while i < n {
            let b = bytes[i]
            if b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                seen = true
                if mantissa != 0 || b != UInt8(ascii: "0") { digits += 1 }
                guard digits <= 15 else { return nil }
                mantissa = mantissa * 10 + UInt64(b - UInt8(ascii: "0"))
                if point { exponent -= 1 }
            } else if b == UInt8(ascii: "."), !point {
                point = true
            } else {
                break
            }
            i += 1
        }
        guard seen else { return nil }
        if i < n {
            guard bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E"), i + 1 < n else { return nil }
            i += 1
            var negativeExponent = false
            if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
                negativeExponent = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            var value = 0
            guard i < n else { return nil }
            while i < n {
                let b = bytes[i]
                guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9"), value < 1_000 else { return nil }
                value = value * 10 + Int(b - UInt8(ascii: "0"))
                i += 1
            }
            exponent += negativeExponent ? -value : value
        }
        guard (-22...22).contains(exponent) else { return mantissa == 0 ? (negative ? -0.0 : 0) : nil }
        let magnitude = exponent >= 0 ? Double(mantissa) * powersOfTen[exponent] : Double(mantissa) / powersOfTen[-exponent]
        return negative ? -magnitude : magnitude
    }

    /// 10⁰ … 10²², each exact.
    static let powersOfTen: [Double] = (0...22).map { k in (0..<k).reduce(1.0) { value, _ in value * 10 } }

    static func parseBool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }
}
