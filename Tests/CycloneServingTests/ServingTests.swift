import CycloneModel
import CycloneServing
import CycloneStore
import CycloneTestSupport
import Foundation
import Synchronization
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

/// A model set over a model folder: models loaded when first asked for, at most `capacity` at once, each with
/// its own canary and shadow, and its files watched.
@Suite struct ModelFolderTests {
    /// A new folder holding `versions/NAME-VERSION.json` for each model and the link `NAME.json` to it, as the
    /// local platform lays it out.
    private func folder(_ models: [ModelArtifact]) throws -> ModelFolder {
        let folder = ModelFolder(TestFiles.folder.appendingPathComponent("cyclone-folder-\(UUID().uuidString)").path)
        try FileManager.default.createDirectory(atPath: "\(folder.path)/\(ModelFolder.versions)", withIntermediateDirectories: true)
        for model in models { try deploy(model, in: folder) }
        return folder
    }

    private func deploy(_ model: ModelArtifact, in folder: ModelFolder, as slot: ModelFolder.Slot = .live) throws {
        let file = ModelFolder.versionFile(name: model.name, version: model.version)
        try model.write(to: URL(fileURLWithPath: "\(folder.path)/\(file)"))
        let link = folder.file(of: model.name, slot)
        try? FileManager.default.removeItem(atPath: link + ".next")
        try FileManager.default.createSymbolicLink(atPath: link + ".next", withDestinationPath: file)
        #expect(rename(link + ".next", link) == 0)
    }

    private func models(_ folder: ModelFolder, capacity: Int = .max, canaryPercent: Int = 0,
                        served: @escaping @Sendable (ModelArtifact, ModelRegistry.Status) -> Void = { _, _ in }) -> ModelSet {
        ModelSet(source: ModelSource(.folder(folder), strictCategories: false, logger: .test), capacity: capacity,
                 canaryPercent: canaryPercent, served: served)
    }

    @Test func theFolderListsItsModelsAndNothingElse() async throws {
        let folder = try folder([try TestModels.regression(name: "bikes"), try TestModels.regression(name: "taxis")])
        try deploy(try TestModels.regression(name: "bikes", version: "8"), in: folder, as: .canary)
        _ = FileManager.default.createFile(atPath: "\(folder.path)/.hidden.json", contents: Data("{}".utf8))
        _ = FileManager.default.createFile(atPath: "\(folder.path)/notes.txt", contents: Data())
        #expect(try folder.names() == ["bikes", "taxis"])
        #expect(ModelFolder.nameProblem("bikes") == nil)
        #expect(ModelFolder.nameProblem("a/b") != nil && ModelFolder.nameProblem(".x") != nil)
        #expect(ModelFolder.nameProblem("bikes.canary") != nil && ModelFolder.nameProblem("") != nil)
        #expect(throws: (any Error).self) { try ModelFolder("/nonexistent-\(UUID().uuidString)").names() }
        // The layout before versions/: a model whose link points beside it keeps its versions there as plain
        // files NAME-VERSION.json, which are not models; beside a model of today's layout, a plain file so
        // named (put there by hand) is one, and so is a link.
        for version in ["1", "2"] {
            try TestModels.regression(name: "trams", version: version).write(to: URL(fileURLWithPath: "\(folder.path)/trams-\(version).json"))
        }
        try FileManager.default.createSymbolicLink(atPath: folder.file(of: "trams"), withDestinationPath: "trams-2.json")
        try TestModels.regression(name: "bikes-eu").write(to: URL(fileURLWithPath: "\(folder.path)/bikes-eu.json"))
        try FileManager.default.createSymbolicLink(atPath: "\(folder.path)/taxis-eu.json",
                                                   withDestinationPath: "versions/taxis-7.json")
        #expect(try folder.names() == ["bikes", "bikes-eu", "taxis", "taxis-eu", "trams"])
        #expect(folder.isOldVersionFile("trams-1") && !folder.isOldVersionFile("bikes-eu"))
        let models = models(folder)
        #expect(try await models.serving("trams").live.artifact.version == "2")
        await #expect { try await models.serving("trams-1") } throws: { "\($0)".contains("not served here") }
    }

