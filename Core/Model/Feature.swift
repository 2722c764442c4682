/// One input feature of a model, as the feature schema declares it.
public struct Feature: Codable, Sendable, Equatable {
    /// How a feature's values are typed in a request and in training data.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A finite JSON number.
        case numeric
        /// A JSON string from a set of categories (an integer number is accepted and read as its decimal text).
        case categorical
        /// A JSON `true` or `false` (the numbers 0 and 1 are accepted too).
        case boolean
    }

    /// The range of values seen in the training data; serving does not enforce it, monitoring counts values outside.
    public struct Range: Codable, Sendable, Equatable {
        public var min: Double
        public var max: Double
        public init(min: Double, max: Double) {
            self.min = min
            self.max = max
        }
    }

    public var name: String
    public var kind: Kind
    /// Whether a request must carry the feature. An optional feature that is absent or `null` is imputed.
    public var required: Bool
    /// The categories seen in training (categorical features only), sorted.
    public var categories: [String]?
    /// The observed range in training (numeric features only).
    public var range: Range?

    public init(name: String, kind: Kind, required: Bool = true, categories: [String]? = nil, range: Range? = nil) {
        self.name = name
        self.kind = kind
        self.required = required
        self.categories = categories
        self.range = range
    }

    enum CodingKeys: String, CodingKey {
        case name, kind = "type", required, categories, range
    }
}
