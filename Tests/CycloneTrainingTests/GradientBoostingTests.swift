import CycloneModel
import CycloneTestSupport
@testable import CycloneTraining
import Foundation
import Testing

/// Gradient-boosted trees trained here: they learn what a linear model cannot (thresholds, interactions,
/// categories), route missing values, stop early on noise, and serve exactly what they learnt.
@Suite struct GradientBoostingTests {
    /// y = 3·sin(x0) + 2·sign(x1) + x0·x2 + colour effect + noise, with a tenth of x0 and x2 missing.
    static func table(_ n: Int, seed: UInt64, classify: Int? = nil) -> (FeatureTable, FeatureTable.Column) {
        var random = SplitMix64(seed: seed)
        var x0: [Double] = [], x1: [Double] = [], x2: [Double] = [], colour: [String?] = [], y: [Double] = []
        let effects = ["red": 2.0, "green": -1.5, "blue": 0.0, "white": 3.0]
        for _ in 0..<n {
            let a = random.normal() * 2, b = random.normal(), c = random.normal()
            let k = ["red", "green", "blue", "white"][Int(random.uniform() * 4)]
            let value = 3 * sin(a) + (b > 0 ? 2 : -2) + a * c + effects[k]! + 0.3 * random.normal()
            x0.append(random.uniform() < 0.1 ? .nan : a)
            x1.append(b)
            x2.append(random.uniform() < 0.1 ? .nan : c)
            colour.append(random.uniform() < 0.05 ? nil : k)
            y.append(value)
        }
        let features = FeatureTable(columns: [.init(name: "x0", values: .numeric(x0)), .init(name: "x1", values: .numeric(x1)),
                                              .init(name: "x2", values: .numeric(x2)), .init(name: "colour", values: .categorical(colour))])
        if let classes = classify {
            let sorted = y.sorted()
            let cuts = (1..<classes).map { sorted[$0 * n / classes] }
            return (features, .init(name: "y", values: .categorical(y.map { v in "c\(cuts.filter { v >= $0 }.count)" })))
        }
        return (features, .init(name: "y", values: .numeric(y)))
    }

    static func train(_ family: Family, _ table: FeatureTable, _ target: FeatureTable.Column) throws -> ModelArtifact {
        var options = TrainingOptions(family: family)
        options.holdout = 0.2
        options.boosting.trees = 200
        return try Trainer(options: options).train(name: "m", version: "1", features: table, target: target)
    }

    @Test func treesLearnWhatALinearModelCannot() throws {
        let (table, target) = Self.table(3_000, seed: 1)
        let trees = try Self.train(.gbdt, table, target), ridge = try Self.train(.ridge, table, target)
        let treeError = try #require(trees.training?.holdoutMetrics?["rmse"]), ridgeError = try #require(ridge.training?.holdoutMetrics?["rmse"])
        #expect(treeError < 0.5 * ridgeError, "gbdt \(treeError) against ridge \(ridgeError)")
        guard case .trees(let ensemble) = trees.predictor else { Issue.record("not trees"); return }
        #expect(ensemble.flags.contains { $0 & TreeEnsemble.Flag.categorical != 0 }, "colour is split as categories")
        let rounds = try #require(trees.training?.parameters["rounds"])
        #expect(rounds > 20 && rounds <= 200)
        // Served as trained: the request path (JSON with missing values) gives the training path's outputs.
        let encoder = InstanceEncoder(features: trees.features, preprocessing: trees.preprocessing)
        let outputs = trees.outputs(for: table)
        var notes = InstanceEncoder.Notes()
        guard case .numeric(let x0) = table.columns[0].values, case .numeric(let x1) = table.columns[1].values,
              case .numeric(let x2) = table.columns[2].values, case .categorical(let colour) = table.columns[3].values
        else { return }
        for i in 0..<200 {
            var instance: [String: JSONValue] = ["x1": .number(x1[i])]
            if !x0[i].isNaN { instance["x0"] = .number(x0[i]) }
            if !x2[i].isNaN { instance["x2"] = .number(x2[i]) }
            instance["colour"] = colour[i].map(JSONValue.string) ?? .null
            let x = try encoder.encode(.object(instance), path: "instances[\(i)]", notes: &notes)
            #expect(trees.predictor.predict(x) == outputs[i], "row \(i)")
        }
        #expect(notes.imputed > 0)
        #expect(try ModelArtifact.decode(try trees.encoded()) == trees)
        // Where nothing is missing, the held-out error is near the noise (0.3); a missing x0 or x2 hides
        // most of the signal, which is what the rest of the error is.
        guard case .numeric(let y) = target.values else { return }
        var squares = 0.0, count = 0.0
        for i in 2_400..<3_000 where !x0[i].isNaN && !x2[i].isNaN && colour[i] != nil {
            guard case .value(let value) = outputs[i] else { continue }
            squares += (value - y[i]) * (value - y[i])
            count += 1
        }
        #expect((squares / count).squareRoot() < 0.9, "complete held-out rows: rmse \((squares / count).squareRoot())")
    }

