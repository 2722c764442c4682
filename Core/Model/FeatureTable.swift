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
    /// `None`, `N/A`…; `missingTokens`) and an infinity (`isInfinity`); in a categorical column such a token is
    /// a category like any other.
    /// `kinds` overrides the inference per column.
    public init(csv: CSV, columns names: [String], kinds: [String: Feature.Kind] = [:]) throws(TypingError) {
        var columns: [Column] = []
        for name in names {
            guard let cells = csv.cells(name) else {
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

    /// Whether a cell is one of `missingTokens` (most cells are not, and are told so by their length or first byte).
    static func isMissingToken(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (2...8).contains(bytes.count) else { return false }
        switch bytes[0] {
        case UInt8(ascii: "#"), UInt8(ascii: "-"), UInt8(ascii: "1"), UInt8(ascii: "<"), UInt8(ascii: "N"), UInt8(ascii: "n"): break
        default: return false
        }
        return missingTokens.contains(String(decoding: bytes, as: UTF8.self))
    }

    /// Whether a cell is an infinity: `inf`, `-Infinity` (any case, either sign) or a number beyond a double
    /// (`1e999`). pandas reads it as a number, where no statistic can use it, so it is missing as `NaN` is: it
    /// keeps a numeric column numeric and counts among its missing values.
    static func isInfinity(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // One is spelt with an i or has an exponent's e, and starts with no other letter: true, false, 0, 1 and
        // most text are told at once, without parsing.
        let lower = { (byte: UInt8) in byte | 0x20 }
        guard let first = bytes.first,
              lower(first) == UInt8(ascii: "i") || !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(lower(first)),
              bytes.contains(where: { lower($0) == UInt8(ascii: "i") || lower($0) == UInt8(ascii: "e") })
        else { return false }
        return parseDouble(bytes)?.isInfinite == true
    }

    /// Whether a cell of a numeric or boolean column is missing: empty, a missing token, or an infinity.
    static func isMissing(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.isEmpty || isMissingToken(bytes) || isInfinity(bytes)
    }

    /// `parse(cells, as: inferKind(cells))`, reading the numbers of a numeric column once. No missing token is a
    /// number, so a cell that reads as one is not looked up among them.
    static func inferAndParse(_ cells: some CellColumn, column: String) throws(TypingError) -> Values {
        var values = [Double](repeating: .nan, count: cells.count)
        var numeric = true
        cells.withBytes { row, bytes in
            guard numeric, !bytes.isEmpty else { return }
            if let number = parseNumber(bytes) {
                values[row] = number
            } else if !isMissing(bytes) {
                numeric = false
            }
        }
        return numeric ? .numeric(values) : try parse(cells, as: inferKind(cells), column: column)
    }

    public static func inferKind(_ cells: some CellColumn) -> Feature.Kind {
        // Whether every present cell so far is a number, and whether every one is true or false.
        var numbers = true, flags = true
        cells.withBytes { _, bytes in
            guard numbers || flags, !isMissing(bytes) else { return }
            if numbers, parseNumber(bytes) == nil { numbers = false }
            if flags, parseBool(bytes) == nil { flags = false }
        }
        return numbers ? .numeric : flags ? .boolean : .categorical
    }

    public static func parse(_ cells: some CellColumn, as kind: Feature.Kind, column: String) throws(TypingError) -> Values {
        var failure: TypingError?
        switch kind {
        case .numeric, .boolean:
            var values = [Double](repeating: .nan, count: cells.count)
            cells.withBytes { row, bytes in
                guard failure == nil else { return }
                switch read(bytes, as: kind) {
                case .number(let number): values[row] = number
                case .flag(let flag): values[row] = flag ? 1 : 0
                case .missing, .category: break
                case .invalid:
                    let cell = String(decoding: bytes, as: UTF8.self)
                    failure = TypingError(column: column, message: "row \(row + 1): '\(cell)' is \(kind == .numeric ? "not a finite number" : "not true or false")")
                }
            }
            if let failure { throw failure }
            return kind == .numeric ? .numeric(values) : .boolean(values)
        case .categorical:
            var values: [String?] = []
            values.reserveCapacity(cells.count)
            cells.withBytes { _, bytes in values.append(bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)) }
            return .categorical(values)
        }
    }

    /// One cell read as `kind`, by the rules of `parse`, a cell of another type being `.invalid` rather than an
    /// error: how a file of new rows is counted against a reference (`cyclone drift`).
    public static func read(_ bytes: UnsafeBufferPointer<UInt8>, as kind: Feature.Kind) -> Feature.Kind.Reading {
        if bytes.isEmpty { return .missing }
        if kind == .numeric, let number = parseNumber(bytes) { return .number(number) }
        if kind != .categorical, isMissing(bytes) { return .missing }
        switch kind {
        case .numeric:
            return .invalid
        case .boolean:
            if let flag = parseBool(bytes) { return .flag(flag) }
            if let number = parseNumber(bytes), number == 0 || number == 1 { return .flag(number == 1) }
            return .invalid
        case .categorical:
            return .category(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// `read(_:as:)` of a cell's text.
    public static func read(_ cell: String, as kind: Feature.Kind) -> Feature.Kind.Reading {
        var cell = cell
        return cell.withUTF8 { read($0, as: kind) }
    }

    /// A cell's number, or `nil` when it is not a finite number pandas would read.
    static func parseNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        if let value = fastDecimal(bytes) { return value }
        // "nan" and "inf" parse as Double but are not data.
        return parseDouble(bytes).flatMap { $0.isFinite ? $0 : nil }
    }

    /// A cell's number as Swift reads it, infinities and NaN included, with pandas' exceptions: spaces around it
    /// are trimmed, hexadecimal is text.
    static func parseDouble(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        // Hexadecimal ("0x1A", "0x1p3") parses as Double but is text to pandas.
        guard !bytes.contains(UInt8(ascii: "x")), !bytes.contains(UInt8(ascii: "X")) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // Most cells have no spaces around them: parse them as they are (trimming goes through NSString).
        if let first = bytes.first, let last = bytes.last, first != 0x20, first != 0x09, last != 0x20, last != 0x09 {
            return Double(text)
        }
        return Double(text.trimmingCharacters(in: .whitespaces))
    }

    /// A plain decimal (`-12.5`, `3e-4`, `0.66845540886198762`) read exactly, or `nil` for anything else, which
    /// then takes the full parser. Up to 15 significant digits with a power of ten within ±22, its digits and
    /// the power are both exact doubles, so one multiplication or division rounds correctly (Clinger's fast
    /// path). Up to 19 digits (what `%.17g` writes) below the decimal point, as far as 10⁻²⁷, the quotient is
    /// estimated in doubles and then checked, and moved by an ulp if need be, against the exact value in
    /// 128-bit integers (`nearestDouble`): what `strtod` gives, without its arbitrary precision.
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
                guard digits <= 19 else { return nil }
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
        if mantissa == 0 { return negative ? -0.0 : 0 }
        let magnitude: Double
        if digits <= 15, (-22...22).contains(exponent) {
            magnitude = exponent >= 0 ? Double(mantissa) * powersOfTen[exponent] : Double(mantissa) / powersOfTen[-exponent]
        } else if exponent == 0 {
            magnitude = Double(mantissa)  // an integer of up to 19 digits: one correctly rounded conversion
        } else if (-27 ... -1).contains(exponent), let nearest = nearestDouble(mantissa, overPowerOfTen: -exponent) {
            magnitude = nearest
        } else {
            return nil
        }
        return negative ? -magnitude : magnitude
    }

    /// The double nearest to `mantissa` / 10^`k` (ties to even), for 1 ≤ `k` ≤ 27, or `nil` in the rare case
    /// the estimate is too far off to be settled here. The estimate (two roundings, so within an ulp or two) is
    /// tested against the midpoints between it and its neighbours: whether `mantissa / (5^k · 2^k)` lies above
    /// `m · 2^e` is whether `mantissa` lies above `m · 5^k · 2^(e+k)`, two integers of at most 118 bits.
    static func nearestDouble(_ mantissa: UInt64, overPowerOfTen k: Int) -> Double? {
        let fivePower = UInt128(powersOfFive[k])
        // The sign of mantissa / 10^k − m · 2^e.
        func compare(_ m: UInt64, _ e: Int) -> Int? {
            let shift = e + k
            var left = UInt128(mantissa), right = UInt128(m) * fivePower
            if shift >= 0 {
                guard shift <= 8 else { return nil }
                right <<= UInt128(shift)
            } else {
                guard shift >= -63 else { return nil }
                left <<= UInt128(-shift)
            }
            return left < right ? -1 : left > right ? 1 : 0
        }
        var estimate = k <= 22 ? Double(mantissa) / powersOfTen[k] : Double(mantissa) / powersOfTen[22] / powersOfTen[k - 22]
        for _ in 0..<4 {
            guard estimate.isNormal else { return nil }
            // estimate = m · 2^e, m of 53 bits; its neighbours' midpoints are (2m ± 1) · 2^(e−1), but the one
            // below a power of two is (4m − 1) · 2^(e−2).
            let m = estimate.significandBitPattern | (1 << 52), e = Int(estimate.exponentBitPattern) - 1075
            guard let above = compare(2 * m + 1, e - 1),
                  let below = m == 1 << 52 ? compare(4 * m - 1, e - 2) : compare(2 * m - 1, e - 1)
            else { return nil }
            if above > 0 {
                estimate = estimate.nextUp
            } else if below < 0 {
                estimate = estimate.nextDown
            } else if above == 0 || below == 0 {
                // Halfway: to the even significand (a power of two is even, and its neighbour below odd).
                return m & 1 == 0 ? estimate : above == 0 ? estimate.nextUp : estimate.nextDown
            } else {
                return estimate
            }
        }
        return nil
    }

    /// 5⁰ … 5²⁷, each below 2⁶³.
    static let powersOfFive: [UInt64] = (0...27).map { k in (0..<k).reduce(1) { value, _ in value * 5 } }

    /// 10⁰ … 10²², each exact.
    static let powersOfTen: [Double] = (0...22).map { k in (0..<k).reduce(1.0) { value, _ in value * 10 } }

    static func parseBool(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        // ASCII letters lower-cased by setting bit 5; no other byte in a 4- or 5-byte cell matches then.
        func matches(_ word: StaticString) -> Bool {
            bytes.count == word.utf8CodeUnitCount && zip(bytes, UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)).allSatisfy { $0 | 0x20 == $1 }
        }
        return matches("true") ? true : matches("false") ? false : nil
    }
}
