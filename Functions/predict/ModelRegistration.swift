import CycloneModel
import CycloneStore
import Logging
import ServiceLifecycle

/// Registers the served model in the `model` table, so the evaluator finds its schema and reference profile:
/// retried with backoff while PostgreSQL is unreachable, never holding up serving.
struct ModelRegistration: Service {
    let registry: ModelRegistry
    let artifact: ModelArtifact
    let logger: Logger

    func run() async throws {
        // Shutdown ends the retries at once rather than after the current wait.
        await cancelWhenGracefulShutdown { await Self.register(artifact, status: .live, in: registry, logger: logger) }
        // A service that returns would stop the group: stay until shutdown.
        try? await gracefulShutdown()
    }

    /// Registers `artifact` (unless known), retrying with backoff until it succeeds or the task is cancelled.
    static func register(_ artifact: ModelArtifact, status: ModelRegistry.Status, in registry: ModelRegistry,
                         logger: Logger) async {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                let new = try await registry.register(artifact, status: status)
                logger.info(new ? "model registered" : "model already registered", metadata: [
                    "model": "\(artifact.name)", "version": "\(artifact.version)"])
                break
            } catch {
                logger.warning("registering the model failed; retrying", metadata: [
                    "error": "\(String(reflecting: error))", "retry_in": "\(delay)"])
                guard (try? await Task.sleep(for: delay)) != nil else { return }
                delay = min(delay * 2, .seconds(30))
            }
        }
    }
}
