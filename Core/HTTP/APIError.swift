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

    public var description: String { "\(status.code) \(flatMessage)" }

    /// `path: message`, or the message alone: the Open Inference Protocol's error text.
    public var flatMessage: String { path.map { "\($0): \(message)" } ?? message }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response(flat: false)
    }

    /// The error's response: `{"error": {"status", "message", "path"}}`, or with `flat` the Open Inference
    /// Protocol's and KServe's `{"error": "path: message"}`.
    public func response(flat: Bool) -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        if flat {
            var writer = JSONWriter(capacity: 32 + message.utf8.count)
            writer.raw("{\"error\":")
            writer.string(flatMessage)
            writer.raw("}")
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes)))
        }
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
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes)))
    }
}

/// Turns every error into a JSON error response: `APIError` as it is, Hummingbird's `HTTPError` (unknown
/// route, body too large…) with its status and message, an error `isUnavailable` recognises (the store out of
/// reach) into a 503 with `Retry-After`, anything else into a 500 that names the request id after logging the
/// error in full. Under the path prefixes `flatUnder` names (a protocol's, such as `/v2/`), the body is the
/// flat `{"error": "…"}` that protocol uses.
public struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let isUnavailable: @Sendable (any Error) -> Bool
    let flatUnder: [String]

    public init(isUnavailable: @escaping @Sendable (any Error) -> Bool = { _ in false }, flatUnder: [String] = []) {
        self.isUnavailable = isUnavailable
        self.flatUnder = flatUnder
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let flat = flatUnder.contains { request.uri.path.hasPrefix($0) }
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response(flat: flat)
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            return APIError(error.status, message, headers: error.headers).response(flat: flat)
        } catch let error as any HTTPResponseError {
            return APIError(error.status, error.status.reasonPhrase).response(flat: flat)
        } catch where isUnavailable(error) {
            context.logger.error("request failed: the store is unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(.serviceUnavailable, "the store is unavailable; retry later", headers: [.retryAfter: "5"])
                .response(flat: flat)
        } catch {
            // Hummingbird alone would log this at debug; a 500 deserves the whole story in the logs.
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(.internalServerError, "internal error (request \(context.id))").response(flat: flat)
        }
    }
}
