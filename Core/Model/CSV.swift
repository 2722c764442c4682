import Foundation

/// A CSV file read into memory: a header and rows of cells, RFC 4180 quoting.
public struct CSV: Sendable {
    public var header: [String]
    public var rows: [[String]]

    /// Why a CSV file could not be read; `line` is 1-based.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var message: String
        /// `line 0` means the file itself (it could not be read).
        public var description: String { line > 0 ? "line \(line): \(message)" : message }
        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }
    }

    public init(header: [String], rows: [[String]]) {
        self.header = header
        self.rows = rows
    }

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ParseError(line: 0, message: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(parsing: String(decoding: data, as: UTF8.self))
    }

    /// Parses CSV text. Fields may be quoted with `"` (a doubled `""` inside is one quote); line ends may be
    /// `\n` or `\r\n`; blank lines are skipped; a UTF-8 byte order mark (as Excel writes) is dropped. Every row
    /// must have as many cells as the header.
    public init(parsing text: String) throws {
        var records: [[String]] = []
        var record: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var wasQuoted = false
        var line = 1
        var recordLine = 1
        let bytes = Array(text.utf8)
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            wasQuoted = false
        }
        func endRecord() {
            endField()
            if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
            record = []
        }
        while i < bytes.count {
            let b = bytes[i]
            if inQuotes {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(b)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if b == UInt8(ascii: "\n") { line += 1 }
                    field.append(b)
                }
            } else {
                switch b {
                case UInt8(ascii: ","): endField()
                case UInt8(ascii: "\n"):
                    endRecord()
                    line += 1
                    recordLine = line
                case UInt8(ascii: "\r"): break
                case UInt8(ascii: "\""):
                    guard field.isEmpty, !wasQuoted else {
                        throw ParseError(line: line, message: "a quote inside an unquoted field")
                    }
                    inQuotes = true
                    wasQuoted = true
                default: field.append(b)
                }
            }
            i += 1
        }
        if inQuotes { throw ParseError(line: recordLine, message: "a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty { endRecord() }
        guard let header = records.first else { throw ParseError(line: 1, message: "the file is empty") }
        for (index, name) in header.enumerated() where name.isEmpty {
            throw ParseError(line: 1, message: "column \(index + 1) has no name")
        }
        if let duplicate = Dictionary(grouping: header, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ParseError(line: 1, message: "column '\(duplicate)' appears twice")
        }
        for (index, row) in records.enumerated().dropFirst() where row.count != header.count {
            throw ParseError(line: index + 1, message: "has \(row.count) cells, the header has \(header.count)")
        }
        self.header = header
        self.rows = Array(records.dropFirst())
    }

    /// The cells of one column.
    public func column(_ name: String) -> [String]? {
        guard let index = header.firstIndex(of: name) else { return nil }
        return rows.map { $0[index] }
    }
}
