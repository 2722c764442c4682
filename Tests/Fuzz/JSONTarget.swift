// libFuzzer target: the hand-written JSON parser (Core/Model/JSONParser.swift), built by scripts/fuzz with the
// CycloneModel sources. Whatever the bytes: no crash, no hang; a document it accepts is written back by
// JSONWriter and read again to the same value; and skipping unused members accepts and refuses exactly what
// building them does.

func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let full = Result { () throws(JSONParseError) in try JSONParser.parse(bytes) }
    let skipping = Result { () throws(JSONParseError) in try JSONParser.parse(bytes, members: ["instances"]) }
    switch (full, skipping) {
    case (.success(let value), .success(let kept)):
        guard let again = try? JSONParser.parse(Array(value.jsonText.utf8)), again == value else {
            fatalError("the writer's text of an accepted document does not read back the same")
        }
        if case .object(let members) = value, case .object(let keptMembers) = kept {
            guard keptMembers.keys.sorted() == members.keys.sorted(), keptMembers["instances"] == members["instances"] else {
                fatalError("skipping members changed the members kept")
            }
        }
    case (.failure(let a), .failure(let b)):
        guard a.description == b.description else { fatalError("skipping members changed the error: \(a) / \(b)") }
    default:
        fatalError("skipping members changed whether the document is accepted")
    }
    return 0
}
