import Foundation

/// A CSV file read into memory, by column: a header, and for each column where its cells lie in the file's
/// bytes. RFC 4180 quoting. A cell becomes a `String` only when asked for one; numbers are read from the
/// bytes (`FeatureTable`).
public struct CSV: Sendable {
    public var header: [String]
    /// The file's bytes, then the quoted cells' text unescaped.
    private var storage: [UInt8]
    /// Every row's cells, row after row, each a span of `storage`: start in the high 40 bits, length in the low 24.
    private var spans: [UInt64]

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
        precondition(rows.allSatisfy { $0.count == header.count }, "a row is not as wide as the header")
        self.header = header
        storage = []
        spans = []
        for cell in rows.joined() {
            spans.append(UInt64(storage.count) << 24 | UInt64(cell.utf8.count))
            storage.append(contentsOf: cell.utf8)
        }
    }

    public init(contentsOf url: URL) throws {
        try self.init(bytes: try Self.bytes(of: url))
    }

    /// The bytes of the file at `url`, or a `ParseError` (line 0) saying why they cannot be read; for a caller
    /// that needs them besides the table (their digest), so the file is read once.
    public static func bytes(of url: URL) throws -> [UInt8] {
        do { return [UInt8](try Data(contentsOf: url)) } catch {
            // Foundation says only "error 256" of a directory.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ParseError(line: 0, message: "cannot read the file: it is a directory")
            }
            throw ParseError(line: 0, message: "cannot read the file (\(error.localizedDescription))")
        }
    }

    /// Parses CSV text. Fields may be quoted with `"` (a doubled `""` inside is one quote); line ends may be
    /// `\n` or `\r\n`; blank lines are skipped; a UTF-8 byte order mark (as Excel writes) is dropped. Every row
    /// must have as many cells as the header.
    public init(parsing text: String) throws {
        try self.init(bytes: Array(text.utf8))
    }

    /// Parses CSV bytes, as `init(parsing:)` does text.
    public init(bytes: [UInt8]) throws {
        let (header, spans, copied) = try bytes.withUnsafeBufferPointer { bytes in
            var reader = Reader(bytes: bytes)
            try reader.read()
            return (reader.header, reader.spans, reader.copied)
        }
        guard let header else { throw ParseError(line: 1, message: "the file is empty") }
        self.header = header
        storage = bytes
        storage.append(contentsOf: copied)
        self.spans = spans
    }

    /// Rows under the header.
    public var rowCount: Int { header.isEmpty ? 0 : spans.count / header.count }

    /// Every row's cells as text (for what needs whole rows; a column is read by `cells(_:)`).
    public var rows: [[String]] {
        let columns = header.indices.map { Cells(storage: storage, spans: spans, column: $0, width: header.count) }
        return (0..<rowCount).map { row in columns.map { $0[row] } }
    }

    /// The same file with only the given rows, in the given order.
    public func selecting(rows order: [Int]) -> CSV {
        var selected = self
        let width = header.count
        selected.spans = order.flatMap { row in spans[(row * width)..<((row + 1) * width)] }
        return selected
    }

    /// The cells of one column.
    public func cells(_ name: String) -> Cells? {
        header.firstIndex(of: name).map { Cells(storage: storage, spans: spans, column: $0, width: header.count) }
    }

    /// The cells of one column as text.
    public func column(_ name: String) -> [String]? {
        cells(name).map(Array.init)
    }

    /// One column's cells: each is a `String` when read by index, and its bytes in `withBytes`.
    public struct Cells: RandomAccessCollection, CellColumn, Sendable {
        let storage: [UInt8]
        let spans: [UInt64]
        let column: Int
        let width: Int

        public var startIndex: Int { 0 }
        public var endIndex: Int { spans.count / width }
        public subscript(position: Int) -> String {
            let span = spans[position * width + column], from = Int(span >> 24)
            return storage.withUnsafeBufferPointer {
                String(decoding: UnsafeBufferPointer(rebasing: $0[from..<(from + Int(span & 0xFF_FFFF))]), as: UTF8.self)
            }
        }

        public func withBytes(_ body: (_ row: Int, _ bytes: UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
            try storage.withUnsafeBufferPointer { storage in
                try spans.withUnsafeBufferPointer { spans in
                    var index = column
                    for row in 0..<(spans.count / width) {
                        let span = spans[index], from = Int(span >> 24)
                        try body(row, UnsafeBufferPointer(rebasing: storage[from..<(from + Int(span & 0xFF_FFFF))]))
                        index += width
                    }
                }
            }
        }
    }

    /// The parser. A plain cell is a span of the bytes as they are, found by a tight scan for the next comma or
    /// line end; a cell with quotes or a carriage return is read byte by byte and copied out, unescaped, after
    /// the file's bytes. Invalid UTF-8 is repaired when a cell becomes a `String`.
    private struct Reader {
        static let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\""),
                   carriageReturn = UInt8(ascii: "\r")
        /// The longest cell the reader takes (its length has 24 bits).
        static let longestCell = 1 << 24 - 1

        let bytes: UnsafeBufferPointer<UInt8>
        let end: Int
        /// The header, once its record is read.
        var header: [String]?
        var headerSpans: [UInt64] = []
        var spans: [UInt64] = []
        var copied: [UInt8] = []
        /// Cells in the record so far.
        var cells = 0
        var line = 1
        var recordLine = 1

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
            end = bytes.count
        }

        mutating func read() throws {
            let bytes = self.bytes
            var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            while true {
                // A field starts at i.
                if i == end {
                    if cells > 0 { try add(from: i, length: 0); try endRecord() }
                    return
                }
                var j = i
                while j < end {
                    let b = bytes[j]
                    if b == Self.comma || b == Self.newline || b == Self.quote || b == Self.carriageReturn { break }
                    j += 1
                }
                if j < end, bytes[j] == Self.quote || bytes[j] == Self.carriageReturn {
                    j = try copyOut(from: i, at: j)
                } else {
                    try add(from: i, length: j - i)
                }
                if j == end {
                    try endRecord()
                    return
                }
                if bytes[j] == Self.newline {
                    try endRecord()
                    line += 1
                    recordLine = line
                }
                i = j + 1
            }
        }

        /// Reads a field with a quote or carriage return (at `special`) byte by byte from `start`, into `copied`;
        /// returns where it ends (its comma or line end, or the end of the bytes).
        mutating func copyOut(from start: Int, at special: Int) throws -> Int {
            let bytes = self.bytes, copiedStart = copied.count
            copied.append(contentsOf: bytes[start..<special])
            var i = special, inQuotes = false, wasQuoted = false
            scan: while i < end {
                let b = bytes[i]
                if inQuotes {
                    if b == Self.quote {
                        if i + 1 < end, bytes[i + 1] == Self.quote {
                            copied.append(b)
                            i += 1
                        } else {
                            inQuotes = false
                        }
                    } else {
                        if b == Self.newline { line += 1 }
                        copied.append(b)
                    }
                } else {
                    switch b {
                    case Self.comma, Self.newline: break scan
                    case Self.carriageReturn: break
                    case Self.quote:
                        guard copied.count == copiedStart, !wasQuoted else {
                            throw ParseError(line: line, message: "a quote inside an unquoted field")
                        }
                        inQuotes = true
                        wasQuoted = true
                    default: copied.append(b)
                    }
                }
                i += 1
            }
            if inQuotes { throw ParseError(line: recordLine, message: "a quoted field is not closed") }
            try add(from: end + copiedStart, length: copied.count - copiedStart)
            return i
        }

        mutating func add(from start: Int, length: Int) throws {
            guard length <= Self.longestCell else {
                throw ParseError(line: recordLine, message: "a cell longer than \(Self.longestCell) bytes")
            }
            cells += 1
            let span = UInt64(start) << 24 | UInt64(length)
            if let header {
                if cells <= header.count { spans.append(span) }
            } else {
                headerSpans.append(span)
            }
        }

        mutating func endRecord() throws {
            defer { cells = 0 }
            // A blank line.
            if cells == 1, (header == nil ? headerSpans.last! : spans.last!) & 0xFF_FFFF == 0 {
                if header == nil { headerSpans.removeAll() } else { spans.removeLast() }
                return
            }
            guard let header else {
                let names = headerSpans.map { span in
                    let from = Int(span >> 24), to = from + Int(span & 0xFF_FFFF)
                    return from < end || to == from ? String(decoding: UnsafeBufferPointer(rebasing: bytes[min(from, end)..<min(to, end)]), as: UTF8.self)
                                                    : String(decoding: copied[(from - end)..<(to - end)], as: UTF8.self)
                }
                for (index, name) in names.enumerated() where name.isEmpty {
                    throw ParseError(line: recordLine, message: "column \(index + 1) has no name")
                }
                var seen: Set<String> = []
                if let duplicate = names.first(where: { !seen.insert($0).inserted }) {
                    throw ParseError(line: recordLine, message: "column '\(duplicate)' appears twice")
                }
                self.header = names
                return
            }
            guard cells == header.count else {
                throw ParseError(line: recordLine, message: "has \(cells) cells, the header has \(header.count)")
            }
        }
    }
}

/// A column of cells that can be read as bytes, one after the other: a CSV file's column, or strings.
public protocol CellColumn {
    var count: Int { get }
    /// Calls `body` with each cell's row and UTF-8 bytes, in order.
    func withBytes(_ body: (_ row: Int, _ bytes: UnsafeBufferPointer<UInt8>) throws -> Void) rethrows
}

extension Array: CellColumn where Element == String {
    public func withBytes(_ body: (_ row: Int, _ bytes: UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        for (row, cell) in enumerated() {
            var cell = cell
            try cell.withUTF8 { try body(row, $0) }
        }
    }
}
