import CycloneModel
import Hummingbird

extension Request {
    /// The body parsed as JSON (`JSONParser`), read up to `limit` bytes.
    ///
    /// - Throws: `APIError` 413 when the body is larger than `limit` (named by `setting`), 400 when it is not JSON
    ///   (saying what is wrong, with line and column).
    public func jsonBody(limit: Int, setting: String = "MAX_BODY_BYTES") async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "the request body is larger than \(limit) bytes (\(setting))")
        }
        do {
            return try buffer.withUnsafeReadableBytes { raw throws(JSONParseError) in
                try JSONParser.parse(raw.bindMemory(to: UInt8.self))
            }
        } catch {
            throw APIError(.badRequest, "the body is not valid JSON: \(error)")
        }
    }
}
