import CycloneModel
import CycloneHTTP
import CycloneRuntime
import CycloneStore
import Foundation
import Hummingbird
import Logging
import Metrics
import PostgresNIO

/// `POST /labels`: `{"labels": [{"id": "<prediction id>", "label": …} | {"key": "<caller key>", "label": …}, …]}`.
///
/// A label is a number (regression) or a string or boolean (a class). The batch is applied in one statement;
/// repeating a label is harmless, a different label replaces the old one and is counted. Answers
/// `{"applied": n, "overwritten": n, "unchanged": n, "notFound": [{"id": …} | {"key": …}, …]}`; nothing is
/// dropped silently. When PostgreSQL cannot be reached the answer is 503 and nothing was applied: retry.
struct LabelRoutes: Sendable {
    let store: LabelStore
    let settings: LabelSettings
    let logger: Logger
    /// The request bodies handled at once (`MAX_BODY_BYTES_IN_FLIGHT`).
    let budget: BodyBudget

    private let applied = Counter(label: "cyclone_labels_applied_total")
    private let overwritten = Counter(label: "cyclone_labels_overwritten_total")
    private let notFound = Counter(label: "cyclone_labels_not_found_total")
    private let rejected = Counter(label: "cyclone_rejected_requests_total")

    init(store: LabelStore, settings: LabelSettings, logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
        budget = BodyBudget(bytes: settings.server.maxBodyBytesInFlight)
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/labels") { request, context in try await ingest(request, context: context) }
        let document = LabelOpenAPI.document(maxLabels: settings.maxLabels)
        router.get("/openapi.json") { _, _ in jsonResponse(document) }
    }

    func ingest(_ request: Request, context: BasicRequestContext) async throws -> Response {
        do {
            return try await request.withJSONBody(limit: settings.server.maxBodyBytes, members: ["labels"],
                                                  budget: budget) { json in
                try await apply(try parse(json), context: context)
            }
        } catch let error as APIError where error.status.code < 500 {
            rejected.increment()
            throw error
        }
    }

    private func apply(_ labels: [LabelStore.Label], context: BasicRequestContext) async throws -> Response {
        let result: LabelStore.Result
        do {
            let store = self.store
            result = try await withTimeout(settings.databaseTimeout) { try await store.apply(labels) }
        } catch let misfit as LabelStore.Misfit {
            throw APIError(.badRequest, "\(misfit); no label of this request was applied (STRICT_LABELS=false accepts it)",
                           path: "labels[\(misfit.position)].label")
        } catch {
            context.logger.error("applying labels failed", metadata: [
                "labels": "\(labels.count)", "error": "\(String(reflecting: error))",
            ])
            switch StoreProblem(error) {
            case .unavailable where error is TimeoutError:
                // The statement may still commit after the deadline; applying the batch again is harmless.
                throw APIError(.serviceUnavailable, "the evaluation store did not answer in time; the labels may not have been applied, retry later (retrying is harmless)",
                               headers: [.retryAfter: "5"])
            case .unavailable:
                throw APIError(.serviceUnavailable, "the evaluation store is unavailable; no label was applied, retry later",
                               headers: [.retryAfter: "5"])
            case let problem:
                throw APIError(.internalServerError, "no label was applied: \(problem.explanation)")
            }
        }
        applied.increment(by: result.applied)
        overwritten.increment(by: result.overwritten)
        notFound.increment(by: result.notFound.count)
        var writer = JSONWriter()
        writer.raw("{\"applied\":")
        writer.number(Double(result.applied))
        writer.raw(",\"overwritten\":")
        writer.number(Double(result.overwritten))
        writer.raw(",\"unchanged\":")
        writer.number(Double(result.unchanged))
        writer.raw(",\"notFound\":[")
        for (i, target) in result.notFound.enumerated() {
            if i > 0 { writer.raw(UInt8(ascii: ",")) }
            switch target {
            case .id(let id):
                writer.raw("{\"id\":")
                writer.string(id.uuidString.lowercased())
            case .key(let key):
                writer.raw("{\"key\":")
                writer.string(key)
            }
            writer.raw(UInt8(ascii: "}"))
        }
        writer.raw("]}")
        return jsonResponse(writer.bytes)
    }

    private func parse(_ body: JSONValue) throws -> [LabelStore.Label] {
        guard case .object(let top) = body else { throw APIError(.badRequest, "the body must be a JSON object {\"labels\": [...]}") }
        guard let list = top["labels"] else { throw APIError(.badRequest, "'labels' is required", path: "labels") }
        guard case .array(let items) = list else { throw APIError(.badRequest, "must be an array", path: "labels") }
        if let extra = top.keys.first(where: { $0 != "labels" }) {
            throw APIError(.badRequest, "unknown field '\(extra)'", path: extra)
        }
        guard !items.isEmpty else { throw APIError(.badRequest, "labels must hold at least one label", path: "labels") }
        guard items.count <= settings.maxLabels else {
            throw APIError(.contentTooLarge, "\(items.count) labels is more than the \(settings.maxLabels) allowed per request (MAX_LABELS)", path: "labels")
        }
        return try items.enumerated().map { index, item in try Self.label(item, path: "labels[\(index)]") }
    }

    static func label(_ item: JSONValue, path: String) throws -> LabelStore.Label {
        guard case .object(let fields) = item else {
            throw APIError(.badRequest, "a label must be an object {\"id\" or \"key\", \"label\"}, found \(item.typeName)", path: path)
        }
        if let extra = fields.keys.sorted().first(where: { !["id", "key", "label"].contains($0) }) {
            throw APIError(.badRequest, "unknown field '\(extra)' (expected id or key, and label)", path: "\(path).\(extra)")
        }
        let target: LabelStore.Target
        switch (fields["id"], fields["key"]) {
        case (.some, .some): throw APIError(.badRequest, "give either id or key, not both", path: path)
        case (.some(.string(let text)), nil):
            guard let id = UUID(uuidString: text) else {
                throw APIError(.badRequest, "'\(text)' is not a prediction id (a UUID)", path: "\(path).id")
            }
            target = .id(id)
        case (.some(let other), nil):
            throw APIError(.badRequest, "must be a string (a prediction id), found \(other.typeName)", path: "\(path).id")
        case (nil, .some(.string(let key))):
            if let problem = Storable.keyProblem(key) { throw APIError(.badRequest, problem, path: "\(path).key") }
            target = .key(key)
        case (nil, .some(let other)):
            throw APIError(.badRequest, "must be a string (the key sent with the prediction), found \(other.typeName)", path: "\(path).key")
        case (nil, nil):
            throw APIError(.badRequest, "needs an id (from predict) or the key sent with the prediction", path: path)
        }
        guard let value = fields["label"] else { throw APIError(.badRequest, "'label' is required", path: "\(path).label") }
        switch value {
        case .number(let n) where Storable.accepts(n): break
        case .number:
            throw APIError(.badRequest, "must be a finite number of magnitude at most \(Storable.largestMagnitudeText)", path: "\(path).label")
        case .string(let text) where !Storable.accepts(text):
            throw APIError(.badRequest, "must not hold the NUL character (\\u0000), which cannot be stored", path: "\(path).label")
        case .string, .bool: break
        default:
            throw APIError(.badRequest, "must be a finite number, a string or a boolean, found \(value.typeName)", path: "\(path).label")
        }
        return LabelStore.Label(target: target, value: value)
    }
}
