import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

/// XGBoost and LightGBM models served as they are: each fixture (scripts/fixtures/trees.py) is imported,
/// made an artifact, and its predictions on the test instances, missing values and categories included,
/// equal the library's own to 1e-6 (relative).
@Suite struct TreeImportTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var json: JSONValue
        var name: String { json["name"].string ?? "?" }
        var testDescription: String { name }
    }

    static let folder = Repository.root.appendingPathComponent("Tests/Fixtures/trees")
    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("cases.json")),
              let json = try? JSONParser.parse(Array(data)) else { return [] }
        return json["cases"].array.map(Case.init)
    }()

    @Test func everyObjectiveHasAFixture() {
        #expect(Set(Self.cases.compactMap { $0.json["objective"].string }) == [
            "reg:squarederror", "reg:logistic", "binary:logistic", "multi:softprob", "multi:softmax",
            "regression", "binary", "multiclass",
        ])
    }

    static func imported(_ json: JSONValue) throws -> ImportedTrees {
        let url = folder.appendingPathComponent(json["file"].string ?? "")
        if json["library"].string == "xgboost" {
            return try ImportedTrees.xgboost(Array(try Data(contentsOf: url)))
        }
        return try ImportedTrees.lightgbm(try String(contentsOf: url, encoding: .utf8))
    }

    @Test(arguments: cases)
    func predictionsEqualTheLibrarysOwn(_ fixture: Case) throws {
        let json = fixture.json
        let trees = try Self.imported(json)
        let categorical = Set(json["categorical"].array.compactMap(\.string))
        let schema = json["features"].array.compactMap(\.string).map {
            Feature(name: $0, kind: categorical.contains($0) ? .categorical : .numeric)
        }
        let artifact = try trees.artifact(name: fixture.name, version: "1", features: schema, target: "y")
        #expect(artifact.features.allSatisfy { !$0.required }, "the trees route missing values")
        let encoder = InstanceEncoder(features: artifact.features, preprocessing: artifact.preprocessing)
        var notes = InstanceEncoder.Notes()
        let expected = json["expected"].array, margins = json["margin"].array
        #expect(expected.count == json["instances"].array.count && !expected.isEmpty)
        for (i, instance) in json["instances"].array.enumerated() {
            let x = try encoder.encode(instance, path: "instances[\(i)]", notes: &notes)
            // The raw margins first: every tree and every split as the library walks it.
            let margin = x.withUnsafeBufferPointer { trees.ensemble.margins($0) }
            let wantMargin = margins[i].array.isEmpty ? [margins[i].number ?? .nan] : margins[i].array.compactMap(\.number)
            for (got, want) in zip(margin, wantMargin) {
                #expect(abs(got - want) <= 1e-6 * max(1, abs(want)), "\(fixture.name) instance \(i) margin: \(got) vs \(want)")
            }
            switch artifact.predictor.predict(x) {
            case .value(let value):
                let want = expected[i].number ?? .nan
                #expect(abs(value - want) <= 1e-6 * max(1, abs(want)), "\(fixture.name) instance \(i): \(value) vs \(want)")
            case .classification(let index, let probabilities):
                let want = expected[i].array.isEmpty ? [1 - (expected[i].number ?? .nan), expected[i].number ?? .nan]
                    : expected[i].array.compactMap(\.number)
                #expect(probabilities.count == want.count)
                for (got, w) in zip(probabilities, want) {
                    #expect(abs(got - w) <= 1e-6 * max(1, abs(w)), "\(fixture.name) instance \(i): \(probabilities) vs \(want)")
                }
                let classes = json["classes"].array.compactMap(\.number)
                if !classes.isEmpty { #expect(Double(index) == classes[i], "multi:softmax's class") }
            }
        }
        #expect(notes.imputed > 0, "the fixtures have missing values")
        // The artifact survives its file.
        let decoded = try ModelArtifact.decode(try artifact.encoded())
        #expect(decoded == artifact)
        // A node array's bad element is named with its index.
        var object = try #require(try JSONSerialization.jsonObject(with: artifact.encoded()) as? [String: Any])
        var predictor = try #require(object["predictor"] as? [String: Any])
        var thresholds = try #require(predictor["threshold"] as? [Any])
        thresholds[2] = "high"
        predictor["threshold"] = thresholds
        object["predictor"] = predictor
        let error = #expect(throws: ArtifactError.self) {
            try ModelArtifact.decode(try JSONSerialization.data(withJSONObject: object))
        }
        #expect(error?.path == "predictor.threshold[2]", "\(String(describing: error))")
    }

    @Test func lightGBMsCategoricalSplitsAreImported() throws {
        let fixture = try #require(Self.cases.first { $0.name == "lgb_regression" })
        let trees = try Self.imported(fixture.json)
        #expect(trees.ensemble.flags.contains { $0 & TreeEnsemble.Flag.categorical != 0 })
        #expect(trees.categoricalCodes[4] == [0, 1, 2, 3, 4, 5])
        #expect(trees.parameters["learning_rate"] == 0.2 && trees.parameters["trees"] == 25)
    }

    /// XGBoost rounds inputs to single precision before comparing: an input just below a threshold's float
    /// that rounds onto it goes right, as in XGBoost.
    @Test func xgboostComparesInSinglePrecision() {
        let t = Float(0.41940528)
        let threshold = ImportedTrees.float32Threshold(Double(t))
        let justBelow = Double(t) - Double(t.ulp) / 4  // rounds to t as a Float
        #expect(Float(justBelow) == t && !(justBelow < threshold), "XGBoost: Float(x) < t is false")
        let lower = Double(t.nextDown)
        #expect(lower < threshold, "the float below t goes left")
    }

    /// A LightGBM file whose feature importances name a feature `Tree` still reads.
    @Test func featureImportancesAfterTheTreesAreNotTrees() throws {
        let text = try String(contentsOf: Self.folder.appendingPathComponent("lgb_binary.txt"), encoding: .utf8)
            + "\nTree=12\n"
        let trees = try ImportedTrees.lightgbm(text)
        #expect(trees.ensemble.treeCount == 25)
    }

    @Test func filesThatAreNotSupportedModelsSayWhatWasFound() throws {
        #expect { try ImportedTrees.xgboost(Array("{\"version\": [1, 0]}".utf8)) } throws: {
            "\($0)" == "not an XGBoost JSON model: no 'learner' object (keys: version)"
        }
        #expect { try ImportedTrees.xgboost(Array("tree\nversion=v4".utf8)) } throws: {
            "\($0)".hasPrefix("not an XGBoost JSON model: the file is not JSON")
        }
        #expect { try ImportedTrees.lightgbm("{\"learner\": {}}") } throws: {
            "\($0)" == "not a LightGBM text model: the first line is '{\"learner\": {}}', not 'tree'"
        }
        let poisson = try String(contentsOf: Self.folder.appendingPathComponent("lgb_regression.txt"), encoding: .utf8)
            .replacingOccurrences(of: "objective=regression", with: "objective=poisson")
        #expect { try ImportedTrees.lightgbm(poisson) } throws: {
            "\($0)" == "LightGBM objective 'poisson' is not supported (regression, binary, multiclass)"
        }
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("xgb_squarederror.json"))
        let gamma = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"reg:squarederror\"", with: "\"reg:gamma\"")
        #expect { try ImportedTrees.xgboost(Array(gamma.utf8)) } throws: {
            "\($0)".hasPrefix("XGBoost objective 'reg:gamma' is not supported")
        }
    }
}

