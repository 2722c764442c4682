import CycloneModel
import CycloneServer
import CycloneStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOFoundationEssentialsCompat

/// `POST /predict`: scores `{"instances": [{feature: value, …}, …], "keys": ["caller-id", …]}` (the request
/// shape of Vertex AI and KServe v1; `keys` is optional, one per instance, `null` for none) and stores every
/// served instance.
///
/// Answers `{"predictions": [{"id": …, "value": …} | {"id": …, "class": …, "probabilities": {…}}, …],
/// "model": {"name": …, "version": …}}` with header `Cyclone-Stored: committed|buffered|dropped` saying how
/// far the rows got.
struct PredictRoutes: Sendable {
    let model: ServedModel
    let writer: PredictionWriter
    let settings: PredictSettings

    private static let storedHeader = HTTPField.Name("Cyclone-Stored")!
    private let rejected = Counter(label: "cyclone_rejected_requests_total")
    private let served = Counter(label: "cyclone_instances_served_total")
    private let imputed = Counter(label: "cyclone_imputed_values_total")
    private let unknownCategories = Counter(label: "cyclone_unknown_categories_total")

    init(model: ServedModel, writer: PredictionWriter, settings: PredictSettings) {
        self.model = model
        self.writer = writer
        self.settings = settings
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/predict") { request, context in try await predict(request, context: context) }
        router.get("/openapi.json") { _, _ in jsonResponse(OpenAPIDocument.predict(model.artifact)) }
    }

    private struct Body: Decodable {
        var instances: [JSONValue]
        var keys: [String?]?
    }

    func predict(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let body: Body
        do {
            body = try await decodeBody(request)
        } catch {
            rejected.increment()
            throw error
        }
        guard !body.instances.isEmpty else {
            rejected.increment()
            throw APIError(.badRequest, "instances must hold at least one instance", path: "instances")
        }
        guard body.instances.count <= settings.maxInstances else {
            rejected.increment()
            throw APIError(.contentTooLarge,
                           "\(body.instances.count) instances is more than the \(settings.maxInstances) allowed per request (MAX_INSTANCES)",
                           path: "instances")
        }
        if let keys = body.keys {
            guard keys.count == body.instances.count else {
                rejected.increment()
                throw APIError(.badRequest, "keys has \(keys.count) entries for \(body.instances.count) instances; give one per instance (null for none)", path: "keys")
            }
            if let empty = keys.firstIndex(where: { $0 == "" }) {
                rejected.increment()
                throw APIError(.badRequest, "a key must not be empty (use null for none)", path: "keys[\(empty)]")
            }
        }

        let now = Date()
        var notes = InstanceEncoder.Notes()
        var rows: [PredictionRow] = []
        rows.reserveCapacity(body.instances.count)
        var response = JSONWriter(capacity: 64 + body.instances.count * 96)
        response.raw("{\"predictions\":[")
        let artifact = model.artifact
        for (index, instance) in body.instances.enumerated() {
            let x: [Double]
            do {
                x = try model.encoder.encode(instance, path: "instances[\(index)]", notes: &notes)
            } catch {
                rejected.increment()
                throw APIError(.badRequest, error.description, path: error.path)
            }
            let output = artifact.predictor.predict(x)
            let id = UUIDv7.make(at: now)
            let idText = id.uuidString.lowercased()
            var stored = JSONWriter(capacity: 64)
            stored.raw(UInt8(ascii: "{"))
            model.write(output, into: &stored)
            stored.raw(UInt8(ascii: "}"))
            let key = body.keys?[index] ?? nil
            rows.append(PredictionRow(id: id, modelName: artifact.name, modelVersion: artifact.version,
                                      input: instance.jsonText, prediction: stored.string, key: key, createdAt: now))
            if index > 0 { response.raw(UInt8(ascii: ",")) }
            response.raw("{\"id\":")
            response.string(idText)
            if let key {
                response.raw(",\"key\":")
                response.string(key)
            }
            response.raw(UInt8(ascii: ","))
            model.write(output, into: &response)
            response.raw(UInt8(ascii: "}"))
        }
        response.raw("],\"model\":")
        response.raw(model.modelJSON)
        response.raw(UInt8(ascii: "}"))

        served.increment(by: rows.count)
        if notes.imputed > 0 { imputed.increment(by: notes.imputed) }
        if notes.unknownCategories > 0 { unknownCategories.increment(by: notes.unknownCategories) }

        let outcome = await writer.append(rows, waitForCommit: settings.durable)
        return jsonResponse(response.bytes, headers: [Self.storedHeader: outcome.rawValue])
    }

    private func decodeBody(_ request: Request) async throws -> Body {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: settings.server.maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "the request body is larger than \(settings.server.maxBodyBytes) bytes (MAX_BODY_BYTES)")
        }
        do {
            return try JSONDecoder().decode(Body.self, from: buffer)
        } catch let error as DecodingError {
            throw APIError(decoding: error)
        }
    }
}

extension APIError {
    /// A 400 naming where the body did not fit `{"instances": [...], "keys": [...]}`.
    init(decoding error: DecodingError) {
        func render(_ path: [any CodingKey]) -> String { path.jsonPath }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(.badRequest, "'\(key.stringValue)' is required", path: render(context.codingPath + [key]))
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            self.init(.badRequest, "the body must be a JSON object {\"instances\": [...]}")
        case .typeMismatch(let type, let context):
            let expected = type == [JSONValue].self || type == [String?].self ? "an array" : type == String.self ? "a string or null" : "\(type)"
            self.init(.badRequest, "must be \(expected)", path: render(context.codingPath))
        case .valueNotFound(_, let context):
            self.init(.badRequest, "must not be null", path: render(context.codingPath))
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                // Foundation says no more than "not valid JSON", so say what usually causes it.
                self.init(.badRequest, "the body is not valid JSON (check quotes, commas and brackets; numbers must fit a 64-bit float)")
            } else {
                self.init(.badRequest, context.debugDescription, path: render(context.codingPath))
            }
        @unknown default:
            self.init(.badRequest, "the body could not be read: \(error)")
        }
    }
}