    @Test func modelsLoadWhenFirstAskedForAndTheLeastRecentlyUsedIsUnloaded() async throws {
        let names = ["a", "b", "c"]
        let folder = try folder(try names.map { try TestModels.regression(name: $0) })
        let registered = Mutex<[String]>([])
        let models = models(folder, capacity: 2) { artifact, status in
            registered.withLock { $0.append("\(artifact.name)@\(artifact.version):\(status.rawValue)") }
        }
        #expect(models.names == names && models.loadedNames.isEmpty)
        #expect(try await models.serving("a").live.artifact.name == "a")
        #expect(try await models.serving("b").live.artifact.name == "b")
        _ = try await models.serving("a")  // a is now more recent than b
        #expect(try await models.serving("c").live.artifact.name == "c")
        #expect(models.loadedNames == ["a", "c"], "b, the least recently used, is unloaded")
        #expect(try await models.serving("b").live.artifact.name == "b")
        #expect(models.loadedNames == ["b", "c"])
        #expect(registered.withLock { $0 } == ["a@7:live", "b@7:live", "c@7:live", "b@7:live"])
        // Concurrent first requests share one load.
        let loads = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await models.serving("a").live.artifact.name } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(loads == Array(repeating: "a", count: 20))
        #expect(registered.withLock { $0.filter { $0.hasPrefix("a@") }.count } == 2)
    }

    @Test func aModelNotInTheFolderOrThatDoesNotLoadIsSaidSo() async throws {
        let folder = try folder([try TestModels.regression(name: "bikes")])
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: folder.file(of: "broken")))
        // A file holding another model than its name says.
        try TestModels.regression(name: "bikes").write(to: URL(fileURLWithPath: folder.file(of: "taxis")))
        let models = models(folder)
        await #expect { try await models.serving("trains") } throws: {
            "\($0)" == "model 'trains' is not served here (models: bikes, broken, taxis)"
        }
        await #expect { try await models.serving("broken") } throws: {
            guard case .unloadable(name: "broken", _) = $0 as? ModelSet.LoadError else { return false }
            return true
        }
        await #expect { try await models.serving("taxis") } throws: { "\($0)".contains("holds model 'bikes', not 'taxis'") }
        await #expect { try await models.serving("../bikes") } throws: { "\($0)".contains("not served here") }
        // A long list is cut, a long name too; a folder that cannot be read is no answer about a model.
        #expect(ModelSet.listing((0..<25).map { "m\($0)" }).hasSuffix("m19, and 5 more"))
        await #expect { try await models.serving(String(repeating: "x", count: 5_000)) } throws: { "\($0)".count < 400 }
        try FileManager.default.moveItem(atPath: folder.path, toPath: folder.path + ".away")
        await #expect { try await models.serving("trains") } throws: { "\($0)".contains("the model folder \(folder.path) cannot be read") }
        try FileManager.default.moveItem(atPath: folder.path + ".away", toPath: folder.path)
        #expect(models.loadedNames.isEmpty)
        #expect(try await models.serving("bikes").live.artifact.version == "7")
        // A broken file mended is served at once (a new file, or the same one rewritten).
        try TestModels.regression(name: "broken").write(to: URL(fileURLWithPath: folder.file(of: "broken")))
        #expect(try await models.serving("broken").live.artifact.name == "broken")
    }

    /// Each model's canary and shadow are its own links; a deploy of one model changes nothing of another's.
    @Test func eachModelHasItsOwnChallengersAndSwaps() async throws {
        let folder = try folder([try TestModels.regression(name: "a"), try TestModels.regression(name: "b")])
        try deploy(try TestModels.regression(name: "a", version: "8"), in: folder, as: .canary)
        let models = models(folder, canaryPercent: 50)
        #expect(try await models.serving("a").canary?.artifact.version == "8")
        #expect(try await models.serving("b").canary == nil)
        try deploy(try TestModels.regression(name: "b", version: "9"), in: folder)
        try deploy(try TestModels.regression(name: "b", version: "10"), in: folder, as: .shadow)
        models.refresh()
        #expect(models["b"]?.live.artifact.version == "9" && models["b"]?.shadow?.artifact.version == "10")
        #expect(models["a"]?.live.artifact.version == "7" && models["a"]?.canary?.artifact.version == "8")
        #expect(models["a"]?.shadow == nil)
        // A model whose file is gone at two looks in a row is no longer served (one look may fall between an
        // unlink and a new link); the other stays.
        try FileManager.default.removeItem(atPath: folder.file(of: "a"))
        models.refresh()
        #expect(models.loadedNames == ["a", "b"])
        models.refresh()
        #expect(models.loadedNames == ["b"])
        await #expect(throws: ModelSet.LoadError.self) { try await models.serving("a") }
    }

    /// A canary refused because it held the live version serves once live moves on; a link to a missing file
    /// says so.
    @Test func aChallengerIsJudgedAgainWhenLiveMovesOn() async throws {
        let folder = try folder([try TestModels.regression(name: "a", version: "7")])
        try deploy(try TestModels.regression(name: "a", version: "7"), in: folder, as: .canary)
        let models = models(folder, canaryPercent: 50)
        #expect(try await models.serving("a").canary == nil, "the canary is the live version")
        try deploy(try TestModels.regression(name: "a", version: "9"), in: folder)
        models.refresh()
        #expect(models["a"]?.live.artifact.version == "9" && models["a"]?.canary?.artifact.version == "7")
        try FileManager.default.createSymbolicLink(atPath: folder.file(of: "b"), withDestinationPath: "versions/b-1.json")
        await #expect { try await models.serving("b") } throws: { "\($0)".contains("is a link to versions/b-1.json, which does not exist") }
    }
}
