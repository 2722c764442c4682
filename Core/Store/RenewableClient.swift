import CycloneRuntime
import Logging
import PostgresNIO
import Synchronization

/// A `PostgresClient` of one's own that can be replaced by a fresh one, so that the next connection attempt is
/// made at once.
///
/// PostgresNIO's pool retries a failed connection on a backoff that grows by 1.25 with every failure, up to a
/// minute, and has no setting for it: after a 30-second outage its next attempt can be 7 seconds away, and
/// whoever waits on the pool stores nothing in the meantime. A fresh client tries at once. The prediction writer
/// renews its client when a write never got a connection and a probe has since reached the database.
///
/// Each client runs in a detached task, outside any service group's graceful shutdown: it must outlive the
/// server's shutdown, since the writer flushes after the server stops. `stop` ends it.
final class RenewableClient: Sendable {
    private struct State {
        var runner: DatabaseRunner
        /// `nil` until `start`.
        var task: Task<Void, Never>?
        var generation = 0
        var stopped = false
    }

    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let state: Mutex<State>

    init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        state = Mutex(State(runner: DatabaseRunner(PostgresClient(configuration: configuration, backgroundLogger: logger))))
    }

    /// Runs the first client; until then `current` waits.
    func start() {
        state.withLock { state in
            guard state.task == nil, !state.stopped else { return }
            let runner = state.runner
            state.task = Task.detached { await runner.run() }
        }
    }

    /// The client now, once it runs, and its generation (for `renew`).
    func current() async -> (client: PostgresClient, generation: Int) {
        let (runner, generation) = state.withLock { ($0.runner, $0.generation) }
        await runner.running()
        return (runner.client, generation)
    }

    /// Replaces the client of `generation` with a fresh one and stops the old one. A later generation is left as
    /// it is: another caller renewed it already. Nothing is renewed once stopped.
    func renew(generation: Int) {
        let old: Task<Void, Never>? = state.withLock { state in
            guard !state.stopped, state.task != nil, state.generation == generation else { return nil }
            let old = state.task
            let runner = DatabaseRunner(PostgresClient(configuration: configuration, backgroundLogger: logger))
            state.runner = runner
            state.task = Task.detached { await runner.run() }
            state.generation += 1
            return old
        }
        old?.cancel()
    }

    /// Stops the client, waiting at most `timeout` for it to close its connections (a connection whose server
    /// died may never answer).
    func stop(within timeout: Duration) async {
        let task = state.withLock { state in
            state.stopped = true
            return state.task
        }
        guard let task else { return }
        task.cancel()
        _ = try? await withTimeout(timeout) { await task.value }
    }
}
