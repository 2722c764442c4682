import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

@Suite struct LinearPredictionTests {
    /// The artifact holding scikit-learn's fitted parameters predicts what scikit-learn predicted, including
    /// rows with missing values and categories unseen in training.
    @Test(arguments: try LinearCase.all())
    func predictionsMatchScikitLearn(_ c: LinearCase) throws {
        let artifact = c.artifact()
        try artifact.validate()
        let encoder = InstanceEncoder(features: artifact.features, preprocessing: artifact.preprocessing)
        let instances = try c.testInstances()
        #expect(instances.count == c.test_predictions.count)
        var notes = InstanceEncoder.Notes()
        for (i, instance) in instances.enumerated() {
            let x = try encoder.encode(instance, path: "instances[\(i)]", notes: &notes)
            let expected = c.test_predictions[i].values
            switch artifact.predictor.predict(x) {
            case .value(let value):
                expectClose(value, expected[0], relative: 1e-12, "row \(i)")
            case .classification(_, let probabilities):
                let actual = probabilities.count == 2 ? [probabilities[1]] : probabilities
                for (a, e) in zip(actual, expected) { expectClose(a, e, relative: 1e-12, "row \(i)") }
            }
        }
        // The mixed fixtures include missing cells and unseen categories: both paths ran.
        if !c.categorical.isEmpty {
            #expect(notes.imputed > 0)
            #expect(notes.unknownCategories > 0)
        }
    }

    @Test(arguments: try LinearCase.all())
    func artifactRoundTripsThroughJSON(_ c: LinearCase) throws {
        let artifact = c.artifact()
        let decoded = try ModelArtifact.decode(try artifact.encoded())
        #expect(decoded == artifact)
    }

    @Test func predictedClassIsTheMostProbable() throws {
        let model = LogisticPredictor(classes: ["a", "b", "c"], intercepts: [0, 1, -1], coefficients: [[1], [0], [2]])
        guard case .classification(let index, let p) = Predictor.logistic(model).predict([3.0]) else {
            Issue.record("not a classification"); return
        }
        #expect(index == 2)
        #expect(abs(p.reduce(0, +) - 1) < 1e-15)
        // Large logits do not overflow.
        guard case .classification(_, let q) = Predictor.logistic(model).predict([1e6]) else { return }
        #expect(q.allSatisfy { $0.isFinite })
    }
}
