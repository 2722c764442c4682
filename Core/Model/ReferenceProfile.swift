/// What the training data looked like, kept in the artifact so drift is measured against the data the model
/// actually learnt from.
///
/// Numeric features keep 100 quantile bins (so a KS statistic computed from the bins is within 0.01 of the
/// exact one), summary statistics and, for references of at most `rawLimit` rows, the values themselves
/// (the exact tests need them). Categorical and boolean features keep category counts. Missing values are
/// counted, never dropped silently.
public struct ReferenceProfile: Codable, Sendable, Equatable {
    /// References of at most this many rows keep their raw numeric values.
    public static let rawLimit = 1_000
    /// Quantile bins per numeric feature.
    public static let binCount = 100

    public var rows: Int
    public var features: [String: FeatureProfile]
    /// The distribution of the model's predictions on its training rows: numeric for regression (the value)
    /// and binary classifiers (the probability of the positive class), categorical for multiclass.
    public var prediction: FeatureProfile?

    public init(rows: Int, features: [String: FeatureProfile], prediction: FeatureProfile? = nil) {
        self.rows = rows
        self.features = features
        self.prediction = prediction
    }
}

/// One column of a reference profile.
public struct FeatureProfile: Codable, Sendable, Equatable {
    public var kind: Feature.Kind
    /// Rows with a value, and rows without one.
    public var count: Int
    public var missing: Int

    /// Numeric: `binCount + 1` quantile edges (NumPy's linear quantiles at i / binCount), and the count of
    /// values per bin. A value's bin is the number of inner edges `edges[1..<binCount]` at or below it — what
    /// PostgreSQL's `width_bucket(x, inner_edges)` returns — so the outer bins are open.
    public var edges: [Double]?
    public var counts: [Int]?
    public var mean: Double?
    /// Population standard deviation (ddof 0).
    public var std: Double?
    public var min: Double?
    public var max: Double?
    /// The values themselves when the reference has at most `ReferenceProfile.rawLimit` rows.
    public var values: [Double]?

    /// Categorical and boolean (`"true"`/`"false"`): rows per category.
    public var categories: [String: Int]?

    public init(kind: Feature.Kind, count: Int, missing: Int) {
        self.kind = kind
        self.count = count
        self.missing = missing
    }

    /// Profiles numeric values; NaN counts as missing.
    public static func numeric(_ values: [Double]) -> FeatureProfile {
        let present = sortedNumbers(values.filter { !$0.isNaN })
        return numeric(sorted: present, missing: values.count - present.count)
    }

    /// Profiles numeric values already in ascending order (`sortedNumbers`, no NaN) besides `missing` rows
    /// without one: a caller that needs the sorted values too sorts them once.
    public static func numeric(sorted present: [Double], missing: Int) -> FeatureProfile {
        var profile = FeatureProfile(kind: .numeric, count: present.count, missing: missing)
        guard !present.isEmpty else { return profile }
        let n = Double(present.count)
        let mean = present.reduce(0, +) / n
        profile.mean = mean
        profile.std = (present.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        profile.min = present.first
        profile.max = present.last
        let bins = ReferenceProfile.binCount
        let edges = (0...bins).map { i in
            linearQuantile(present, i == bins ? 1 : Double(i) / Double(bins))
        }
        profile.edges = edges
        var counts = [Int](repeating: 0, count: bins)
        let inner = Array(edges[1..<bins])
        for value in present { counts[binIndex(inner, value)] += 1 }
        profile.counts = counts
        if present.count <= ReferenceProfile.rawLimit { profile.values = present }
        return profile
    }

    /// Profiles categories; `nil` counts as missing.
    public static func categorical(_ values: [String?], kind: Feature.Kind = .categorical) -> FeatureProfile {
        var counts: [String: Int] = [:]
        var missing = 0
        for value in values {
            if let value { counts[value, default: 0] += 1 } else { missing += 1 }
        }
        var profile = FeatureProfile(kind: kind, count: values.count - missing, missing: missing)
        profile.categories = counts
        return profile
    }

    /// The missing share of all rows (0 when there are none).
    public var missingRate: Double {
        count + missing == 0 ? 0 : Double(missing) / Double(count + missing)
    }
}

extension ReferenceProfile {
    /// Profiles every column of a table.
    public init(table: FeatureTable, prediction: FeatureProfile? = nil) {
        var features: [String: FeatureProfile] = [:]
        for column in table.columns {
            switch column.values {
            case .numeric(let values): features[column.name] = .numeric(values)
            case .boolean(let values):
                features[column.name] = .categorical(values.map { $0.isNaN ? nil : ($0 == 1 ? "true" : "false") },
                                                     kind: .boolean)
            case .categorical(let values): features[column.name] = .categorical(values)
            }
        }
        self.init(rows: table.rowCount, features: features, prediction: prediction)
    }
}

/// NumPy's default ("linear") quantile of sorted values, with its two-sided interpolation, so edges agree with
/// `numpy.quantile` to the last bit.
public func linearQuantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let below = position.rounded(.down)
    let lower = Int(below)
    let upper = Swift.min(lower + 1, sorted.count - 1)
    let t = position - below
    let a = sorted[lower], b = sorted[upper]
    let difference = b - a
    return t >= 0.5 ? b - difference * (1 - t) : a + difference * t
}

/// How many of the sorted `edges` are at or below `x`: a value's bin (as PostgreSQL's `width_bucket`).
public func binIndex(_ edges: [Double], _ x: Double) -> Int {
    var low = 0
    var high = edges.count
    while low < high {
        let middle = (low + high) / 2
        if edges[middle] <= x { low = middle + 1 } else { high = middle }
    }
    return low
}
