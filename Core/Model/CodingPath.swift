extension Array where Element == any CodingKey {
    /// The path as a pointer into a JSON document, e.g. `instances[2].temp` (empty at the top level).
    public var jsonPath: String {
        var text = ""
        for key in self {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text
    }
}