    @Test(arguments: [2, 3])
    func classifiersBeatTheLinearOne(classes: Int) throws {
        let (table, target) = Self.table(3_000, seed: 2, classify: classes)
        let trees = try Self.train(.gbdt, table, target), logistic = try Self.train(.logistic, table, target)
        #expect(trees.task == (classes == 2 ? .binary : .multiclass) && trees.classes == logistic.classes)
        let treeAccuracy = try #require(trees.training?.holdoutMetrics?["accuracy"])
        let linearAccuracy = try #require(logistic.training?.holdoutMetrics?["accuracy"])
        #expect(treeAccuracy > linearAccuracy + 0.03, "gbdt \(treeAccuracy) against logistic \(linearAccuracy)")
    }

    /// Serving routes every training row as the bins did in training: the ensemble's margins on the design
    /// rows (missing values, categories, thresholds between bins) equal the margins training reached.
    /// Also with a sample of rows per round (rows a tree did not see are walked down it through their bins),
    /// and with early stopping (the ensemble is the refit on every row, for the rounds the validation chose).
    @Test(arguments: [(1, 1.0, 0.0), (3, 1.0, 0.0), (1, 0.7, 0.2), (3, 0.7, 0.0)])
    func theTreesServeWhatTheBinsLearnt(classes: Int, subsample: Double, validation: Double) throws {
        let (table, target) = Self.table(1_500, seed: 4, classify: classes == 1 ? nil : classes)
        let fitted = try FittedPreprocessing(fitting: table, forTrees: true)
        let x = fitted.designMatrix(table), p = fitted.preprocessing.width
        let categorical = Set(fitted.preprocessing.columns.indices.filter {
            if case .code = fitted.preprocessing.columns[$0] { true } else { false }
        })
        var options = BoostingOptions()
        (options.trees, options.validation, options.maxLeaves) = (40, validation, 15)
        (options.subsample, options.patience) = (subsample, 40)
        let labels: [Double]
        if case .numeric(let y) = target.values { labels = y } else if case .categorical(let y) = target.values {
            labels = y.map { Double(Int($0!.dropFirst())!) }
        } else { return }
        let objective: GradientBoosting.Objective = classes == 1 ? .squaredError : .softmax(classes: classes)
        let fit = try GradientBoosting(options: options).fit(x: x, p: p, categorical: categorical, labels: labels,
                                                             objective: objective, classes: classes == 1 ? nil : (0..<classes).map { "c\($0)" })
        #expect(fit.rounds == 40)
        let outputs = classes
        x.withUnsafeBufferPointer { x in
            for i in 0..<table.rowCount {
                let served = fit.ensemble.margins(UnsafeBufferPointer(rebasing: x[(i * p)..<((i + 1) * p)]))
                for k in 0..<outputs {
                    let trained = fit.margins[i * outputs + k]
                    #expect(abs(served[k] - trained) <= 1e-9 * max(1, abs(trained)), "row \(i) output \(k): \(served[k]) vs \(trained)")
                }
            }
        }
    }

