import CycloneModel
import Foundation
import Hummingbird
import Logging

/// An error answered to the client as `{"error": {"status": 400, "message": "…", "path": "instances[2].age"}}`.
///
/// `path` points into the request body where the fault is, when there is one. Messages never carry SQL,
/// credentials or stack traces.
public struct APIError: HTTPResponseError, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var path: String?
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, path: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.path = path
        self.headers = headers
    }

    public var description: String { "\(status.code) \(path.map { "\($0): " } ?? "")\(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var writer = JSONWriter(capacity: 128 + message.utf8.count)
        writer.raw("{\"error\":{\"status\":")
        writer.number(Double(status.code))
        writer.raw(",\"message\":")
        writer.string(message)
        if let path {
            writer.raw(",\"path\":")
            writer.string(path)
        }
        writer.raw("}}")
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes)))
    }
}

/// Turns every error into a JSON error response: `APIError` as it is, Hummingbird's `HTTPError` (unknown
/// route, body too large…) with its status and message, an error `isUnavailable` recognises (the store out of
/// reach) into a 503 with `Retry-After`, anything else into a 500 that names the request id after logging the
/// error in full.
public struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let isUnavailable: @Sendable (any Error) -> Bool

    public init(isUnavailable: @escaping @Sendable (any Error) -> Bool = { _ in false }) {
        self.isUnavailable = isUnavailable
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            return try APIError(error.status, message, headers: error.headers).response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            return try APIError(error.status, error.status.reasonPhrase).response(from: request, context: context)
        } catch where isUnavailable(error) {
            context.logger.error("request failed: the store is unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return try APIError(.serviceUnavailable, "the store is unavailable; retry later", headers: [.retryAfter: "5"])
                .response(from: request, context: context)
        } catch {
            // Hummingbird alone would log this at debug; a 500 deserves the whole story in the logs.
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return try APIError(.internalServerError, "internal error (request \(context.id))")
                .response(from: request, context: context)
        }
    }
}

/// Answers an `APIError` as `{"error": "path: message"}`, the error body the Open Inference Protocol and KServe
/// use, with the same status and headers. Added to a protocol's route group, inside the router's own errors.
public struct FlatErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            var writer = JSONWriter(capacity: 32 + error.message.utf8.count)
            writer.raw("{\"error\":")
            writer.string(error.path.map { "\($0): \(error.message)" } ?? error.message)
            writer.raw("}")
            var headers = error.headers
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes)))
        }
    }
}
