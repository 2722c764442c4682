import Foundation

/// What a model computes from its design vector.
public enum Predictor: Sendable, Equatable {
    /// `intercept + coefficients · x` (ridge regression).
    case linear(LinearPredictor)
    /// Logistic regression: binary (one coefficient row, for `classes[1]`) or multinomial (one row per class).
    case logistic(LogisticPredictor)
    /// Gradient-boosted trees (trained here, or imported from XGBoost or LightGBM).
    case trees(TreeEnsemble)

    public func predict(_ x: UnsafeBufferPointer<Double>) -> Output {
        switch self {
        case .linear(let model): .value(model.intercept + dot(model.coefficients, x))
        case .logistic(let model): model.predict(x)
        case .trees(let model): model.predict(x)
        }
    }

    public func predict(_ x: [Double]) -> Output {
        x.withUnsafeBufferPointer { predict($0) }
    }
}

/// The result for one instance.
public enum Output: Sendable, Equatable {
    case value(Double)
    /// The predicted class (index into the model's classes: the most probable, the first on ties) and the
    /// probability of every class.
    case classification(classIndex: Int, probabilities: [Double])

    /// The most probable class (the first on ties) with every class's probability.
    static func mostProbable(_ probabilities: [Double]) -> Output {
        var best = 0
        for k in probabilities.indices where probabilities[k] > probabilities[best] { best = k }
        return .classification(classIndex: best, probabilities: probabilities)
    }
}

public struct LinearPredictor: Codable, Sendable, Equatable {
    public var intercept: Double
    public var coefficients: [Double]

    public init(intercept: Double, coefficients: [Double]) {
        self.intercept = intercept
        self.coefficients = coefficients
    }
}

public struct LogisticPredictor: Codable, Sendable, Equatable {
    /// Class labels in the order of the probabilities.
    public var classes: [String]
    /// One intercept per coefficient row.
    public var intercepts: [Double]
    /// Binary: a single row, the log-odds of `classes[1]`. Multiclass: one row per class (softmax).
    public var coefficients: [[Double]]

    public init(classes: [String], intercepts: [Double], coefficients: [[Double]]) {
        self.classes = classes
        self.intercepts = intercepts
        self.coefficients = coefficients
    }

    /// Raw scores: the log-odds (binary) or the K logits (multiclass).
    public func decision(_ x: UnsafeBufferPointer<Double>) -> [Double] {
        (0..<coefficients.count).map { intercepts[$0] + dot(coefficients[$0], x) }
    }

    public func predict(_ x: UnsafeBufferPointer<Double>) -> Output {
        if coefficients.count == 1 {
            let p = sigmoid(intercepts[0] + dot(coefficients[0], x))
            // scikit-learn predicts classes[1] only when the decision is strictly positive.
            return .classification(classIndex: p > 0.5 ? 1 : 0, probabilities: [1 - p, p])
        }
        return .mostProbable(softmax(decision(x)))
    }
}

/// `Σ a[i] · b[i]` over the shorter of the two.
@inline(__always)
func dot(_ a: [Double], _ b: UnsafeBufferPointer<Double>) -> Double {
    a.withUnsafeBufferPointer { a in
        var sum = 0.0
        for i in 0..<min(a.count, b.count) { sum += a[i] * b[i] }
        return sum
    }
}

/// The logistic function, written so that neither tail overflows.
public func sigmoid(_ z: Double) -> Double {
    if z >= 0 { return 1 / (1 + exp(-z)) }
    let e = exp(z)
    return e / (1 + e)
}

/// Softmax with the maximum subtracted first, so large logits do not overflow.
public func softmax(_ z: [Double]) -> [Double] {
    let m = z.max() ?? 0
    let e = z.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

extension Predictor: Codable {
    private enum CodingKeys: String, CodingKey { case type }
    private enum Kind: String, Codable { case linear, logistic, trees }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(Kind.self, forKey: .type) {
        case .linear: self = .linear(try LinearPredictor(from: decoder))
        case .logistic: self = .logistic(try LogisticPredictor(from: decoder))
        case .trees: self = .trees(try TreeEnsemble(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .linear(let model):
            try c.encode(Kind.linear, forKey: .type)
            try model.encode(to: encoder)
        case .logistic(let model):
            try c.encode(Kind.logistic, forKey: .type)
            try model.encode(to: encoder)
        case .trees(let model):
            try c.encode(Kind.trees, forKey: .type)
            try model.encode(to: encoder)
        }
    }
}

extension Predictor {
    /// The family name of a predictor, for models whose artifact does not say how they were trained.
    public var family: String {
        switch self {
        case .linear: "ridge"
        case .logistic: "logistic"
        case .trees: "gbdt"
        }
    }
}
