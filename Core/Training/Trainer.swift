import CycloneModel
import CycloneMonitoring
import Foundation

/// A model family `cyclone train` and the retrain job can fit.
public enum Family: String, Sendable, CaseIterable {
    /// Ridge regression, logistic regression, and gradient-boosted trees (regression or classification
    /// by the target).
    case ridge, logistic, gbdt

    /// What `TRAINING_FAMILIES` names: `all` (every family), `live` (none besides the live model's own), or
    /// families separated by commas; `nil` for anything else.
    public static func list(_ text: String) -> [Family]? {
        let words = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if words == ["all"] { return allCases }
        if words == ["live"] { return [] }
        let families = words.map { Family(rawValue: $0) }
        return families.contains(nil) ? nil : families.compactMap { $0 }
    }

    /// What `TRAINING_FAMILIES` expects, for its error.
    public static let listExpected = "all, live, or families separated by commas (\(allCases.map(\.rawValue).joined(separator: ", ")))"
}

/// Settings of one training run.
public struct TrainingOptions: Sendable {
    public var family: Family
    /// Ridge penalty (`alpha`).
    public var alpha: Double = 1.0
    /// Inverse logistic penalty (`C`), as in scikit-learn.
    public var c: Double = 1.0
    /// Features that may be absent in requests even though the training data has no gaps.
    public var optionalFeatures: Set<String> = []
    /// The share of labelled rows held out of training, taken from the end of the table (its newest rows when
    /// the table is in time order); the model is scored on them and the scores kept as its holdout metrics,
    /// which relative retrain thresholds (`0.9x`) compare against. 0 trains on every row and keeps none.
    public var holdout: Double = 0
    /// Gradient boosting's settings (`gbdt`).
    public var boosting = BoostingOptions()
    /// The most cells (rows × encoded columns) a linear family's dense design matrix may have; beyond it the
    /// fit is refused before the matrix is made. `nil`: no limit. (Trees code a category as one column; ridge
    /// and logistic one-hot encode it, so a table trees train on easily can need gigabytes as a linear model.)
    public var maximumDesignCells: Int?

    public init(family: Family) { self.family = family }
}

/// Fits a model of `options.family` to a table and a target column.
public struct Trainer: Sendable {
    public var options: TrainingOptions
    public init(options: TrainingOptions) { self.options = options }

