/// An operation did not finish in time.
public struct TimeoutError: Error, CustomStringConvertible, Equatable {
    public var timeout: Duration
    public var description: String { "no answer from PostgreSQL within \(timeout)" }
}

/// Runs `operation`, cancelling it and throwing `TimeoutError` after `timeout`.
///
/// PostgresNIO holds a query for about a minute while it cannot connect; callers that must answer sooner
/// (a request handler, the writer's retry loop) bound it with this.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(timeout: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
