import CycloneModel
import CycloneStore
import Logging
import ServiceLifecycle
import Synchronization

/// Registers the served model in the `model` table, so the evaluator finds its schema and reference profile:
/// retried with backoff while PostgreSQL is unreachable, never holding up serving.
public struct ModelRegistration: Service {
    let runner: DatabaseRunner
    let registry: ModelRegistry
    let artifact: ModelArtifact
    let logger: Logger
    /// Why predict is not ready, while the database lacks the schema (readiness reports it).
    public let schemaProblem = SchemaProblem()

    public init(runner: DatabaseRunner, registry: ModelRegistry, artifact: ModelArtifact, logger: Logger) {
        self.runner = runner
        self.registry = registry
        self.artifact = artifact
        self.logger = logger
    }

    public func run() async throws {
        // Shutdown ends the retries at once rather than after the current wait.
        await cancelWhenGracefulShutdown {
            await runner.running()
            await Self.register(artifact, status: .live, in: registry, logger: logger, schemaProblem: schemaProblem)
        }
        // A service that returns would stop the group: stay until shutdown.
        try? await gracefulShutdown()
    }

    /// Registers `artifact` (unless known), retrying with backoff until it succeeds or the task is cancelled.
    /// A database without the schema is said once, in one line, and in `schemaProblem` until it is migrated.
    public static func register(_ artifact: ModelArtifact, status: ModelRegistry.Status, in registry: ModelRegistry,
                         logger: Logger, schemaProblem: SchemaProblem? = nil) async {
        var delay = Duration.milliseconds(500)
        var said: String?
        while !Task.isCancelled {
            do {
                let new = try await registry.register(artifact, status: status)
                schemaProblem?.set(nil)
                logger.info(new ? "model registered" : "model already registered", metadata: [
                    "model": "\(artifact.name)", "version": "\(artifact.version)"])
                break
            } catch {
                var wait = delay
                if case .notMigrated = StoreProblem(error) {
                    let problem = StoreProblem(error).explanation
                    schemaProblem?.set(problem)
                    if said != problem { logger.error("predict is not ready: \(problem)") }
                    said = problem
                    wait = .seconds(2)  // a migration is quick to notice once run
                } else {
                    logger.warning("registering the model failed; retrying", metadata: [
                        "error": "\(error)", "retry_in": "\(delay)"])
                    delay = min(delay * 2, .seconds(30))
                }
                guard (try? await Task.sleep(for: wait)) != nil else { return }
            }
        }
    }
}

/// Why the database cannot take predictions yet (its schema is missing), or `nil`.
public final class SchemaProblem: Sendable {
    private let state = Mutex<String?>(nil)
    public init() {}
    public var current: String? { state.withLock { $0 } }
    public func set(_ problem: String?) { state.withLock { $0 = problem } }
}
