/// How raw feature values become the numeric design vector a linear predictor reads.
///
/// Columns are applied in order; their outputs are concatenated. This matches scikit-learn's
/// `ColumnTransformer` with, per kind of feature:
/// - numeric: `SimpleImputer(strategy="mean")` then `StandardScaler()` — `(x - mean) / scale`;
/// - boolean: `SimpleImputer(strategy="most_frequent")` on 0/1, not scaled;
/// - categorical: `SimpleImputer(strategy="most_frequent")` then `OneHotEncoder(handle_unknown="ignore")` —
///   one column per training category in sorted order; a category not seen in training encodes as all zeros.
public struct Preprocessing: Codable, Sendable, Equatable {
    public enum Column: Sendable, Equatable {
        /// A numeric feature: a missing value becomes `impute`, then `(x - mean) / scale`.
        case standardize(feature: String, impute: Double, mean: Double, scale: Double)
        /// A boolean feature as 0 or 1; a missing value becomes `impute` (0 or 1).
        case boolean(feature: String, impute: Double)
        /// A categorical feature, one-hot over `categories`; a missing value becomes `impute`.
        case oneHot(feature: String, impute: String, categories: [String])
        /// A numeric or boolean feature as it is (a boolean as 0 or 1), a missing value as NaN: what tree
        /// ensembles read, routing NaN by each node's default direction.
        case raw(feature: String)
        /// A categorical feature as its position in `categories`, a category never seen as -1 and a missing
        /// value as NaN: the integer codes LightGBM's categorical splits read.
        case code(feature: String, categories: [String])

        public var feature: String {
            switch self {
            case .standardize(let feature, _, _, _), .boolean(let feature, _), .oneHot(let feature, _, _),
                 .raw(let feature), .code(let feature, _): feature
            }
        }

        /// How many design columns this produces.
        public var width: Int {
            switch self {
            case .standardize, .boolean, .raw, .code: 1
            case .oneHot(_, _, let categories): categories.count
            }
        }

        /// Names of the design columns: the feature, or `feature=category` for one-hot columns.
        public var columnNames: [String] {
            switch self {
            case .standardize(let feature, _, _, _), .boolean(let feature, _), .raw(let feature), .code(let feature, _):
                [feature]
            case .oneHot(let feature, _, let categories): categories.map { "\(feature)=\($0)" }
            }
        }
    }

    public var columns: [Column]

    public init(columns: [Column]) { self.columns = columns }

    /// Length of the design vector.
    public var width: Int { columns.reduce(0) { $0 + $1.width } }

    /// Names of all design columns, in order.
    public var columnNames: [String] { columns.flatMap(\.columnNames) }
}

extension Preprocessing.Column: Codable {
    private enum CodingKeys: String, CodingKey { case feature, transform, impute, mean, scale, categories }
    private enum Transform: String, Codable { case standardize, boolean, oneHot, raw, code }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let feature = try c.decode(String.self, forKey: .feature)
        switch try c.decode(Transform.self, forKey: .transform) {
        case .standardize:
            self = .standardize(feature: feature, impute: try c.decode(Double.self, forKey: .impute),
                                mean: try c.decode(Double.self, forKey: .mean),
                                scale: try c.decode(Double.self, forKey: .scale))
        case .boolean:
            self = .boolean(feature: feature, impute: try c.decode(Double.self, forKey: .impute))
        case .oneHot:
            self = .oneHot(feature: feature, impute: try c.decode(String.self, forKey: .impute),
                           categories: try c.decode([String].self, forKey: .categories))
        case .raw:
            self = .raw(feature: feature)
        case .code:
            self = .code(feature: feature, categories: try c.decode([String].self, forKey: .categories))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(feature, forKey: .feature)
        switch self {
        case .standardize(_, let impute, let mean, let scale):
            try c.encode(Transform.standardize, forKey: .transform)
            try c.encode(impute, forKey: .impute)
            try c.encode(mean, forKey: .mean)
            try c.encode(scale, forKey: .scale)
        case .boolean(_, let impute):
            try c.encode(Transform.boolean, forKey: .transform)
            try c.encode(impute, forKey: .impute)
        case .oneHot(_, let impute, let categories):
            try c.encode(Transform.oneHot, forKey: .transform)
            try c.encode(impute, forKey: .impute)
            try c.encode(categories, forKey: .categories)
        case .raw:
            try c.encode(Transform.raw, forKey: .transform)
        case .code(_, let categories):
            try c.encode(Transform.code, forKey: .transform)
            try c.encode(categories, forKey: .categories)
        }
    }
}
