import CycloneModel
import Foundation
import Testing

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func valuesOfEveryKind() throws {
        #expect(try parse(#" {"a": [1, -2.5, 3e2, 0, -0.0, true, false, null], "b": {"c": "d"}, "": ""} "#) == [
            "a": [1, -2.5, 300, 0, 0, true, false, nil], "b": ["c": "d"], "": "",
        ])
        #expect(try parse("[]") == [])
        #expect(try parse("{}") == [:])
        #expect(try parse("\"x\"") == "x")
    }

    @Test func stringEscapesAndUnicode() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC\ud83d\ude00 é""#) == .string("é€😀 é"))
    }

    /// Numbers parse as Foundation parses them (correctly rounded).
    @Test(arguments: ["0", "-1", "123456789012345", "1234567890123456789", "0.1", "-3.14159265358979", "1e-7",
                      "2.5E+10", "9007199254740993", "1.7976931348623157e308", "5e-324"])
    func numbersMatchFoundation(_ text: String) throws {
        let expected = try JSONSerialization.jsonObject(with: Data("[\(text)]".utf8), options: []) as! [NSNumber]
        #expect(try parse(text) == .number(expected[0].doubleValue))
    }

    @Test(arguments: [
        ("", "unexpected end of the document, expected a value at line 1, column 1"),
        ("{\"a\": 1,}", "expected a quoted member name at line 1, column 9"),
        ("[1, 2", "expected ',' or ']' in an array at line 1, column 6"),
        ("{\"a\" 1}", "expected ':' after the member name at line 1, column 6"),
        ("[1]\n x", "unexpected text after the JSON value at line 2, column 2"),
        ("[01]", "expected ',' or ']' in an array at line 1, column 3"),
        ("[1.]", "a number needs a digit after '.' at line 1, column 4"),
        ("[1e999]", "the number 1e999 does not fit a 64-bit float at line 1, column 2"),
        ("[NaN]", "unexpected character 'N', expected a value at line 1, column 2"),
        ("[tru]", "unexpected word, expected true at line 1, column 2"),
        ("\"a\nb\"", "a control character inside a string must be escaped at line 1, column 3"),
        ("\"abc", "a string is not closed at line 1, column 5"),
        ("\"\\x\"", "'\\x' is not a JSON escape at line 1, column 3"),
        ("\"\\ud83d\"", "a \\u escape holds half a surrogate pair at line 1, column 8"),
        ("'a'", "unexpected character ''', expected a value at line 1, column 1"),
    ])
    func malformedDocumentsSayWhatAndWhere(_ text: String, _ message: String) {
        #expect(throws: (any Error).self) { try parse(text) }
        do { _ = try parse(text) } catch { #expect("\(error)" == message) }
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func depthIsLimited() throws {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        _ = try parse(fine)
    }

    /// What JSONWriter writes, JSONParser reads back.
    @Test func roundTripsThroughTheWriter() throws {
        let value: JSONValue = ["text": "quote \" slash \\ tab \t ctrl \u{1} emoji 😀", "n": [1.5, -2, 1e-300, 123456789], "ok": true]
        #expect(try parse(value.jsonText) == value)
    }

    /// Members a request does not use are checked as strictly as the others but not built: they stand as null.
    @Test func unusedMembersAreCheckedNotBuilt() throws {
        let text = #"{"keep": [1, {"a": "b"}], "skip": {"a": [1, "x\u00e9", true, null, {"deep": [[]]}]}, "pad": "\#(String(repeating: "p", count: 1000))"}"#
        let value = try Array(text.utf8).withUnsafeBufferPointer { try JSONParser.parse($0, members: ["keep"]) }
        #expect(value == ["keep": [1, ["a": "b"]], "skip": nil, "pad": nil])
        // Not an object at the top: members mean nothing.
        #expect(try Array("[1]".utf8).withUnsafeBufferPointer { try JSONParser.parse($0, members: ["keep"]) } == [1])
    }

    /// Every malformed value is refused inside a skipped member too, with the same words.
    @Test(arguments: ["", "{\"a\": 1,}", "[1, 2", "{\"a\" 1}", "[01]", "[1.]", "[1e999]", "[NaN]", "[tru]", "\"a\nb\"",
                      "\"abc", "\"\\x\"", "\"\\ud83d\"", "'a'", "\"\u{7F}\u{1}\""])
    func malformedUnusedMembersAreRefused(_ inner: String) throws {
        let text = #"{"keep": 1, "skip": "# + inner + "}"
        var expected = ""
        do { _ = try parse(text) } catch { expected = "\(error)" }
        #expect(!expected.isEmpty, "\(text) parsed")
        let bytes = Array(text.utf8)
        do {
            _ = try bytes.withUnsafeBufferPointer { try JSONParser.parse($0, members: ["keep"]) }
            Issue.record("\(text) parsed with the member skipped")
        } catch {
            #expect("\(error)" == expected)
        }
        let invalid: [UInt8] = Array(#"{"keep": 1, "skip": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(throws: JSONParseError.self) { try invalid.withUnsafeBufferPointer { try JSONParser.parse($0, members: ["keep"]) } }
    }

}
