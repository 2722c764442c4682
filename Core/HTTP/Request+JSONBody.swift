import CycloneModel
import Foundation
import Hummingbird
import Synchronization

extension Request {
    /// The body parsed as JSON (`JSONParser`), read up to `limit` bytes. With `members`, only those members of a
    /// top-level object are built; the others are checked and stand as `null`.
    ///
    /// - Throws: `APIError` 413 when the body is larger than `limit` (named by `setting`), 400 when it is not JSON
    ///   (saying what is wrong, with line and column).
    public func jsonBody(limit: Int, setting: String = "MAX_BODY_BYTES", members: Set<String>? = nil) async throws
        -> JSONValue
    {
        try Self.parseJSON(try await collectJSONBody(limit: limit, setting: setting), members: members)
    }

    /// Runs `handle` with the body parsed as `jsonBody` does, holding its size in `budget` from when it has
    /// been read until `handle` returns: the reading is bounded by `limit`, the building (several times the
    /// body's size) by the budget, and a slow upload holds no budget while it arrives.
    public func withJSONBody<T>(limit: Int, setting: String = "MAX_BODY_BYTES", members: Set<String>? = nil,
                                budget: BodyBudget, _ handle: (JSONValue) async throws -> T) async throws -> T
    {
        try await withBody(limit: limit, setting: setting, budget: budget) { buffer in
            try await handle(try Self.parseJSON(buffer, members: members))
        }
    }

    /// Runs `handle` with the body's bytes, read and held in `budget` as `withJSONBody` does. With `anyType`,
    /// a body of any `Content-Type` is read (a protocol that frames JSON and binary data in one body).
    public func withBody<T>(limit: Int, setting: String = "MAX_BODY_BYTES", anyType: Bool = false, budget: BodyBudget,
                            _ handle: (ByteBuffer) async throws -> T) async throws -> T
    {
        let buffer = try await collectJSONBody(limit: limit, setting: setting, anyType: anyType)
        return try await budget.withBudget(buffer.readableBytes) { try await handle(buffer) }
    }

    /// The body's bytes, up to `limit`: 415 unless it is JSON, 413 (naming `setting`) when it is larger, before
    /// anything is read when its declared length says so.
    func collectJSONBody(limit: Int, setting: String, anyType: Bool = false) async throws -> ByteBuffer {
        if !anyType { try checkJSONContentType() }
        if let declared = headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw APIError(.contentTooLarge, "the request body is \(declared) bytes, more than the \(limit) allowed (\(setting))")
        }
        do {
            return try await body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "the request body is larger than the \(limit) bytes allowed (\(setting))")
        }
    }

    /// `buffer` parsed as JSON; 400 saying what is wrong, with line and column, when it is not.
    public static func parseJSON(_ buffer: ByteBuffer, members: Set<String>? = nil) throws -> JSONValue {
        do {
            return try buffer.withUnsafeReadableBytes { raw throws(JSONParseError) in
                try JSONParser.parse(raw.bindMemory(to: UInt8.self), members: members)
            }
        } catch {
            throw APIError(.badRequest, "the body is not valid JSON: \(error)")
        }
    }

    /// Refuses (415) a body declared as anything but JSON (`application/json`, or a `+json` type); one without a
    /// `Content-Type`, or with an empty one, is read as JSON.
    func checkJSONContentType() throws {
        guard let declared = headers[.contentType] else { return }
        let type = (declared.split(separator: ";", omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard type.isEmpty || type == "application/json" || type.hasSuffix("+json") else {
            throw APIError(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json), not \(declared)")
        }
    }
}

/// Bounds the request bodies handled at once, in bytes: a request whose body would pass the budget waits for
/// room (one alone always fits), so that many large bodies at once cannot take more memory than the process
/// has (`Request.withJSONBody`).
public final class BodyBudget: Sendable {
    public let bytes: Int
    private struct State {
        var inUse = 0
        var waiting: [(bytes: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    public init(bytes: Int) { self.bytes = bytes }

    /// Runs `body` holding `bytes` of the budget.
    public func withBudget<T>(_ bytes: Int, _ body: () async throws -> T) async rethrows -> T {
        await acquire(bytes)
        defer { release(bytes) }
        return try await body()
    }

    private func acquire(_ bytes: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.waiting.isEmpty && (state.inUse + bytes <= self.bytes || state.inUse == 0) {
                    state.inUse += bytes
                    return true
                }
                state.waiting.append((bytes, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func release(_ bytes: Int) {
        let admitted = state.withLock { state in
            state.inUse -= bytes
            var admitted: [CheckedContinuation<Void, Never>] = []
            while let next = state.waiting.first, state.inUse + next.bytes <= self.bytes || state.inUse == 0 {
                state.waiting.removeFirst()
                state.inUse += next.bytes
                admitted.append(next.continuation)
            }
            return admitted
        }
        for continuation in admitted { continuation.resume() }
    }
}
