import CycloneModel
import CycloneRuntime
import CycloneStore
import Logging
import ServiceLifecycle
import Synchronization

/// Registers each version predict serves (live, canary, shadow; as a model set loads or swaps them in) in the
/// `model` table, so the evaluator finds its schema and reference profile: one at a time, in order, retried
/// with backoff while PostgreSQL is unreachable, never holding up serving. Before the first, it checks that
/// the database has the schema, so readiness says so even before any model is loaded.
public final class ModelRegistration: Service, Sendable {
    let runner: DatabaseRunner
    let registry: ModelRegistry
    let logger: Logger
    /// Why predict is not ready, while the database lacks the schema (readiness reports it).
    public let schemaProblem = SchemaProblem()
    private let queue: AsyncStream<(ModelArtifact, ModelRegistry.Status)>
    private let continuation: AsyncStream<(ModelArtifact, ModelRegistry.Status)>.Continuation
    /// The versions handed over already (`name\0version`): a version's row never changes once written.
    private let handed = Mutex<Set<String>>([])

    public init(runner: DatabaseRunner, registry: ModelRegistry, logger: Logger) {
        self.runner = runner
        self.registry = registry
        self.logger = logger
        (queue, continuation) = AsyncStream.makeStream()
    }

    /// Registers `artifact` in the background, unless this process has already asked for it.
    public func register(_ artifact: ModelArtifact, status: ModelRegistry.Status) {
        guard handed.withLock({ $0.insert(artifact.name + "\u{0}" + artifact.version).inserted }) else { return }
        continuation.yield((artifact, status))
    }

    /// How long one attempt at a check or a registration may take.
    static let attemptTimeout = Duration.seconds(30)

    public func run() async throws {
        // Shutdown ends the retries at once rather than after the current wait.
        await cancelWhenGracefulShutdown { [self] in
            await runner.running()
            await retrying("checking the database schema failed", givingUp: false) { [registry] in try await registry.checkSchema() }
            for await (artifact, status) in queue {
                let key = artifact.name + "\u{0}" + artifact.version
                let done = await retrying("registering the model failed", ["model": "\(artifact.name)", "version": "\(artifact.version)"]) { [registry, logger] in
                    let new = try await registry.register(artifact, status: status)
                    logger.info(new ? "model registered" : "model already registered", metadata: [
                        "model": "\(artifact.name)", "version": "\(artifact.version)", "status": "\(status.rawValue)"])
                }
                // Given up: the next load of the version asks again.
                if !done { _ = handed.withLock { $0.remove(key) } }
            }
        }
        // A service that returns would stop the group: stay until shutdown.
        try? await gracefulShutdown()
    }

    /// Runs `operation` until it succeeds (true) or the task is cancelled, with backoff. When `givingUp`, a
    /// failure that is the artifact's (PostgreSQL refusing its data: SQLSTATE classes 22, 23 and 54) is logged
    /// and given up (false), so it holds up no other registration. A database without the schema is said
    /// once, in one line, and in `schemaProblem` until it is migrated.
    ///
    /// Each attempt is bounded by `attemptTimeout`: PostgresNIO may never answer a query sent on a connection
    /// that closed under it (a pool shutting down as the server's bind failed, a database that dropped it), and
    /// an attempt that waited for that answer held predict's shutdown for good. A timed-out registration may
    /// still commit; the next attempt then finds the version registered.
    @discardableResult
    private func retrying(_ failure: String, _ metadata: Logger.Metadata = [:], givingUp: Bool = true,
                          _ operation: @escaping @Sendable () async throws -> Void) async -> Bool {
        var delay = Duration.milliseconds(500)
        var said: String?
        while !Task.isCancelled {
            do {
                try await withTimeout(Self.attemptTimeout, operation)
                schemaProblem.set(nil)
                return true
            } catch {
                if Task.isCancelled { return false }
                var wait = delay
                if givingUp, StoreProblem.refusesData(error) {
                    logger.error("\(failure); not retried", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    return false
                }
                if case .notMigrated = StoreProblem(error) {
                    let problem = StoreProblem(error).explanation
                    schemaProblem.set(problem)
                    if said != problem { logger.error("predict is not ready: \(problem)") }
                    said = problem
                    wait = .seconds(2)  // a migration is quick to notice once run
                } else {
                    logger.warning("\(failure); retrying", metadata: metadata.merging([
                        "error": "\(error)", "retry_in": "\(delay)"]) { $1 })
                    delay = min(delay * 2, .seconds(30))
                }
                guard (try? await Task.sleep(for: wait)) != nil else { return false }
            }
        }
        return false
    }
}

/// Why the database cannot take predictions yet (its schema is missing), or `nil`.
public final class SchemaProblem: Sendable {
    private let state = Mutex<String?>(nil)
    public init() {}
    public var current: String? { state.withLock { $0 } }
    public func set(_ problem: String?) { state.withLock { $0 = problem } }
}
