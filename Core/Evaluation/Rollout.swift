import CycloneCloud
import CycloneModel
import CycloneStore

/// Puts model versions into service and takes them out: deploy, promote a canary, roll one back. Each step
/// asks the platform first and records in the registry after, then writes its event, so the registry never
/// names a version the platform does not serve; a run stopped in between leaves the registry as it was (a
/// registered candidate, or a canary), to be decided again.
public struct Rollout: Sendable {
    let platform: any Platform
    let registry: ModelRegistry
    let store: EvaluationStore

    public init(platform: any Platform, registry: ModelRegistry, store: EvaluationStore) {
        self.platform = platform
        self.registry = registry
        self.store = store
    }

    /// The platform refused a deployment; nothing was recorded.
    public struct DeploymentFailed: Error, CustomStringConvertible {
        public var underlying: any Error
        public var description: String { "\(underlying)" }
    }

    /// Deploys the registered `candidate`, retrained from `parent`: as a canary answering `canaryPercent` of
    /// the requests when that is 1…99, else in place of the live version. Returns `nil`, recording nothing,
    /// when the platform does not deploy; throws `DeploymentFailed` when it refuses.
    public func deploy(_ candidate: ModelArtifact, parent: String, canaryPercent: Int) async throws -> Deployment? {
        guard platform.deploys else { return nil }
        let canary = PlatformSettings.isCanary(canaryPercent)
        let deployment: Deployment
        do {
            guard let deployed = try await platform.deploy(candidate, canary: canary) else { return nil }
            deployment = deployed
        } catch {
            throw DeploymentFailed(underlying: error)
        }
        if canary {
            try await registry.startCanary(name: candidate.name, version: candidate.version)
        } else {
            try await registry.markLive(name: candidate.name, version: candidate.version)
        }
        var detail: [String: JSONValue] = ["parent": .string(parent), "location": .string(deployment.location),
                                           "detail": .string(deployment.detail)]
        if canary { detail["percent"] = .number(Double(canaryPercent)) }
        try await store.event(canary ? .canaryStarted : .deployed, name: candidate.name, version: candidate.version,
                              detail: .object(detail))
        return deployment
    }

    /// Gives the canary `canary` all the traffic and records it live; `detail` goes into the `promoted` event.
    public func promote(_ canary: ModelArtifact, detail: JSONValue) async throws {
        _ = try await platform.promote(canary)
        try await registry.markLive(name: canary.name, version: canary.version)
        try await store.event(.promoted, name: canary.name, version: canary.version, detail: detail)
    }

    /// Ends the canary `canary` and records it rejected `because`; `detail` goes into the `rolled_back` event.
    public func rollBack(_ canary: ModelArtifact, because reason: String, detail: JSONValue) async throws {
        _ = try await platform.rollback(canary)
        try await registry.setStatus(name: canary.name, version: canary.version, .rejected, reason: "rolled back: " + reason)
        try await store.event(.rolledBack, name: canary.name, version: canary.version, detail: detail)
    }
}
