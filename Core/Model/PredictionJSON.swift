/// The JSON a served prediction is answered and stored as: `{"value": …}` for a regression, `{"class": …,
/// "probabilities": {…}}` for a classifier (the probabilities by class label). The one codec of it: predict
/// writes it, the store reads it back for windows and training, and the tests use it. (label-ingest's SQL tells
/// the two apart the same way: a `value` member is a regression's.)
public struct PredictionJSON: Sendable {
    /// The model's class labels, in the predictor's order (none for a regression).
    public let classes: [String]
    /// Each class label as a JSON string, written once.
    private let classJSON: [[UInt8]]
    private let classIndex: [String: Int]

    public init(classes: [String]?) {
        self.classes = classes ?? []
        classJSON = self.classes.map { label in
            var writer = JSONWriter()
            writer.string(label)
            return writer.bytes
        }
        classIndex = Dictionary(self.classes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Writes the prediction's members, without braces: `"value":…` or `"class":…,"probabilities":{…}`.
    public func write(_ output: Output, into writer: inout JSONWriter) {
        switch output {
        case .value(let value):
            writer.raw("\"value\":")
            writer.number(value)
        case .classification(let index, let probabilities):
            writer.raw("\"class\":")
            writer.raw(classJSON[index])
            writer.raw(",\"probabilities\":{")
            for (k, p) in probabilities.enumerated() {
                if k > 0 { writer.raw(UInt8(ascii: ",")) }
                writer.raw(classJSON[k])
                writer.raw(UInt8(ascii: ":"))
                writer.number(p)
            }
            writer.raw("}")
        }
    }

    /// The prediction as one JSON object.
    public func text(_ output: Output) -> String {
        var writer = JSONWriter(capacity: 32 + 24 * classes.count)
        writer.raw(UInt8(ascii: "{"))
        write(output, into: &writer)
        writer.raw(UInt8(ascii: "}"))
        return writer.string
    }

    /// A stored prediction read back as the predictor's output; `nil` when it is not one of this model's.
    public func output(_ text: String) -> Output? {
        guard case .object(let object)? = try? JSONParser.parse(text.utf8) else { return nil }
        if case .number(let value)? = object["value"] { return .value(value) }
        guard case .object(let probabilities)? = object["probabilities"], case .string(let predicted)? = object["class"],
              let index = classIndex[predicted]
        else { return nil }
        var p = [Double](repeating: 0, count: classes.count)
        for (name, k) in classIndex {
            guard case .number(let value)? = probabilities[name] else { return nil }
            p[k] = value
        }
        return .classification(classIndex: index, probabilities: p)
    }
}
