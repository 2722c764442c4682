import CycloneModel
import Testing

@Suite struct CSVTests {
    @Test func quotedFieldsAndCRLF() throws {
        let csv = try CSV(parsing: "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n1,\n\n")
        #expect(csv.header == ["a", "b"])
        #expect(csv.rows == [["x, y", "say \"hi\""], ["1", ""]])
    }

    /// The reader's corners: a quoted newline, a carriage return inside a field (dropped), text after a closing
    /// quote (kept), a byte order mark, blank lines, a last line without its newline, an empty quoted field.
    @Test func cornersOfTheFormat() throws {
        #expect(try CSV(parsing: "a,b\n\"x\ny\",z").rows == [["x\ny", "z"]])
        #expect(try CSV(parsing: "a\r\nb\rc\n").rows == [["bc"]])
        #expect(try CSV(parsing: "a,b\n\"ab\"cd,1\n").rows == [["abcd", "1"]])
        let marked = try CSV(parsing: "\u{FEFF}a,b\n1,2")
        #expect(marked.header == ["a", "b"] && marked.rows == [["1", "2"]])
        #expect(try CSV(parsing: "a\n\n\n1\n\n").rows == [["1"]])
        #expect(try CSV(parsing: "a,b\n1,\"\"").rows == [["1", ""]])
        #expect(try CSV(parsing: "a,b\n\"\",\"\"\n").rows == [["", ""]])
        #expect(try CSV(parsing: "a,é\nü,\"ß\"\n").rows == [["ü", "ß"]])
        #expect(throws: CSV.ParseError(line: 2, message: "a quote inside an unquoted field")) { try CSV(parsing: "a\nb\"c\n") }
        #expect(throws: CSV.ParseError(line: 2, message: "a quoted field is not closed")) { try CSV(parsing: "a,b\n\"1") }
    }

    /// A column read by its bytes gives the same cells as its text, quoted ones unescaped; rows can be picked
    /// and reordered without reading the file again.
    @Test func columnsByTheirBytesAndRowsPicked() throws {
        let csv = try CSV(parsing: "id,note\n1,plain\n2,\"a, \"\"quoted\"\"\"\r\n3,\n4,\"two\nlines\"\n")
        #expect(csv.rowCount == 4)
        var read: [String] = []
        csv.cells("note")!.withBytes { row, bytes in
            #expect(row == read.count)
            read.append(String(decoding: bytes, as: UTF8.self))
        }
        #expect(read == ["plain", "a, \"quoted\"", "", "two\nlines"])
        #expect(read == csv.column("note"))
        let picked = csv.selecting(rows: [3, 0, 0])
        #expect(picked.rows == [["4", "two\nlines"], ["1", "plain"], ["1", "plain"]])
        #expect(CSV(header: ["a", "b"], rows: [["x", "y"], ["", "z"]]).column("b") == ["y", "z"])
    }

    @Test func raggedRowNamesItsLine() {
        #expect(throws: CSV.ParseError(line: 3, message: "has 1 cells, the header has 2")) {
            try CSV(parsing: "a,b\n1,2\n3\n")
        }
        // Lines as a text editor counts them: blank lines and a quoted line break count.
        #expect(throws: CSV.ParseError(line: 5, message: "has 3 cells, the header has 2")) {
            try CSV(parsing: "a,b\n\n\"x\ny\",2\n1,2,3\n")
        }
        // The first name met again, from the left, on the header's own line.
        #expect(throws: CSV.ParseError(line: 2, message: "column 'a' appears twice")) {
            try CSV(parsing: "\nb,a,a,b,c,c\n")
        }
    }

    @Test func inference() throws {
        let csv = try CSV(parsing: "n,b,c\n1.5,true,x\n,FALSE,\n-2,,y\n")
        let table = try FeatureTable(csv: csv, columns: ["n", "b", "c"])
        #expect(table.columns.map(\.values.kind) == [.numeric, .boolean, .categorical])
        guard case .categorical(let c) = table.columns[2].values else { return }
        #expect(c == ["x", nil, "y"])
    }

    @Test func overrideThatDoesNotFitNamesTheRow() throws {
        let csv = try CSV(parsing: "n\n1\nfoo\n")
        #expect(throws: FeatureTable.TypingError(column: "n", message: "row 2: 'foo' is not a finite number")) {
            try FeatureTable(csv: csv, columns: ["n"], kinds: ["n": .numeric])
        }
    }
}