    /// Bin bounds from a sample of rows still hold every row: each value is above its bin's lower bound and
    /// at most its upper one, both layouts agree, and a category the sample missed keeps its own code
    /// rather than being taken for missing.
    @Test func binsFromASampleHoldEveryRow() {
        var random = SplitMix64(seed: 11)
        let n = 5_000
        var x: [Double] = []
        for i in 0..<n {
            x.append(random.uniform() < 0.05 ? .nan : (random.normal() * 100).rounded() / 10)  // ~800 values, ties
            x.append(i == n - 1 ? 7 : Double(Int(random.uniform() * 3)))  // category 7 in the last row only
        }
        let bins = BinnedTable(x: x, p: 2, fitRows: n, categorical: [1], sample: 500, seed: 3)
        let bounds = bins.edges[0]
        #expect(bounds.count > 100 && bounds.count <= 255 && bounds.last == .infinity)
        var misplaced: [Int] = []
        for i in 0..<n {
            let v = x[2 * i], bin = Int(bins.codes[2 * i])
            let holds = v.isNaN ? bin == bins.missing(0) : v <= bounds[bin] && (bin == 0 || v > bounds[bin - 1])
            if !holds || bins.columns[i] != bins.codes[2 * i] || bins.columns[n + i] != bins.codes[2 * i + 1] { misplaced.append(i) }
        }
        #expect(misplaced.isEmpty, "rows outside their bins: \(misplaced.prefix(5))")
        #expect(bins.codes[2 * (n - 1) + 1] == 7 && bins.missing(1) == 8)
    }

    /// Missing values can be a side of their own: when only missingness matters, one split sends every
    /// present value left and the missing ones right, and a single stump learns the target exactly.
    @Test func missingnessAloneIsASplit() throws {
        var random = SplitMix64(seed: 5)
        let x = (0..<2_000).map { _ in random.uniform() < 0.3 ? Double.nan : random.normal() }
        let labels = x.map { $0.isNaN ? 5.0 : 0.0 }
        var options = BoostingOptions()
        (options.trees, options.maxLeaves, options.learningRate, options.lambda, options.validation) = (1, 2, 1, 0, 0)
        let fit = try GradientBoosting(options: options).fit(x: x, p: 1, categorical: [], labels: labels,
                                                             objective: .squaredError, classes: nil)
        let root = Int(fit.ensemble.roots[0])
        #expect(fit.ensemble.feature[root] == 0 && fit.ensemble.flags[root] & TreeEnsemble.Flag.defaultLeft == 0)
        #expect(zip(fit.margins, labels).allSatisfy { abs($0 - $1) < 1e-9 })
        let missing = [Double.nan].withUnsafeBufferPointer { fit.ensemble.margins($0)[0] }
        let huge = [1e300].withUnsafeBufferPointer { fit.ensemble.margins($0)[0] }
        #expect(abs(missing - 5) < 1e-9 && abs(huge) < 1e-9, "missing \(missing), present \(huge)")
    }

    /// On a target of pure noise the validation loss stops improving at once: few rounds are kept.
    @Test func earlyStoppingKeepsFewRoundsOnNoise() throws {
        let (table, _) = Self.table(2_000, seed: 3)
        var random = SplitMix64(seed: 9)
        let noise = FeatureTable.Column(name: "y", values: .numeric((0..<2_000).map { _ in random.normal() }))
        let model = try Self.train(.gbdt, table, noise)
        #expect(try #require(model.training?.parameters["rounds"]) < 40)
    }

    /// A retrain keeps the live trees' shape: an imported LightGBM model is retrained natively with its
    /// learning rate and leaves.
    @Test func settingsComeBackFromAnArtifact() {
        let options = BoostingOptions(parameters: ["trees": 25, "learning_rate": 0.2, "num_leaves": 15, "max_depth": 7])
        #expect(options.trees == 25 && options.learningRate == 0.2 && options.maxLeaves == 15 && options.maxDepth == 7)
        let xgboost = BoostingOptions(parameters: ["trees": 25, "max_depth": 4])
        #expect(xgboost.maxDepth == 4 && xgboost.maxLeaves == 16, "depth-wise: every leaf a depth of 4 allows")
    }
}