    /// - Parameter target: the label of each row; rows whose label is `nil` are left out.
    public func train(name: String, version: String, features table: FeatureTable, target: FeatureTable.Column,
                      trainedAt: Date = Date()) throws(TrainingError) -> ModelArtifact
    {
        let labelled = (0..<table.rowCount).filter { !isMissing(target.values, $0) }
        guard !labelled.isEmpty else { throw TrainingError("the target '\(target.name)' has no values") }
        guard options.holdout >= 0, options.holdout < 1 else {
            throw TrainingError("the holdout share must be at least 0 and below 1, not \(options.holdout)")
        }
        let held = Int((Double(labelled.count) * options.holdout).rounded())
        guard held == 0 || labelled.count - held >= 2 else {
            throw TrainingError("holding out \(held) of \(labelled.count) labelled rows leaves too few to train on")
        }
        let keep = Array(labelled.dropLast(held))
        let rows = keep.count == table.rowCount ? table : table.selecting(rows: keep)
        let started = ContinuousClock.now
        let fitted = try FittedPreprocessing(fitting: rows, optional: options.optionalFeatures, forTrees: options.family == .gbdt)
        let p = fitted.preprocessing.width
        if options.family != .gbdt, let limit = options.maximumDesignCells {
            let (cells, overflow) = rows.rowCount.multipliedReportingOverflow(by: p)
            guard !overflow, cells <= limit else {
                throw TrainingError("\(rows.rowCount) rows of \(p) encoded columns are more than the \(limit) cells allowed for \(options.family.rawValue)")
            }
        }
        let x = fitted.designMatrix(rows)
        let predictor: Predictor
        let task: ModelArtifact.Task
        var parameters: [String: Double] = [:]
        switch options.family {
        case .ridge:
            guard case .numeric(let y) = target.values else {
                throw TrainingError("ridge needs a numeric target, but '\(target.name)' is \(target.values.kind.rawValue)")
            }
            predictor = .linear(try RidgeTrainer(alpha: options.alpha).fit(x: x, y: keep.map { y[$0] }, p: p))
            task = .regression
            parameters["alpha"] = options.alpha
        case .logistic:
            let (classes, labels) = try Self.classes(of: target, rows: keep)
            let fit = try LogisticTrainer(c: options.c).fit(x: x, labels: labels, classCount: classes.count, p: p)
            predictor = .logistic(LogisticPredictor(classes: classes, intercepts: fit.intercepts,
                                                    coefficients: fit.coefficients))
            task = classes.count == 2 ? .binary : .multiclass
            parameters["C"] = options.c
        case .gbdt:
            let categorical = Set(fitted.preprocessing.columns.indices.filter {
                if case .code = fitted.preprocessing.columns[$0] { true } else { false }
            })
            let boosting = GradientBoosting(options: options.boosting)
            let fit: (ensemble: TreeEnsemble, rounds: Int, margins: [Double])
            if case .numeric(let y) = target.values {
                fit = try boosting.fit(x: x, p: p, categorical: categorical, labels: keep.map { y[$0] },
                                       objective: .squaredError, classes: nil)
                task = .regression
            } else {
                let (classes, labels) = try Self.classes(of: target, rows: keep)
                fit = try boosting.fit(x: x, p: p, categorical: categorical, labels: labels.map(Double.init),
                                       objective: classes.count == 2 ? .logLoss : .softmax(classes: classes.count),
                                       classes: classes)
                task = classes.count == 2 ? .binary : .multiclass
            }
            predictor = .trees(fit.ensemble)
            parameters = options.boosting.parameters
            parameters["rounds"] = Double(fit.rounds)
        }
        let fitSeconds = (ContinuousClock.now - started).seconds
        var model = ModelArtifact(
            name: name, version: version, task: task, target: target.name, features: fitted.features,
            preprocessing: fitted.preprocessing, predictor: predictor,
            training: TrainingInfo(family: options.family.rawValue, parameters: parameters, rows: keep.count,
                                   trainedAt: trainedAt))
        model.training?.fitSeconds = (fitSeconds * 1_000).rounded() / 1_000
        // The baseline for drift is the data this model learnt from.
        model.profile = model.profile(of: rows)
        if held > 0 {
            let holdout = Array(labelled.suffix(held))
            // Classifier labels as the class names the model knows them by.
            let labels: FeatureTable.Values = task == .regression
                ? target.values.selecting(rows: holdout)
                : .categorical(holdout.map { Self.classLabel(target.values, $0) })
            let outputs = model.outputs(for: table.selecting(rows: holdout))
            let (metrics, losses) = (model.metrics(outputs: outputs, labels: labels),
                                     model.losses(outputs: outputs, labels: labels))
            model.training?.holdoutMetrics = metrics
            model.training?.holdoutRows = held
            model.training?.holdoutLoss = LossShift.summary(losses)
        }
        return model
    }

    /// A classifier's classes (in `sortedClasses` order, at least two) and each row's class index.
    private static func classes(of target: FeatureTable.Column, rows: [Int]) throws(TrainingError) -> ([String], [Int]) {
        let labels = rows.map { classLabel(target.values, $0)! }
        let classes = sortedClasses(Set(labels))
        guard classes.count >= 2 else {
            throw TrainingError("the target '\(target.name)' has a single class ('\(classes.first ?? "")'); a classifier needs two or more")
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        return (classes, labels.map { index[$0]! })
    }

    /// Classes in scikit-learn's order: numerically when every label is a number, otherwise as strings.
    public static func sortedClasses(_ labels: Set<String>) -> [String] {
        let numbers = labels.map { ($0, Double($0)) }
        if numbers.allSatisfy({ $0.1 != nil }) {
            return numbers.sorted { $0.1! < $1.1! || ($0.1! == $1.1! && $0.0 < $1.0) }.map(\.0)
        }
        return labels.sorted()
    }

    private func isMissing(_ values: FeatureTable.Values, _ i: Int) -> Bool {
        switch values {
        case .numeric(let v), .boolean(let v): v[i].isNaN
        case .categorical(let v): v[i] == nil
        }
    }

    private static func classLabel(_ values: FeatureTable.Values, _ i: Int) -> String? {
        switch values {
        case .categorical(let v): v[i]
        case .boolean(let v): v[i].isNaN ? nil : (v[i] == 1 ? "true" : "false")
        case .numeric(let v): v[i].isNaN ? nil : JSONValue.number(v[i]).jsonText
        }
    }
}

extension FeatureTable {
    /// The table restricted to the given row indices, in that order.
    public func selecting(rows: [Int]) -> FeatureTable {
        FeatureTable(columns: columns.map { .init(name: $0.name, values: $0.values.selecting(rows: rows)) })
    }
}

extension FeatureTable.Values {
    /// The values at the given row indices, in that order.
    public func selecting(rows: [Int]) -> FeatureTable.Values {
        switch self {
        case .numeric(let v): .numeric(rows.map { v[$0] })
        case .boolean(let v): .boolean(rows.map { v[$0] })
        case .categorical(let v): .categorical(rows.map { v[$0] })
        }
    }
}
