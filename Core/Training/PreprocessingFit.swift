import CycloneModel

/// Why a model could not be trained on the data given.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The feature schema and preprocessing learnt from a table, as scikit-learn's imputers, `StandardScaler`
/// and `OneHotEncoder` would learn them (see `Preprocessing`).
public struct FittedPreprocessing: Sendable {
    public var features: [Feature]
    public var preprocessing: Preprocessing

    /// An already fitted preprocessing (from a model file), to transform tables with.
    public init(features: [Feature], preprocessing: Preprocessing) {
        self.features = features
        self.preprocessing = preprocessing
    }

    /// - Parameter optional: features that may be absent in requests even though training had no gaps
    ///   (a feature with missing values in training is always optional).
    ///   `forTrees` keeps numbers and booleans as they are and categories as codes, missing values as NaN
    ///   (what tree ensembles read), rather than imputing, scaling and one-hot encoding them.
    public init(fitting table: FeatureTable, optional: Set<String> = [], forTrees: Bool = false) throws(TrainingError) {
        var features: [Feature] = []
        var columns: [Preprocessing.Column] = []
        for column in table.columns {
            let name = column.name
            switch column.values {
            case .numeric(let values):
                let present = values.filter { !$0.isNaN }
                guard !present.isEmpty else { throw TrainingError("column '\(name)' has no values") }
                let mean = present.reduce(0, +) / Double(present.count)
                // Imputed cells equal the mean, so they add nothing to the sum of squares but count in n,
                // as StandardScaler sees them after SimpleImputer.
                let variance = present.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                var scale = variance.squareRoot()
                if scale < 10 * Double.ulpOfOne { scale = 1 }  // scikit-learn's rule for constant columns
                // Values near a double's limit (1e308) overflow the mean or the spread: a linear model could not
                // be written, so say which column (trees read the values as they are).
                guard forTrees || (mean.isFinite && scale.isFinite) else {
                    throw TrainingError("column '\(name)' has values too large to standardize (up to \(present.map(abs).max()!)): rescale it, or train trees (--family gbdt)")
                }
                columns.append(.standardize(feature: name, impute: mean, mean: mean, scale: scale))
                features.append(Feature(name: name, kind: .numeric,
                                        required: present.count == values.count && !optional.contains(name),
                                        range: .init(min: present.min()!, max: present.max()!)))
            case .boolean(let values):
                let present = values.filter { !$0.isNaN }
                guard !present.isEmpty else { throw TrainingError("column '\(name)' has no values") }
                let ones = present.reduce(0, +)
                // Most frequent; on a tie the smaller value, as SimpleImputer does.
                let impute: Double = ones > Double(present.count) - ones ? 1 : 0
                columns.append(.boolean(feature: name, impute: impute))
                features.append(Feature(name: name, kind: .boolean,
                                        required: present.count == values.count && !optional.contains(name)))
            case .categorical(let values):
                var counts: [String: Int] = [:]
                for value in values { if let value { counts[value, default: 0] += 1 } }
                guard !counts.isEmpty else { throw TrainingError("column '\(name)' has no values") }
                let categories = counts.keys.sorted()
                // Most frequent; on a tie the first in sorted order.
                let impute = categories.max { counts[$0]! < counts[$1]! || (counts[$0]! == counts[$1]! && $0 > $1) }!
                columns.append(.oneHot(feature: name, impute: impute, categories: categories))
                features.append(Feature(name: name, kind: .categorical,
                                        required: !values.contains(nil) && !optional.contains(name),
                                        categories: categories))
            }
        }
        self.features = features
        self.preprocessing = Preprocessing(columns: forTrees ? columns.map { column in
            switch column {
            case .oneHot(let feature, _, let categories): .code(feature: feature, categories: categories)
            default: .raw(feature: column.feature)
            }
        } : columns)
    }

    /// The design matrix of `table` (row-major, `rowCount × preprocessing.width`), as `InstanceEncoder`
    /// would encode each row.
    public func designMatrix(_ table: FeatureTable) -> [Double] {
        let n = table.rowCount
        let p = preprocessing.width
        var x = [Double](repeating: 0, count: n * p)
        let byName = Dictionary(uniqueKeysWithValues: table.columns.map { ($0.name, $0.values) })
        var offset = 0
        for column in preprocessing.columns {
            let values = byName[column.feature]!
            switch (column, values) {
            case (.standardize(_, let impute, let mean, let scale), .numeric(let v)):
                for i in 0..<n { x[i * p + offset] = ((v[i].isNaN ? impute : v[i]) - mean) / scale }
            case (.boolean(_, let impute), .boolean(let v)):
                for i in 0..<n { x[i * p + offset] = v[i].isNaN ? impute : v[i] }
            case (.oneHot(_, let impute, let categories), .categorical(let v)):
                let index = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
                for i in 0..<n {
                    if let k = index[v[i] ?? impute] { x[i * p + offset + k] = 1 }
                }
            case (.raw, .numeric(let v)), (.raw, .boolean(let v)):
                for i in 0..<n { x[i * p + offset] = v[i] }
            case (.code(_, let categories), .categorical(let v)):
                let index = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
                for i in 0..<n { x[i * p + offset] = v[i].map { index[$0].map(Double.init) ?? -1 } ?? .nan }
            default:
                preconditionFailure("column '\(column.feature)' changed kind between fit and transform")
            }
            offset += column.width
        }
        return x
    }
}
