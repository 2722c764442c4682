import CycloneModel
import CycloneTraining
import Testing
import Foundation

/// One case of `Tests/Fixtures/linear/cases.json` (scikit-learn Ridge / LogisticRegression).
public struct LinearCase: Decodable, Sendable, CustomTestStringConvertible {
    public struct File: Decodable, Sendable { public var cases: [LinearCase] }
    public struct NumericParameters: Decodable, Sendable { public var impute, mean, scale: Double }
    public struct BooleanParameters: Decodable, Sendable { public var impute: Double }
    public struct CategoricalParameters: Decodable, Sendable { public var impute: String; public var categories: [String] }
    public struct Parameters: Decodable, Sendable {
        public var numeric: [String: NumericParameters]
        public var boolean: [String: BooleanParameters]
        public var categorical: [String: CategoricalParameters]
    }
    public enum Prediction: Decodable, Sendable {
        case scalar(Double), vector([Double])
        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Double.self) { self = .scalar(v) } else { self = .vector(try c.decode([Double].self)) }
        }
        public var values: [Double] {
            switch self { case .scalar(let v): [v]; case .vector(let v): v }
        }
    }

    public var name: String
    public var family: String
    public var task: String
    public var alpha: Double?
    public var C: Double?
    public var target: String
    public var train: String
    public var test: String
    public var numeric: [String]
    public var boolean: [String]
    public var categorical: [String]
    public var preprocessing: Parameters
    public var classes: [String]?
    public var coefficients: [[String: Double]]
    public var intercepts: [Double]
    public var test_predictions: [Prediction]
    public var test_decision: [Prediction]

    public var testDescription: String { name }

    public static func all() throws -> [LinearCase] {
        try Fixture.load(File.self, "linear/cases.json").cases
    }

    public var featureNames: [String] { numeric + boolean + categorical }

    /// Explicit kinds, so the case does not depend on inference.
    public var kinds: [String: Feature.Kind] {
        var kinds: [String: Feature.Kind] = [:]
        for name in numeric { kinds[name] = .numeric }
        for name in boolean { kinds[name] = .boolean }
        for name in categorical { kinds[name] = .categorical }
        return kinds
    }

    /// The model scikit-learn fitted, as a Cyclone artifact.
    public func artifact() -> ModelArtifact {
        var columns: [Preprocessing.Column] = []
        var features: [Feature] = []
        for name in numeric {
            let p = preprocessing.numeric[name]!
            columns.append(.standardize(feature: name, impute: p.impute, mean: p.mean, scale: p.scale))
            features.append(Feature(name: name, kind: .numeric, required: false))
        }
        for name in boolean {
            columns.append(.boolean(feature: name, impute: preprocessing.boolean[name]!.impute))
            features.append(Feature(name: name, kind: .boolean, required: false))
        }
        for name in categorical {
            let p = preprocessing.categorical[name]!
            columns.append(.oneHot(feature: name, impute: p.impute, categories: p.categories))
            features.append(Feature(name: name, kind: .categorical, required: false, categories: p.categories))
        }
        let pre = Preprocessing(columns: columns)
        let rows = coefficients.map { row in pre.columnNames.map { row[$0]! } }
        let predictor: Predictor = family == "ridge"
            ? .linear(LinearPredictor(intercept: intercepts[0], coefficients: rows[0]))
            : .logistic(LogisticPredictor(classes: classes!, intercepts: intercepts, coefficients: rows))
        let task: ModelArtifact.Task = switch self.task {
        case "regression": .regression
        case "binary": .binary
        default: .multiclass
        }
        return ModelArtifact(name: name, version: "sklearn", task: task, target: target, features: features,
                             preprocessing: pre, predictor: predictor)
    }

    /// The model Cyclone's own trainer fits to this case's training file, with its settings.
    public func trainedModel() throws -> ModelArtifact {
        let csv = try CSV(contentsOf: Fixture.url(train))
        let table = try FeatureTable(csv: csv, columns: featureNames, kinds: kinds)
        let labels = FeatureTable.Column(
            name: target,
            values: try FeatureTable.parse(csv.column(target)!, as: family == "ridge" ? .numeric : .categorical,
                                           column: target))
        var options = TrainingOptions(family: Family(rawValue: family)!)
        if let alpha { options.alpha = alpha }
        if let C { options.c = C }
        return try Trainer(options: options).train(name: name, version: "1", features: table, target: labels)
    }

    /// The test rows as request instances: an empty cell is left out (a missing value).
    public func testInstances() throws -> [JSONValue] {
        let csv = try CSV(contentsOf: Fixture.url(test))
        let kinds = self.kinds
        return csv.rows.map { row in
            var object: [String: JSONValue] = [:]
            for (name, cell) in zip(csv.header, row) where name != target && !cell.isEmpty {
                switch kinds[name]! {
                case .numeric: object[name] = .number(Double(cell)!)
                case .boolean: object[name] = .bool(cell == "true")
                case .categorical: object[name] = .string(cell)
                }
            }
            return .object(object)
        }
    }
}
