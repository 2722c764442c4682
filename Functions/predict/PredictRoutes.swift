import CycloneModel
import CycloneHTTP
import CycloneRuntime
import CycloneServing
import CycloneStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics

/// `POST /predict`: scores `{"instances": [{feature: value, …}, …], "keys": ["caller-id", …]}` (the request
/// shape of Vertex AI and KServe v1; `keys` is optional, one per instance, `null` for none) and stores every
/// served instance.
///
/// Answers `{"predictions": [{"id": …, "value": …} | {"id": …, "class": …, "probabilities": {…}}, …],
/// "model": {"name": …, "version": …}}` with header `Cyclone-Stored: committed|buffered|dropped` saying how
/// far the rows got.
struct PredictRoutes: Sendable {
    let models: ModelSet
    let writer: PredictionWriter
    let settings: PredictSettings
    /// The request bodies handled at once (`MAX_BODY_BYTES_IN_FLIGHT`).
    let budget: BodyBudget

    static let storedHeader = HTTPField.Name("Cyclone-Stored")!
    private let rejected = Counter(label: "cyclone_rejected_requests_total")
    private let scorer = Scorer()

    init(models: ModelSet, writer: PredictionWriter, settings: PredictSettings) {
        self.models = models
        self.writer = writer
        self.settings = settings
        budget = BodyBudget(bytes: settings.server.maxBodyBytesInFlight)
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/predict") { request, context in try await predict(request, name: nil, context: context) }
        router.post("/predict/:name") { request, context in
            try await predict(request, name: context.parameters.path("name"), context: context)
        }
        router.get("/openapi.json") { request, _ in
            let serving = try await serving(request.uri.queryParameters["model"].map(String.init))
            return jsonResponse(OpenAPIDocument.predict(serving.live.artifact, maxInstances: settings.maxInstances))
        }
        router.get("/model") { _, _ in jsonResponse(modelStatus(try await serving(nil))) }
        router.get("/model/:name") { _, context in
            jsonResponse(modelStatus(try await serving(context.parameters.path("name"))))
        }
    }

    /// `GET /model[/NAME]`: what serves now, `{"name", "version", "canary": {"version", "percent"}, "shadow":
    /// {"version"}}` (`canary` and `shadow` only during one), so an operator or a deployment can see a swap, a
    /// canary or a shadow take effect.
    func modelStatus(_ serving: ModelSet.Serving) -> String {
        let (current, canary) = (serving.live.artifact, serving.canary?.artifact)
        var model: [String: JSONValue] = ["name": .string(current.name), "version": .string(current.version)]
        if let canary {
            model["canary"] = ["version": .string(canary.version), "percent": .number(Double(models.canaryPercent))]
        }
        if let shadow = serving.shadow?.artifact { model["shadow"] = ["version": .string(shadow.version)] }
        return JSONValue.object(model).jsonText
    }

    /// What serves model `name`, loading it when it is not loaded; without a name, the only model served.
    /// 404 names the models served; 400 asks for a name when there are several; 503 when its file does not load.
    func serving(_ name: String?) async throws -> ModelSet.Serving {
        let name = try name ?? onlyName()
        do { return try await models.serving(name) } catch {
            switch error {
            case .notFound: throw APIError(.notFound, error.description)
            case .unloadable: throw APIError(.serviceUnavailable, error.description)
            }
        }
    }

    /// The one model a request without a model name is for.
    private func onlyName() throws -> String {
        let names = models.names
        guard names.count == 1 else {
            throw APIError(names.isEmpty ? .notFound : .badRequest, names.isEmpty
                ? "no model is served here yet"
                : "\(names.count) models are served here (\(ModelSet.listing(names))): name one, as in /predict/\(names[0])")
        }
        return names[0]
    }

    private struct Body {
        var instances: [JSONValue]
        var keys: [String?]?
    }

    /// A refused request, the version it was refused by, and the instances it carried (1 when unread).
    struct Refusal: Error {
        var error: APIError
        var model: ServedModel
        var instances = 1
    }

    /// Runs `handle` for a request `serving` answers, counting a request it refuses (a 4xx): against the
    /// version a `Refusal` names, or, when it was refused before a version was picked (no body, not JSON, no
    /// instances), the one its first id picks.
    func countingRefusals<T>(_ serving: ModelSet.Serving, firstID: UUID, _ handle: () async throws -> T) async throws -> T {
        do {
            return try await handle()
        } catch let refusal as Refusal {
            refuse(refusal.model, instances: refusal.instances)
            throw refusal.error
        } catch let error as APIError where error.status.code < 500 {
            refuse(serving.pick(for: firstID, canaryPercent: models.canaryPercent).model)
            throw error
        }
    }

    /// Runs `handle` for a request of `instances` instances that `model` serves: a 4xx it throws becomes a
    /// `Refusal` by that version.
    func refused<T>(by model: ServedModel, instances: Int, _ handle: () async throws -> T) async throws -> T {
        do {
            return try await handle()
        } catch let error as APIError where error.status.code < 500 {
            // Too many instances is one refusal, not a count the request only claimed.
            let counted = error.status == .contentTooLarge ? 1 : min(max(1, instances), settings.maxInstances)
            throw Refusal(error: error, model: model, instances: counted)
        }
    }

