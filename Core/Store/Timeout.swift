import Synchronization

/// An operation did not finish in time.
public struct TimeoutError: Error, CustomStringConvertible, Equatable {
    public var timeout: Duration
    public init(timeout: Duration) { self.timeout = timeout }
    public var description: String { "no answer from PostgreSQL within \(timeout)" }
}

/// Runs `operation`, cancelling it and throwing `TimeoutError` after `timeout`.
///
/// PostgresNIO holds a query for about a minute while it cannot connect; callers that must answer sooner
/// (a request handler, the writer's retry loop) bound it with this. Deadlines are watched by one shared
/// `Watchdog` rather than a sleeping task per call: on Linux a cancelled `Task.sleep` keeps its timer and task
/// alive until the original deadline, which at thousands of calls a second grew memory without bound.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    let task = Task { try await operation() }
    let expired = Flag()
    let id = Watchdog.shared.watch(until: ContinuousClock.now.advanced(by: timeout)) {
        expired.set()
        task.cancel()
    }
    defer { Watchdog.shared.forget(id) }
    do {
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    } catch {
        if expired.isSet { throw TimeoutError(timeout: timeout) }
        throw error
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

/// A flag set once, read from any task.
final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

extension ContinuousClock.Instant {
    /// Far enough ahead to mean "not now" (about 30 years).
    static var distantFuture: ContinuousClock.Instant { .now.advanced(by: .seconds(1_000_000_000)) }
}
