import CycloneModel
import Testing

@Suite struct CSVTests {
    @Test func quotedFieldsAndCRLF() throws {
        let csv = try CSV(parsing: "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n1,\n\n")
        #expect(csv.header == ["a", "b"])
        #expect(csv.rows == [["x, y", "say \"hi\""], ["1", ""]])
    }

    @Test func raggedRowNamesItsLine() {
        #expect(throws: CSV.ParseError(line: 3, message: "has 1 cells, the header has 2")) {
            try CSV(parsing: "a,b\n1,2\n3\n")
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
