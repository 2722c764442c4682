import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Runs a `PostgresClient` (as a service, or around a body of work), and lets work that queries at start wait
/// until it runs: a query before `run()` works, but PostgresNIO warns that `run()` has not been called.
public final class DatabaseRunner: Service, Sendable {
    public let client: PostgresClient
    private let state = Mutex<(started: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    public init(_ client: PostgresClient) { self.client = client }

    public func run() async {
        let waiting = state.withLock { state in
            state.started = true
            defer { state.waiting = [] }
            return state.waiting
        }
        // The waiters resume on other threads; this task goes straight on into `run()`.
        for continuation in waiting { continuation.resume() }
        await client.run()
    }

    /// Returns once `run()` has begun.
    public func running() async {
        await withCheckedContinuation { continuation in
            let started = state.withLock { state in
                if !state.started { state.waiting.append(continuation) }
                return state.started
            }
            if started { continuation.resume() }
        }
        await Task.yield()
    }

    /// Runs `body` with the client running, and stops the client afterwards.
    public func whileRunning<T: Sendable>(_ body: (PostgresClient) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.run() }
            defer { group.cancelAll() }
            await running()
            return try await body(client)
        }
    }
}
