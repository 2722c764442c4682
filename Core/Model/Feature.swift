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

extension Feature.Kind {
    /// A JSON value read as this kind, the one rule serving, monitoring and retraining share.
    public enum Reading: Sendable, Equatable {
        /// Absent or `null`.
        case missing
        /// A value of the wrong type (a string for a number, 2 for a boolean).
        case invalid
        case number(Double)
        case flag(Bool)
        case category(String)
    }

    /// Numeric: a JSON number. Boolean: `true`/`false`, or the numbers 1 and 0. Categorical: a string, or an
    /// integral number read as its decimal text.
    public func read(_ value: JSONValue?) -> Reading {
        switch (self, value) {
        case (_, nil), (_, .null?): .missing
        case (.numeric, .number(let x)?): .number(x)
        case (.boolean, .bool(let flag)?): .flag(flag)
        case (.boolean, .number(let n)?) where n == 0 || n == 1: .flag(n == 1)
        case (.categorical, .string(let text)?): .category(text)
        case (.categorical, .number(let n)?) where n == n.rounded() && abs(n) < 1e15: .category(String(Int64(n)))
        default: .invalid
        }
    }
}
