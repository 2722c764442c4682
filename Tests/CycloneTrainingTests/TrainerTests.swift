import CycloneModel
import CycloneMonitoring
import CycloneTestSupport
import CycloneTraining
import Foundation
import Testing

@Suite struct TrainerTests {
    /// The learnt imputation, scaling and categories are scikit-learn's.
    @Test(arguments: try LinearCase.all())
    func preprocessingMatchesScikitLearn(_ c: LinearCase) throws {
        let model = try c.trainedModel()
        for column in model.preprocessing.columns {
            switch column {
            case .standardize(let name, let impute, let mean, let scale):
                let expected = try #require(c.preprocessing.numeric[name])
                expectClose(impute, expected.impute, relative: 1e-13, name)
                expectClose(mean, expected.mean, relative: 1e-13, name)
                expectClose(scale, expected.scale, relative: 1e-13, name)
            case .boolean(let name, let impute):
                #expect(impute == c.preprocessing.boolean[name]?.impute)
            case .oneHot(let name, let impute, let categories):
                #expect(impute == c.preprocessing.categorical[name]?.impute)
                #expect(categories == c.preprocessing.categorical[name]?.categories)
            case .raw, .code:
                Issue.record("a linear model has no tree columns: \(column)")
            }
        }
    }

    /// Coefficients equal scikit-learn's Ridge / LogisticRegression, and so do the predictions on the test rows.
    @Test(arguments: try LinearCase.all())
    func coefficientsAndPredictionsMatchScikitLearn(_ c: LinearCase) throws {
        let model = try c.trainedModel()
        let names = model.preprocessing.columnNames
        switch model.predictor {
        case .linear(let linear):
            expectClose(linear.intercept, c.intercepts[0], relative: 1e-9, "intercept")
            for (name, value) in zip(names, linear.coefficients) {
                expectClose(value, c.coefficients[0][name]!, relative: 1e-9, name)
            }
        case .logistic(let logistic):
            #expect(logistic.classes == c.classes)
            for r in 0..<logistic.coefficients.count {
                expectClose(logistic.intercepts[r], c.intercepts[r], relative: 1e-9, "intercept \(r)")
                for (name, value) in zip(names, logistic.coefficients[r]) {
                    expectClose(value, c.coefficients[r][name]!, relative: 1e-9, "\(name) row \(r)")
                }
            }
        case .trees:
            Issue.record("a linear case trained trees")
        }
        let encoder = InstanceEncoder(features: model.features.map { var f = $0; f.required = false; return f },
                                      preprocessing: model.preprocessing)
        var notes = InstanceEncoder.Notes()
        for (i, instance) in try c.testInstances().enumerated() {
            let x = try encoder.encode(instance, path: "", notes: &notes)
            let expected = c.test_predictions[i].values
            switch model.predictor.predict(x) {
            case .value(let v): expectClose(v, expected[0], relative: 1e-9, "row \(i)")
            case .classification(_, let p):
                for (a, e) in zip(p.count == 2 ? [p[1]] : p, expected) { expectClose(a, e, relative: 1e-9, "row \(i)") }
            }
        }
    }

