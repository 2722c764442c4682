/// Validates request instances against a model's feature schema and turns them into design vectors.
///
/// Built once per loaded model; `encode` does one dictionary lookup per feature and allocates nothing but
/// the design vector it fills.
public struct InstanceEncoder: Sendable {
    /// What was noticed while encoding an instance, for data-quality counts.
    public struct Notes: Sendable, Equatable {
        /// Features absent or `null` and imputed.
        public var imputed = 0
        /// Categorical values never seen in training, encoded as all zeros.
        public var unknownCategories = 0
        public init() {}
    }

    private struct Slot: Sendable {
        var feature: Feature
        var column: Preprocessing.Column
        /// Where this feature's design columns start.
        var offset: Int
        /// Category → position within the one-hot block.
        var categoryIndex: [String: Int]
    }

    private let slots: [Slot]
    private let featureNames: [String]
    private let base: [Double]
    public let width: Int
    /// Reject categories never seen in training instead of encoding them as unknown.
    public var strictCategories: Bool

    /// - Precondition: `preprocessing` covers every feature once (`ModelArtifact` validates this on load).
    public init(features: [Feature], preprocessing: Preprocessing, strictCategories: Bool = false) {
        var columnByFeature: [String: (Preprocessing.Column, Int)] = [:]
        var offset = 0
        for column in preprocessing.columns {
            columnByFeature[column.feature] = (column, offset)
            offset += column.width
        }
        width = offset
        slots = features.map { feature in
            let (column, offset) = columnByFeature[feature.name]!
            var index: [String: Int] = [:]
            switch column {
            case .oneHot(_, _, let categories), .code(_, let categories):
                for (i, category) in categories.enumerated() { index[category] = i }
            default: break
            }
            return Slot(feature: feature, column: column, offset: offset, categoryIndex: index)
        }
        featureNames = features.map(\.name)
        self.strictCategories = strictCategories
        // The vector of an instance whose every feature is imputed.
        var base = [Double](repeating: 0, count: offset)
        for slot in slots { Self.write(imputed: slot, into: &base) }
        self.base = base
    }

    /// Validates `instance` and returns its design vector.
    ///
    /// - Parameter path: the instance's place in the request, e.g. `instances[3]`, used in errors.
    /// - Throws: `InputError` naming the first fault in schema order, then unknown features in sorted order.
    public func encode(_ instance: JSONValue, path: @autoclosure () -> String, notes: inout Notes) throws(InputError)
        -> [Double]
    {
        guard case .object(let values) = instance else {
            throw .notAnObject(found: instance.typeName, path: path())
        }
        var x = base
        var seen = 0
        for slot in slots {
            let name = slot.feature.name
            guard let value = values[name] else {
                if slot.feature.required { throw .missingFeature(name, path: path()) }
                notes.imputed += 1
                continue
            }
            seen += 1
            try write(value, slot: slot, into: &x, notes: &notes, path: path)
        }
        if seen < values.count {
            let unknown = values.keys.filter { !featureNames.contains($0) }.sorted()
            throw .unknownFeature(unknown[0], expected: featureNames, path: "\(path()).\(unknown[0])")
        }
        return x
    }

    private func write(
        _ value: JSONValue, slot: Slot, into x: inout [Double], notes: inout Notes, path: () -> String
    ) throws(InputError) {
        let name = slot.feature.name
        if case .null = value {
            if slot.feature.required { throw .nullFeature(name, path: "\(path()).\(name)") }
            notes.imputed += 1
            return
        }
        switch slot.column {
        case .standardize(_, _, let mean, let scale):
            guard case .number(let number) = value else {
                throw .wrongType(name, expected: .numeric, found: value.typeName, path: "\(path()).\(name)")
            }
            guard Storable.accepts(number) else { throw .nonFinite(name, path: "\(path()).\(name)") }
            x[slot.offset] = (number - mean) / scale
        case .boolean:
            guard case .flag(let flag) = Feature.Kind.boolean.read(value) else {
                throw .wrongType(name, expected: .boolean, found: value.typeName, path: "\(path()).\(name)")
            }
            x[slot.offset] = flag ? 1 : 0
        case .raw:
            switch slot.feature.kind.read(value) {
            case .number(let number):
                guard Storable.accepts(number) else { throw .nonFinite(name, path: "\(path()).\(name)") }
                x[slot.offset] = number
            case .flag(let flag): x[slot.offset] = flag ? 1 : 0
            default:
                throw .wrongType(name, expected: slot.feature.kind, found: value.typeName, path: "\(path()).\(name)")
            }
        case .code(_, let categories):
            guard case .category(let category) = Feature.Kind.categorical.read(value) else {
                throw .wrongType(name, expected: .categorical, found: value.typeName, path: "\(path()).\(name)")
            }
            guard Storable.accepts(category) else { throw .nulCharacter(name, path: "\(path()).\(name)") }
            if let index = slot.categoryIndex[category] {
                x[slot.offset] = Double(index)
            } else if strictCategories {
                throw .unknownCategory(name, value: category, allowed: categories, path: "\(path()).\(name)")
            } else {
                x[slot.offset] = -1
                notes.unknownCategories += 1
            }
        case .oneHot(_, _, let categories):
            guard case .category(let category) = Feature.Kind.categorical.read(value) else {
                throw .wrongType(name, expected: .categorical, found: value.typeName, path: "\(path()).\(name)")
            }
            guard Storable.accepts(category) else { throw .nulCharacter(name, path: "\(path()).\(name)") }
            for i in 0..<categories.count { x[slot.offset + i] = 0 }
            if let index = slot.categoryIndex[category] {
                x[slot.offset + index] = 1
            } else if strictCategories {
                throw .unknownCategory(name, value: category, allowed: categories, path: "\(path()).\(name)")
            } else {
                notes.unknownCategories += 1
            }
        }
    }

    private static func write(imputed slot: Slot, into x: inout [Double]) {
        switch slot.column {
        case .standardize(_, let impute, let mean, let scale): x[slot.offset] = (impute - mean) / scale
        case .boolean(_, let impute): x[slot.offset] = impute
        case .oneHot(_, let impute, _):
            if let index = slot.categoryIndex[impute] { x[slot.offset + index] = 1 }
        case .raw, .code: x[slot.offset] = .nan
        }
    }
}
