import Foundation

/// The model file: everything inference needs, in one versioned JSON document.
///
/// Readers ignore fields they do not know, so a file written by a later Cyclone of the same `format` loads;
/// a higher `format` is refused with a message saying so.
public struct ModelArtifact: Codable, Sendable, Equatable {
    /// The artifact format this code writes and the highest it reads.
    public static let currentFormat = 1

    public enum Task: String, Codable, Sendable {
        case regression, binary, multiclass
    }

    public var format: Int
    public var name: String
    public var version: String
    public var task: Task
    /// The label column the model was trained to predict.
    public var target: String?
    public var features: [Feature]
    public var preprocessing: Preprocessing
    public var predictor: Predictor
    public var training: TrainingInfo?
    /// The training data's distribution, for drift; absent in files written before profiles existed.
    public var profile: ReferenceProfile?

    public init(
        name: String, version: String, task: Task, target: String?, features: [Feature],
        preprocessing: Preprocessing, predictor: Predictor, training: TrainingInfo? = nil,
        profile: ReferenceProfile? = nil
    ) {
        self.format = Self.currentFormat
        self.name = name
        self.version = version
        self.task = task
        self.target = target
        self.features = features
        self.preprocessing = preprocessing
        self.predictor = predictor
        self.training = training
        self.profile = profile
    }

    /// Class labels of a classifier, `nil` for regression.
    public var classes: [String]? {
        switch predictor {
        case .logistic(let model): model.classes
        case .trees(let model): model.classes
        case .linear: nil
        }
    }
}

/// How and on what a model was trained.
public struct TrainingInfo: Codable, Sendable, Equatable {
    /// `ridge` or `logistic`.
    public var family: String
    /// The trainer's settings, e.g. `alpha` for ridge, `C` for logistic.
    public var parameters: [String: Double]
    public var rows: Int
    /// When training finished, to the second (the file stores ISO 8601 without fractions).
    public var trainedAt: Date?
    /// Metrics on the data held out from training, by name (e.g. `rmse`, `accuracy`), and how many rows
    /// that was.
    public var holdoutMetrics: [String: Double]?
    public var holdoutRows: Int?
    /// Its per-row losses on that holdout, the loss it was expected to have: the loss trigger's second reference.
    public var holdoutLoss: HoldoutLoss?
    /// The version this one was retrained from.
    public var parentVersion: String?
    /// Seconds the predictor's fit took (preprocessing and binning included; profiling and scoring not).
    public var fitSeconds: Double?

    public init(
        family: String, parameters: [String: Double], rows: Int, trainedAt: Date? = nil,
        holdoutMetrics: [String: Double]? = nil, parentVersion: String? = nil
    ) {
        self.family = family
        self.parameters = parameters
        self.rows = rows
        self.trainedAt = trainedAt.map { Date(timeIntervalSince1970: $0.timeIntervalSince1970.rounded(.down)) }
        self.holdoutMetrics = holdoutMetrics
        self.parentVersion = parentVersion
    }
}

/// A model's per-row losses on the rows held out from its training (the absolute error of a regression, the
/// log loss of a classifier), in time order, kept as the loss trigger tests them: the live loss is tested against
/// the loss the version was expected to have, as well as against its first live window, so that a version poor
/// from its first week does not become its own yardstick.
public struct HoldoutLoss: Codable, Sendable, Equatable {
    /// The losses' count and mean.
    public var rows: Int
    public var mean: Double
    /// The losses averaged in `batches` consecutive batches, or the losses themselves when `batches` is 0
    /// (too few to batch).
    public var values: [Double]
    public var batches: Int

    public init(rows: Int, mean: Double, values: [Double], batches: Int) {
        self.rows = rows
        self.mean = mean
        self.values = values
        self.batches = batches
    }

    /// What makes these figures unusable as a reference (losses are finite and never negative; `batches`
    /// means of at least two losses each, or all `rows` losses), or `nil`.
    var problem: String? {
        guard rows > 0 else { return "rows must be 1 or more, found \(rows)" }
        guard mean.isFinite, mean >= 0 else { return "mean must be a finite loss (0 or more), found \(mean)" }
        guard batches >= 0, batches <= rows / 2 else {  // not 2 × batches: a hostile count would overflow
            return "batches must be between 0 and half the \(rows) rows, found \(batches)"
        }
        let expected = batches > 0 ? batches : rows
        guard values.count == expected else {
            return "values must hold \(expected) \(batches > 0 ? "batch means" : "losses"), found \(values.count)"
        }
        if let bad = values.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            return "values[\(bad)] must be a finite loss (0 or more), found \(values[bad])"
        }
        return nil
    }
}

