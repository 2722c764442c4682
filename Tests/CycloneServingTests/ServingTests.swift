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

@Suite struct ShadowScoringTests {
    /// The regression with its intercept raised by `offset`, as version `version`.
    private func shifted(_ offset: Double, version: String) throws -> ModelArtifact {
        var artifact = try TestModels.regression(version: version)
        if case .linear(var linear) = artifact.predictor {
            linear.intercept += offset
            artifact.predictor = .linear(linear)
        }
        return artifact
    }

    /// The fixture's test instances this regression takes as they are (it requires every feature; no unseen
    /// category).
    private func instances(for live: ServedModel) throws -> [JSONValue] {
        var notes = InstanceEncoder.Notes()
        let strict = InstanceEncoder(features: live.artifact.features, preprocessing: live.artifact.preprocessing,
                                     strictCategories: true)
        return try LinearCase.all().first { $0.name == "ridge_mixed" }!.testInstances().filter {
            (try? strict.encode($0, path: "", notes: &notes)) != nil
        }
    }

    /// Each row gets the shadow's prediction of its own instance, in the stored shape; the answer's outputs
    /// are untouched.
    @Test func everyRowCarriesTheShadowsPrediction() throws {
        let live = ServedModel(artifact: try TestModels.regression(), strictCategories: false)
        let shadow = ServedModel(artifact: try shifted(5, version: "8"), strictCategories: false)
        let instances = try instances(for: live)
        #expect(instances.count >= 3)
        var scored = try Scorer().score(instances, keys: nil, with: live, firstID: UUIDv7.make(at: Date()), at: Date())
        let answered = scored.predictions.map(\.output)
        Scorer().shadow(instances, with: shadow, into: &scored, budget: .seconds(10))
        #expect(scored.predictions.map(\.output) == answered)
        for (row, prediction) in zip(scored.rows, scored.predictions) {
            let stored = try #require(row.shadow)
            #expect(stored.version == "8")
            guard case .value(let value) = prediction.output, case .value(let shadowValue)? = shadow.prediction.output(stored.prediction)
            else { Issue.record("not a regression output"); continue }
            #expect(abs(shadowValue - value - 5) < 1e-9)
        }
    }

    /// An instance the shadow cannot take is stored with its refusal (the request is not failed); once the
    /// budget is spent, the rest go without a shadow score.
    @Test func aShadowThatFailsOrRunsOutOfTimeIsSkipped() throws {
        let live = ServedModel(artifact: try TestModels.regression(), strictCategories: false)
        // The shadow refuses categories it never saw; live serves them as unknown.
        let shadow = ServedModel(artifact: try shifted(1, version: "8"), strictCategories: true)
        var instances = try instances(for: live)
        guard case .object(var first) = instances[0] else { Issue.record("not an object"); return }
        first["season"] = .string("monsoon")
        instances[0] = .object(first)
        var scored = try Scorer().score(instances, keys: nil, with: live, firstID: UUIDv7.make(at: Date()), at: Date())
        Scorer().shadow(instances, with: shadow, into: &scored, budget: .seconds(10))
        // Stored as the shadow's refusal, which the verdict counts against it.
        #expect(scored.rows[0].shadow?.prediction.hasPrefix(#"{"error":"instances[0].season: 'monsoon'"#) == true,
                "\(scored.rows[0].shadow as Any)")
        #expect(scored.rows.dropFirst().allSatisfy { $0.shadow?.prediction.hasPrefix(#"{"value":"#) == true })

        var late = try Scorer().score(instances, keys: nil, with: live, firstID: UUIDv7.make(at: Date()), at: Date())
        Scorer().shadow(instances, with: ServedModel(artifact: try shifted(1, version: "8"), strictCategories: false),
                        into: &late, budget: .zero)
        #expect(late.rows.allSatisfy { $0.shadow == nil })
    }

    /// A challenger is scored beside live only when it takes the same instances.
    @Test func aChallengerWithAnotherSchemaIsNamed() throws {
        let live = ServedModel(artifact: try TestModels.regression(), strictCategories: false)
        #expect(live.challengeProblem(try shifted(1, version: "8")) == nil)
        var renamed = try shifted(1, version: "8")
        renamed.features[0].name = "temperature"
        #expect(live.challengeProblem(renamed)?.contains("features differ") == true)
        var optional = try shifted(1, version: "8")
        optional.features[1].required = false
        #expect(live.challengeProblem(optional) != nil)
        #expect(live.challengeProblem(try TestModels.binary())?.contains("churn") == true)
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

    /// Promoting the shadow (swapping it in as live) ends the shadow; another version's swap keeps it.
    @Test func aShadowEndsWhenItBecomesLive() throws {
        let models = ModelSet([try served("7")])
        models.setShadow(try served("8"), of: "bikes")
        models.swap(to: try served("9"))
        #expect(models["bikes"]?.shadow?.artifact.version == "8")
        models.swap(to: try served("8"))
        #expect(models["bikes"]?.shadow == nil)
        #expect(models["bikes"]?.live.artifact.version == "8")
        // A new live version whose schema the shadow no longer fits ends it too.
        models.setShadow(try served("9"), of: "bikes")
        var optional = try TestModels.regression(version: "10")
        optional.features[0].required = false
        models.swap(to: ServedModel(artifact: optional, strictCategories: false))
        #expect(models["bikes"]?.shadow == nil)
    }
}