/// A malformed ensemble in a model file is refused with the place at fault, never walked.
@Suite struct TreeEnsembleValidationTests {
    @Test func brokenNodeArraysAreRefused() throws {
        func ensemble(left: [Int32], feature: [Int32] = [0, -1, -1]) -> TreeEnsemble {
            TreeEnsemble(link: .identity, classes: nil, baseMargin: [0], roots: [0], outputs: [0], feature: feature,
                         threshold: [0.5, 1, 2], left: left, right: [2, -1, -1], flags: [0, 0, 0], sets: [])
        }
        #expect(ensemble(left: [1, -1, -1]).problem(width: 1) == nil)
        #expect(ensemble(left: [1, -1]).problem(width: 1) == "the node arrays differ in length")
        #expect(ensemble(left: [7, -1, -1]).problem(width: 1) == "node 0 has child 7, not a node")
        #expect(ensemble(left: [0, -1, -1]).problem(width: 1) == "node 0 is reached twice (a cycle, or trees sharing nodes)")
        #expect(ensemble(left: [-5, -1, -1]).problem(width: 1) == "node 0 has child -5, not a node")
        #expect(ensemble(left: [1, -1, -1], feature: [3, -1, -1]).problem(width: 1) == "node 0 splits on column 3 of 1")
        let good = ensemble(left: [1, -1, -1])
        #expect(Predictor.trees(good).predict([0.2]) == .value(1) && Predictor.trees(good).predict([0.7]) == .value(2))
        let artifact = ModelArtifact(name: "m", version: "1", task: .binary, target: nil,
                                     features: [Feature(name: "x", kind: .numeric, required: false)],
                                     preprocessing: Preprocessing(columns: [.raw(feature: "x")]), predictor: .trees(good))
        #expect(throws: ArtifactError(path: "task", "a identity tree ensemble makes a regression model, not binary")) {
            try artifact.validate()
        }
    }
}