/// Why a model file could not be loaded; `path` names the field at fault (`predictor.coefficients[3]`).
public struct ArtifactError: Error, Equatable, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

extension ModelArtifact {
    /// Reads and validates a model file.
    public static func load(contentsOf url: URL) throws(ArtifactError) -> ModelArtifact {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ArtifactError(path: "", "cannot read model file \(url.path): \(error.localizedDescription)")
        }
        return try decode(data)
    }

    /// Decodes and validates a model document.
    public static func decode(_ data: Data) throws(ArtifactError) -> ModelArtifact {
        // A newer file says so instead of failing on a field it renamed, or loading with fields it ignored. The
        // header is read alone only when the whole does not decode: a model's trees make a large document, and
        // parsing it twice was a third of a cold start.
        struct Header: Decodable { var format: Int? }
        func newer(_ format: Int?) -> ArtifactError? {
            guard let format, format > currentFormat else { return nil }
            return ArtifactError(path: "format", "format \(format) was written by a newer Cyclone (this one reads up to \(currentFormat))")
        }
        let artifact: ModelArtifact
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            artifact = try decoder.decode(ModelArtifact.self, from: data)
        } catch {
            if let newer = newer((try? JSONDecoder().decode(Header.self, from: data))?.format) { throw newer }
            if let error = error as? DecodingError { throw ArtifactError(decoding: error) }
            throw ArtifactError(path: "", "not a model file: \(error)")
        }
        if let newer = newer(artifact.format) { throw newer }
        try artifact.validate()
        return artifact
    }

    /// The document as pretty-printed JSON with sorted keys.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public func write(to url: URL) throws {
        try encoded().write(to: url, options: .atomic)
    }

    /// Checks what decoding cannot: that the parts agree with each other and every number is finite.
    public func validate() throws(ArtifactError) {
        guard format >= 1 else { throw ArtifactError(path: "format", "must be 1 or more, found \(format)") }
        guard !name.isEmpty else { throw ArtifactError(path: "name", "must not be empty") }
        guard !version.isEmpty else { throw ArtifactError(path: "version", "must not be empty") }
        guard !features.isEmpty else { throw ArtifactError(path: "features", "a model needs at least one feature") }
        var kinds: [String: Feature.Kind] = [:]
        for (i, feature) in features.enumerated() {
            let path = "features[\(i)]"
            guard !feature.name.isEmpty else { throw ArtifactError(path: "\(path).name", "must not be empty") }
            guard kinds.updateValue(feature.kind, forKey: feature.name) == nil else {
                throw ArtifactError(path: "\(path).name", "feature '\(feature.name)' is declared twice")
            }
            if let range = feature.range, !(range.min.isFinite && range.max.isFinite && range.min <= range.max) {
                throw ArtifactError(path: "\(path).range", "must be finite with min <= max")
            }
        }
        var covered: Set<String> = []
        for (i, column) in preprocessing.columns.enumerated() {
            let path = "preprocessing.columns[\(i)]"
            guard let kind = kinds[column.feature] else {
                throw ArtifactError(path: "\(path).feature", "'\(column.feature)' is not a declared feature")
            }
            guard covered.insert(column.feature).inserted else {
                throw ArtifactError(path: "\(path).feature", "feature '\(column.feature)' is transformed twice")
            }
            switch column {
            case .standardize(_, let impute, let mean, let scale):
                guard kind == .numeric else { throw kindMismatch(path, column.feature, kind, "standardize") }
                guard impute.isFinite, mean.isFinite else { throw ArtifactError(path: path, "impute and mean must be finite") }
                guard scale.isFinite, scale > 0 else { throw ArtifactError(path: "\(path).scale", "must be a finite number above 0") }
            case .boolean(_, let impute):
                guard kind == .boolean else { throw kindMismatch(path, column.feature, kind, "boolean") }
                guard impute == 0 || impute == 1 else { throw ArtifactError(path: "\(path).impute", "must be 0 or 1") }
            case .oneHot(_, _, let categories):
                guard kind == .categorical else { throw kindMismatch(path, column.feature, kind, "oneHot") }
                guard !categories.isEmpty, Set(categories).count == categories.count else {
                    throw ArtifactError(path: "\(path).categories", "must be a non-empty list without repeats")
                }
            case .raw:
                guard kind != .categorical else { throw kindMismatch(path, column.feature, kind, "raw") }
            case .code(_, let categories):
                guard kind == .categorical else { throw kindMismatch(path, column.feature, kind, "code") }
                guard Set(categories).count == categories.count else {
                    throw ArtifactError(path: "\(path).categories", "must not repeat a category")
                }
            }
        }
        if let missing = features.first(where: { !covered.contains($0.name) }) {
            throw ArtifactError(path: "preprocessing.columns", "feature '\(missing.name)' has no transform")
        }
        let width = preprocessing.width
        switch predictor {
        case .linear(let model):
            guard task == .regression else {
                throw ArtifactError(path: "predictor.type", "a linear predictor serves regression, but task is \(task.rawValue)")
            }
            try checkRow(model.coefficients, width: width, path: "predictor.coefficients")
            guard model.intercept.isFinite else { throw ArtifactError(path: "predictor.intercept", "must be finite") }
        case .logistic(let model):
            let k = model.classes.count
            guard Set(model.classes).count == k, k >= 2 else {
                throw ArtifactError(path: "predictor.classes", "needs at least two distinct classes")
            }
            let rows = k == 2 ? 1 : k
            guard task == (k == 2 ? .binary : .multiclass) else {
                throw ArtifactError(path: "task", "\(k) classes make a \(k == 2 ? "binary" : "multiclass") model, not \(task.rawValue)")
            }
            guard model.coefficients.count == rows else {
                throw ArtifactError(path: "predictor.coefficients", "needs \(rows) rows for \(k) classes, found \(model.coefficients.count)")
            }
            guard model.intercepts.count == rows, model.intercepts.allSatisfy(\.isFinite) else {
                throw ArtifactError(path: "predictor.intercepts", "needs \(rows) finite values")
            }
            for (r, row) in model.coefficients.enumerated() {
                try checkRow(row, width: width, path: "predictor.coefficients[\(r)]")
            }
        case .trees(let model):
            let expected: Task = switch model.link {
            case .identity: .regression
            case .logistic: model.classes == nil ? .regression : .binary
            case .softmax: .multiclass
            }
            guard task == expected else {
                throw ArtifactError(path: "task", "a \(model.link.rawValue) tree ensemble makes a \(expected.rawValue) model, not \(task.rawValue)")
            }
            if let classes = model.classes {
                guard Set(classes).count == classes.count, classes.count == (model.link == .logistic ? 2 : model.baseMargin.count) else {
                    throw ArtifactError(path: "predictor.classes", "needs one distinct class per output (two for binary)")
                }
            }
            guard model.baseMargin.allSatisfy(\.isFinite) else { throw ArtifactError(path: "predictor.baseMargin", "must be finite") }
            if let problem = model.problem(width: width) { throw ArtifactError(path: "predictor", problem) }
        }
        if let loss = training?.holdoutLoss, let problem = loss.problem {
            throw ArtifactError(path: "training.holdoutLoss", problem)
        }
    }

    private func checkRow(_ row: [Double], width: Int, path: String) throws(ArtifactError) {
        guard row.count == width else {
            throw ArtifactError(path: path, "has \(row.count) values but the preprocessing makes \(width) columns")
        }
        if let bad = row.firstIndex(where: { !$0.isFinite }) {
            throw ArtifactError(path: "\(path)[\(bad)]", "must be finite")
        }
    }

    private func kindMismatch(_ path: String, _ feature: String, _ kind: Feature.Kind, _ transform: String) -> ArtifactError {
        ArtifactError(path: "\(path).transform", "'\(transform)' does not apply to \(kind.rawValue) feature '\(feature)'")
    }
}

extension ArtifactError {
    init(decoding error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init(path: (context.codingPath + [key]).jsonPath, "is required but missing")
        case .typeMismatch(let type, let context):
            self.init(path: context.codingPath.jsonPath, "has the wrong type (expected \(type))")
        case .valueNotFound(let type, let context):
            self.init(path: context.codingPath.jsonPath, "must not be null (expected \(type))")
        case .dataCorrupted(let context):
            let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            self.init(path: context.codingPath.jsonPath, context.codingPath.isEmpty
                ? "not valid JSON (\(detail ?? context.debugDescription))" : context.debugDescription)
        @unknown default:
            self.init(path: "", "\(error)")
        }
    }
}
