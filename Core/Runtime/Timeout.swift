import Synchronization

/// An operation did not finish in time.
public struct TimeoutError: Error, CustomStringConvertible, Equatable {
    public var timeout: Duration
    public init(timeout: Duration) { self.timeout = timeout }
    public var description: String { "no answer from PostgreSQL within \(timeout)" }
}

/// Runs `operation`, cancelling it and throwing `TimeoutError` after `timeout`.
///
/// The deadline holds whatever the operation does: the caller is answered at the deadline even when the
/// operation ignores its cancellation (a PostgresNIO query on a connection whose server died may never
/// return). The operation then goes on in the background until it ends by itself; its result is dropped.
///
/// PostgresNIO holds a query for about a minute while it cannot connect; callers that must answer sooner
/// (a request handler, the writer's retry loop) bound it with this. Deadlines are watched by one shared
/// `Watchdog` rather than a sleeping task per call: on Linux a cancelled `Task.sleep` keeps its timer and task
/// alive until the original deadline, which at thousands of calls a second grew memory without bound.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    let outcome = FirstOutcome<T>()
    let task = Task {
        do { outcome.finish(.success(try await operation())) } catch { outcome.finish(.failure(error)) }
    }
    let id = Watchdog.shared.watch(until: ContinuousClock.now.advanced(by: timeout)) {
        outcome.finish(.failure(TimeoutError(timeout: timeout)))
        task.cancel()
    }
    defer { Watchdog.shared.forget(id) }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { outcome.wait($0) }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
        task.cancel()
    }
}

/// The first of several possible results (an operation's, its deadline's, its caller's cancellation), handed
/// to one waiter exactly once; later ones are dropped.
public final class FirstOutcome<T: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<T, any Error>?)
        case finished(Result<T, any Error>)
        case delivered
    }

    private let state = Mutex(State.pending(nil))

    public init() {}

    /// Waits for the first result.
    public var value: T {
        get async throws { try await withCheckedThrowingContinuation { wait($0) } }
    }

    public func finish(_ result: Result<T, any Error>) {
        let waiting: CheckedContinuation<T, any Error>? = state.withLock { state in
            guard case .pending(let continuation) = state else { return nil }
            if let continuation {
                state = .delivered
                return continuation
            }
            state = .finished(result)
            return nil
        }
        waiting?.resume(with: result)
    }

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLock { state in
            switch state {
            case .pending(let waiting):
                precondition(waiting == nil, "waited twice for one outcome")
                state = .pending(continuation)
                return nil
            case .finished(let result):
                state = .delivered
                return result
            case .delivered:
                preconditionFailure("waited twice for one outcome")
            }
        }
        if let ready { continuation.resume(with: ready) }
    }
}

/// Calls the handlers of deadlines that passed, checking every 20 ms while any deadline is watched.
final class Watchdog: Sendable {
    // Paused entries keep the watchdog ticking every 20 ms; that costs nothing noticeable and keeps it simple.
    static let shared = Watchdog()

    private struct Entry {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        var ticking = false
    }

    private let state = Mutex(State())

    /// Calls `expire` once `deadline` has passed, unless `forget` comes first.
    func watch(until deadline: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, start) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.entries[id] = Entry(deadline: deadline, expire: expire)
            defer { state.ticking = true }
            return (id, !state.ticking)
        }
        if start { Task.detached { await self.tick() } }
        return id
    }

    /// Moves a watched deadline; `nil` pauses it until the next reset.
    func reset(_ id: UInt64, until deadline: ContinuousClock.Instant?) {
        state.withLock { state in
            state.entries[id]?.deadline = deadline ?? .distantFuture
        }
    }

    func forget(_ id: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// Runs while anything is watched; each sleep runs to its end, so nothing piles up.
    private func tick() async {
        while true {
            try? await Task.sleep(for: .milliseconds(20))
            let now = ContinuousClock.now
            let (due, stop) = state.withLock { state -> ([@Sendable () -> Void], Bool) in
                var due: [@Sendable () -> Void] = []
                for (id, entry) in state.entries where entry.deadline <= now {
                    due.append(entry.expire)
                    state.entries[id] = nil
                }
                if state.entries.isEmpty { state.ticking = false }
                return (due, state.entries.isEmpty)
            }
            for expire in due { expire() }
            if stop { return }
        }
    }
}

extension ContinuousClock.Instant {
    /// Far enough ahead to mean "not now" (about 30 years).
    static var distantFuture: ContinuousClock.Instant { .now.advanced(by: .seconds(1_000_000_000)) }
}
