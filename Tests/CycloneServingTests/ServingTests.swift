import CycloneModel
import CycloneServing
import CycloneStore
import CycloneTestSupport
import Foundation
import Testing

@Suite struct ScorerTests {
    @Test func rowsHoldWhatTheAnswerSaysInTheStoredShape() throws {
        let model = ServedModel(artifact: try TestModels.binary(), strictCategories: false)
        let instances = try LinearCase.all().first { $0.name == "logistic_binary" }!.testInstances()
        let firstID = UUIDv7.make(at: Date(), sequence: 0)
        let keys: [String?] = instances.indices.map { $0 == 1 ? nil : "k\($0)" }
        let scored = try Scorer().score(instances, keys: keys, with: model, firstID: firstID, at: Date())

        #expect(scored.predictions.count == instances.count)
        #expect(scored.rows.count == instances.count)
        #expect(scored.predictions[0].id == firstID)
        #expect(Set(scored.rows.map(\.id)).count == instances.count)
        // The ids sort in the instances' order (a window's ORDER BY created_at, id keeps a request's order).
        #expect(scored.rows.map(\.id.uuidString) == scored.rows.map(\.id.uuidString).sorted())
        var notes = InstanceEncoder.Notes()
        for (index, (prediction, row)) in zip(scored.predictions, scored.rows).enumerated() {
            #expect(row.id == prediction.id)
            #expect(row.key == keys[index] && prediction.key == keys[index])
            #expect(row.modelName == "churn" && row.modelVersion == "2")
            // The stored prediction reads back, through the one codec, as the output answered.
            #expect(model.prediction.output(row.prediction) == prediction.output)
            #expect(prediction.output == model.artifact.predictor.predict(
                try model.encoder.encode(instances[index], path: "", notes: &notes)))
        }
    }

    @Test func theFirstInstanceThatCannotBeScoredIsNamedByItsPath() throws {
        let model = ServedModel(artifact: try TestModels.regression(), strictCategories: false)
        var instances = try LinearCase.all().first { $0.name == "ridge_mixed" }!.testInstances()
        instances[2] = .string("not an instance")
        #expect(throws: InputError.notAnObject(found: "string", path: "instances[2]")) {
            try Scorer().score(instances, keys: nil, with: model, firstID: UUIDv7.make(at: Date()), at: Date())
        }
    }
}

@Suite struct ModelSetTests {
    private func served(_ version: String) throws -> ServedModel {
        ServedModel(artifact: try TestModels.regression(version: version), strictCategories: false)
    }

    @Test func aCanaryAnswersItsShareChosenByTheID() throws {
        let models = ModelSet([try served("7")], canaryPercent: 20)
        models.setCanary(try served("8"), of: "bikes")
        let ids = (0..<5_000).map { _ in UUIDv7.make(at: Date()) }
        let versions = ids.map { models.model("bikes", for: $0)!.artifact.version }
        let share = Double(versions.filter { $0 == "8" }.count) / Double(ids.count)
        #expect(abs(share - 0.20) < 0.03)
        // The same id always goes the same way.
        #expect(ids.map { models.model("bikes", for: $0)!.artifact.version } == versions)
        #expect(models.model("other", for: ids[0]) == nil)
    }

    /// A caller's key picks the version, the same way in every process: the canary's share of keys holds, and
    /// a key never moves.
    @Test func aKeyAlwaysGoesTheSameWay() throws {
        let models = ModelSet([try served("7")], canaryPercent: 30)
        models.setCanary(try served("8"), of: "bikes")
        let keys = (0..<5_000).map { "row-\($0)" }
        let versions = keys.map { models.model("bikes", for: UUIDv7.make(at: Date()), key: $0)!.artifact.version }
        #expect(abs(Double(versions.filter { $0 == "8" }.count) / 5_000 - 0.30) < 0.03)
        #expect(keys.map { models.model("bikes", for: UUIDv7.make(at: Date()), key: $0)!.artifact.version } == versions)
        // Pinned: the hash is FNV-1a of the canary's version, a NUL and the key, with SplitMix64's finaliser,
        // whatever the process.
        #expect(versions.prefix(12).joined(separator: ",") == "7,7,7,8,8,8,7,7,7,7,7,8", "computed by Python from the same definition")
    }

    @Test func swappingInTheCanarysVersionEndsTheCanary() throws {
        let models = ModelSet([try served("7")], canaryPercent: 50)
        models.setCanary(try served("8"), of: "bikes")
        #expect(models.swap(to: try served("8"))?.artifact.version == "7")
        #expect(models["bikes"]?.live.artifact.version == "8")
        #expect(models["bikes"]?.canary == nil)
        // Another version swapped in leaves a running canary alone.
        models.setCanary(try served("9"), of: "bikes")
        models.swap(to: try served("10"))
        #expect(models["bikes"]?.canary?.artifact.version == "9")
        #expect(models.names == ["bikes"])
    }
}