    /// `POST /predict[/NAME]` (and KServe v1's `:predict`) for model `name`, or the only one.
    func predict(_ request: Request, name: String?, context: BasicRequestContext) async throws -> Response {
        // One model for the whole request, whatever a swap does meanwhile: the live one, or during a canary the
        // one the request's first key picks (its first prediction id when it has none), once, as it is read.
        let now = Date(), started = ContinuousClock.now
        let firstID = UUIDv7.make(at: now, sequence: 0)
        let serving = try await serving(name)
        return try await countingRefusals(serving, firstID: firstID) {
            // Only `instances` and `keys` are built (Vertex AI's `parameters` and the like are checked, not kept).
            try await request.withJSONBody(limit: settings.server.maxBodyBytes, members: ["instances", "keys"],
                                           budget: budget) { json in
                let body = try Self.decodeBody(json)
                let pick = serving.pick(for: firstID, key: body.keys?.lazy.compactMap { $0 }.first,
                                        canaryPercent: models.canaryPercent)
                return try await refused(by: pick.model, instances: body.instances.count) {
                    try await predict(body, pick: pick, firstID: firstID, now: now, started: started)
                }
            }
        }
    }

    private func predict(_ body: Body, pick: ModelSet.Pick, firstID: UUID, now: Date,
                         started: ContinuousClock.Instant) async throws -> Response
    {
        guard !body.instances.isEmpty else {
            throw APIError(.badRequest, "instances must hold at least one instance", path: "instances")
        }
        guard body.instances.count <= settings.maxInstances else {
            throw APIError(.contentTooLarge,
                           "\(body.instances.count) instances is more than the \(settings.maxInstances) allowed per request (MAX_INSTANCES)",
                           path: "instances")
        }
        if let keys = body.keys {
            guard keys.count == body.instances.count else {
                throw APIError(.badRequest, "keys has \(keys.count) entries for \(body.instances.count) instances; give one per instance (null for none)", path: "keys")
            }
            for (index, key) in keys.enumerated() {
                if let key, let problem = Storable.keyProblem(key) {
                    throw APIError(.badRequest, problem, path: "keys[\(index)]")
                }
            }
        }

        var scored: Scorer.Scored
        do {
            scored = try score(body.instances, keys: body.keys, pick: pick, firstID: firstID, now: now)
        } catch {
            throw APIError(.badRequest, error.description, path: error.path)
        }
        let model = pick.model
        var response = JSONWriter(capacity: 64 + scored.predictions.count * 96)
        response.raw("{\"predictions\":[")
        for (index, prediction) in scored.predictions.enumerated() {
            if index > 0 { response.raw(UInt8(ascii: ",")) }
            response.raw("{\"id\":")
            response.string(prediction.id.uuidString.lowercased())
            if let key = prediction.key {
                response.raw(",\"key\":")
                response.string(key)
            }
            response.raw(UInt8(ascii: ","))
            model.write(prediction.output, into: &response)
            response.raw(UInt8(ascii: "}"))
        }
        response.raw("],\"model\":")
        response.raw(model.modelJSON)
        response.raw(UInt8(ascii: "}"))
        let outcome = await store(&scored, started: started)
        return jsonResponse(response.bytes, headers: [Self.storedHeader: outcome.rawValue])
    }

    /// Scores `instances` with the picked version, and with its shadow when it has one (the answer is the
    /// version's alone). Throws the first instance the version cannot take; nothing is counted then.
    func score(_ instances: [JSONValue], keys: [String?]?, pick: ModelSet.Pick, firstID: UUID, now: Date)
        throws(InputError) -> Scorer.Scored
    {
        var scored = try scorer.score(instances, keys: keys, with: pick.model, firstID: firstID, at: now)
        if let shadow = pick.shadow { scorer.shadow(instances, with: shadow, into: &scored, budget: settings.shadowBudget) }
        return scored
    }

    /// Hands the scored rows to the writer (waiting for their commit when `STORE_MODE` is durable) and says how
    /// far they got, for the `Cyclone-Stored` header.
    func store(_ scored: inout Scorer.Scored, started: ContinuousClock.Instant) async -> PredictionWriter.Outcome {
        // The request's time in predict, up to the hand-over to the writer, stored with its first row only:
        // latency percentiles are then per request, however many instances each carried.
        scored.rows[0].latencyMs = (ContinuousClock.now - started).seconds * 1_000
        return await writer.append(scored.rows, waitForCommit: settings.durable)
    }

    /// Counts a refused request: in the metrics, and in the store (its instances) for the evaluator's
    /// data-quality report.
    private func refuse(_ model: ServedModel, instances: Int = 1) {
        rejected.increment()
        writer.reject(model: model.artifact.name, version: model.artifact.version, count: instances)
    }

    /// Reads `{"instances": [...], "keys": [...]}`; other top-level members (Vertex AI's `parameters`) are ignored.
    private static func decodeBody(_ json: JSONValue) throws -> Body {
        guard case .object(let top) = json else {
            throw APIError(.badRequest, "the body must be a JSON object {\"instances\": [...]}, found \(json.typeName)")
        }
        guard let instancesValue = top["instances"] else {
            throw APIError(.badRequest, "'instances' is required", path: "instances")
        }
        guard case .array(let instances) = instancesValue else {
            throw APIError(.badRequest, "must be an array of instances, found \(instancesValue.typeName)", path: "instances")
        }
        var keys: [String?]?
        switch top["keys"] {
        case nil, .null?: keys = nil
        case .array(let items)?:
            keys = try items.enumerated().map { index, item in
                switch item {
                case .string(let key): return key
                case .null: return nil
                default:
                    throw APIError(.badRequest, "a key must be a string or null, found \(item.typeName)", path: "keys[\(index)]")
                }
            }
        case let other?:
            throw APIError(.badRequest, "must be an array of keys, found \(other.typeName)", path: "keys")
        }
        return Body(instances: instances, keys: keys)
    }
}

extension Parameters {
    /// The path parameter `name`, percent-decoded (the router leaves a segment as sent).
    func path(_ name: String) throws -> String {
        let segment = try require(name)
        return segment.removingPercentEncoding ?? segment
    }
}