    @Test func singleClassTargetIsRefused() throws {
        let table = FeatureTable(columns: [.init(name: "x", values: .numeric([1, 2, 3]))])
        let target = FeatureTable.Column(name: "y", values: .categorical(["a", "a", nil]))
        #expect(throws: TrainingError.self) {
            try Trainer(options: .init(family: .logistic)).train(name: "m", version: "1", features: table, target: target)
        }
    }

    /// Values near a double's limit overflow a linear model's standardization: the column is named, not a
    /// singular matrix or a file that cannot be written; trees read them as they are.
    @Test func valuesTooLargeToStandardizeNameTheirColumn() throws {
        let table = FeatureTable(columns: [.init(name: "x", values: .numeric([1e308, 1, 2, -1e308, 5]))])
        let target = FeatureTable.Column(name: "y", values: .numeric([1, 2, 3, 4, 5]))
        do {
            _ = try Trainer(options: .init(family: .ridge)).train(name: "m", version: "1", features: table, target: target)
            Issue.record("ridge trained on values it cannot standardize")
        } catch {
            #expect(error.description.hasPrefix("column 'x' has values too large to standardize"), "\(error)")
        }
        #expect(throws: Never.self) {
            try Trainer(options: .init(family: .gbdt)).train(name: "m", version: "1", features: table, target: target)
        }
    }

    /// A cancelled task (the retrain job after SIGTERM) stops a fit instead of running it to the end.
    @Test func aCancelledFitStops() async throws {
        let x = (0..<200).map { Double($0 % 17) }
        let table = FeatureTable(columns: [.init(name: "x", values: .numeric(x))])
        let target = FeatureTable.Column(name: "y", values: .categorical(x.map { $0 > 8 ? "high" : "low" }))
        let fit = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try Trainer(options: .init(family: .logistic)).train(name: "m", version: "1", features: table, target: target)
        }
        let result = await fit.result
        guard case .failure(let error) = result else { Issue.record("a cancelled fit finished"); return }
        #expect("\(error)".contains("cancelled"))
    }

    @Test func featuresWithGapsInTrainingAreOptional() throws {
        let table = FeatureTable(columns: [.init(name: "x", values: .numeric([1, .nan, 3, 4])),
                                           .init(name: "z", values: .numeric([1, 2, 3, 5]))])
        let target = FeatureTable.Column(name: "y", values: .numeric([1, 2, 3, 4]))
        let model = try Trainer(options: .init(family: .ridge)).train(name: "m", version: "1", features: table, target: target)
        #expect(model.features.map(\.required) == [false, true])
        #expect(model.features[1].range == .init(min: 1, max: 5))
    }

    /// A holdout share trains on the rows before it (the same model as training on those rows alone) and keeps
    /// the model's metrics on the rows after, as the predictor scores them one instance at a time.
    @Test(arguments: ["ridge_mixed", "logistic_binary"])
    func theHeldOutTailScoresTheModel(_ name: String) throws {
        let c = try #require(try LinearCase.all().first { $0.name == name })
        let csv = try CSV(contentsOf: Fixture.url(c.train))
        let table = try FeatureTable(csv: csv, columns: c.featureNames, kinds: c.kinds)
        let targetKind: Feature.Kind = c.family == "ridge" ? .numeric : .categorical
        let target = FeatureTable.Column(name: c.target, values: try FeatureTable.parse(csv.column(c.target)!, as: targetKind,
                                                                                    column: c.target))
        var options = TrainingOptions(family: Family(rawValue: c.family)!)
        options.holdout = 0.25
        let model = try Trainer(options: options).train(name: "m", version: "1", features: table, target: target)
        let held = Int((Double(table.rowCount) * 0.25).rounded())
        let first = Array(0..<(table.rowCount - held)), last = Array((table.rowCount - held)..<table.rowCount)
        #expect(model.training?.rows == first.count && model.training?.holdoutRows == held)

        options.holdout = 0
        let alone = try Trainer(options: options).train(
            name: "m", version: "1", features: table.selecting(rows: first),
            target: FeatureTable.Column(name: c.target, values: FeatureTable(columns: [target]).selecting(rows: first).columns[0].values))
        #expect(alone.predictor == model.predictor)

        // Score the tail through the serving path: JSON instances, the encoder, the predictor.
        let encoder = InstanceEncoder(features: model.features.map { var f = $0; f.required = false; return f },
                                      preprocessing: model.preprocessing)
        var notes = InstanceEncoder.Notes()
        var outputs: [Output] = []
        for i in last {
            var instance: [String: JSONValue] = [:]
            for column in table.columns {
                switch column.values {
                case .numeric(let v): instance[column.name] = v[i].isNaN ? .null : .number(v[i])
                case .boolean(let v): instance[column.name] = v[i].isNaN ? .null : .bool(v[i] == 1)
                case .categorical(let v): instance[column.name] = v[i].map { .string($0) } ?? .null
                }
            }
            outputs.append(model.predictor.predict(try encoder.encode(.object(instance), path: "", notes: &notes)))
        }
        let expected: [String: Double]
        switch target.values {
        case .numeric(let y):
            expected = RegressionMetrics(labels: last.map { y[$0] }, predictions: outputs.map {
                if case .value(let v) = $0 { return v } else { return .nan }
            }).values
        case .categorical(let y):
            let positive = try #require(model.classes?.last)
            expected = BinaryMetrics(positives: last.map { y[$0] == positive }, scores: outputs.map {
                if case .classification(_, let p) = $0 { return p[1] } else { return .nan }
            }).values
        default: expected = [:]
        }
        let metrics = try #require(model.training?.holdoutMetrics)
        #expect(Set(metrics.keys) == Set(expected.keys))
        for (key, value) in expected { expectClose(try #require(metrics[key]), value, relative: 1e-9, key) }
        // The per-row losses kept for the loss trigger average to the holdout's MAE, or its log loss.
        let loss = try #require(model.training?.holdoutLoss)
        #expect(loss.rows == held && loss.batches == (held >= 16 ? 8 : 0))
        expectClose(loss.mean, try #require(metrics[c.family == "ridge" ? "mae" : "log_loss"]), relative: 1e-9, "mean loss")
    }
}
