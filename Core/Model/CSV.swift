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
        self = try data.withUnsafeBytes { try CSV(bytes: $0.bindMemory(to: UInt8.self)) }
    }

    /// Parses CSV text. Fields may be quoted with `"` (a doubled `""` inside is one quote); line ends may be
    /// `\n` or `\r\n`; blank lines are skipped; a UTF-8 byte order mark (as Excel writes) is dropped. Every row
    /// must have as many cells as the header.
    public init(parsing text: String) throws {
        var text = text
        self = try text.withUTF8 { try CSV(bytes: $0) }
    }

    /// The parser, over the file's bytes (invalid UTF-8 is repaired cell by cell). A plain cell is made from its
    /// slice of the bytes; one with quotes or a carriage return is copied out as it is read.
    private init(bytes: UnsafeBufferPointer<UInt8>) throws {
        let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\""), carriageReturn = UInt8(ascii: "\r")
        var records: [[String]] = []
        var record: [String] = []
        var field: [UInt8] = []
        // Whether the field so far is bytes[start..<i] as it stands (else it is in `field`).
        var plain = true
        var inQuotes = false
        var wasQuoted = false
        var line = 1
        var recordLine = 1
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var start = i
        func copyOut() {
            guard plain else { return }
            field.removeAll(keepingCapacity: true)
            field.append(contentsOf: bytes[start..<i])
            plain = false
        }
        func endField() {
            record.append(plain ? String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                                : String(decoding: field, as: UTF8.self))
            plain = true
            wasQuoted = false
            start = i + 1
        }
        func endRecord() {
            endField()
            if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
            record = []
            record.reserveCapacity(records.first?.count ?? 0)
        }
        while i < bytes.count {
            let b = bytes[i]
            if inQuotes {
                if b == quote {
                    if i + 1 < bytes.count, bytes[i + 1] == quote {
                        field.append(b)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if b == newline { line += 1 }
                    field.append(b)
                }
            } else {
                switch b {
                case comma: endField()
                case newline:
                    endRecord()
                    line += 1
                    recordLine = line
                case carriageReturn: copyOut()
                case quote:
                    guard plain ? i == start : field.isEmpty, !wasQuoted else {
                        throw ParseError(line: line, message: "a quote inside an unquoted field")
                    }
                    copyOut()
                    inQuotes = true
                    wasQuoted = true
                default: if !plain { field.append(b) }
                }
            }
            i += 1
        }
        if inQuotes { throw ParseError(line: recordLine, message: "a quoted field is not closed") }
        if (plain ? i > start : !field.isEmpty) || !record.isEmpty { endRecord() }
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
