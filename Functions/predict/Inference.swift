import CycloneHTTP
import CycloneModel
import CycloneServing
import CycloneStore
import Foundation
import Hummingbird

/// One inference over the Open Inference Protocol, whatever carried it (REST's `InferenceRoutes`, gRPC's
/// `InferenceService`): tensors in, output tensors out, through `/predict`'s own steps (the model picked,
/// scored with its shadow, stored, refusals counted). Errors are `APIError`s; each edge maps their status
/// to its own (`{"error"}` bodies, gRPC status codes).
struct Inference: Sendable {
    let predict: PredictRoutes
    let readiness: OperationalRoutes<BasicRequestContext>.Readiness

    static let serverName = "cyclone"
    /// The protocol's version this server speaks.
    static let serverVersion = "2"

    var isReady: Bool { get async { await readiness() == nil } }

    /// When a request began: its time, its first prediction id (the canary's pick when it has no key), and the
    /// clock's reading for its latency.
    struct Start {
        var now = Date()
        var clock = ContinuousClock.now
        var firstID: UUID

        init() { firstID = UUIDv7.make(at: now, sequence: 0) }
    }

    /// What serves `name` (loaded when it is not), and, when `version` is given, that it answers requests: 404
    /// otherwise, naming the models or versions that do.
    func served(_ name: String, version: String?) async throws -> ModelSet.Serving {
        let serving = try await predict.serving(name)
        if let version, !serving.versions.contains(version) {
            throw APIError(.notFound, "model '\(name)' has no version '\(version)' answering requests (versions: \(serving.versions.joined(separator: ", ")))")
        }
        return serving
    }

    /// The model a metadata request describes (the version named, else live) and the versions answering.
    func metadata(_ name: String, version: String?) async throws -> (model: ModelArtifact, versions: [String]) {
        let serving = try await served(name, version: version)
        var model = serving.live.artifact
        if let version, let canary = serving.canary?.artifact, canary.version == version { model = canary }
        return (model, serving.versions)
    }

    /// Scores the instances `inputs` hold with `version` of the model `serving` serves (or, without one, as
    /// `/predict` picks) and stores them. The caller counts refusals (`PredictRoutes.countingRefusals`) around
    /// reading the request.
    func infer(_ serving: ModelSet.Serving, version: String?, inputs: [InputTensor], requested: [String]?,
               started: Start) async throws -> (model: ModelArtifact, outputs: [OutputTensor], stored: PredictionWriter.Outcome)
    {
        let name = serving.live.artifact.name
        // The version first, by the path's version or the first caller key (read before the schema is known:
        // a canary may read other features than live), then the tensors against the version that answers.
        let pick: ModelSet.Pick?
        if let version {
            pick = serving.pick(version: version)
        } else {
            let keyIsFeature = serving.live.artifact.features.contains { $0.name == InferenceTensors.keyInput }
            let keys = keyIsFeature ? nil : inputs.first { $0.name == InferenceTensors.keyInput }
            let firstKey = keys?.elements.lazy.compactMap { element -> String? in
                if case .string(let key) = element { return key }
                return nil
            }.first
            pick = serving.pick(for: started.firstID, key: firstKey, canaryPercent: predict.models.canaryPercent)
        }
        guard let pick else { throw APIError(.notFound, "model '\(name)' version '\(version ?? "")' stopped answering requests") }
        // A refusal counts the instances the inputs' shapes claim (the first dimension; at most MAX_INSTANCES).
        return try await predict.refused(by: pick.model, instances: inputs.compactMap(\.shape.first).max() ?? 1) {
            let schema = pick.model.artifact
            let decoded: (instances: [JSONValue], keys: [String?]?)
            do {
                decoded = try InferenceTensors.instances(inputs, model: schema, maxInstances: predict.settings.maxInstances)
                try InferenceTensors.checkOutputs(requested, model: schema)
            } catch let error as InferenceError {
                throw APIError(error.kind.status, error.message, path: error.path)
            }
            var scored: Scorer.Scored
            do {
                scored = try predict.score(decoded.instances, keys: decoded.keys, pick: pick, firstID: started.firstID,
                                           now: started.now)
            } catch let error as InputError {
                throw APIError(.badRequest, String(error.description.dropFirst(error.path.count + 2)),
                               path: InferenceTensors.inputPath(error.path))
            }
            let outputs = InferenceTensors.outputs(scored.predictions, model: pick.model.artifact, requested: requested)
            let stored = await predict.store(&scored, started: started.clock)
            return (pick.model.artifact, outputs, stored)
        }
    }
}
