import CycloneCloud
import CycloneModel
import CycloneStore
import Logging

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

    /// Deploys the registered `candidate`, retrained from `parent` (the live version), in `role`: as the live
    /// version, as a canary answering `canaryPercent` of the requests, or as the parent's shadow. Returns `nil`,
    /// recording nothing, when the platform does not deploy; throws `DeploymentFailed` when it refuses.
    public func deploy(_ candidate: ModelArtifact, parent: ModelArtifact, as role: Role, canaryPercent: Int) async throws
        -> Deployment?
    {
        guard platform.deploys else { return nil }
        let deployment: Deployment
        do {
            guard let deployed = try await platform.deploy(candidate, as: role, beside: parent) else { return nil }
            deployment = deployed
        } catch {
            throw DeploymentFailed(underlying: error)
        }
        let digest = deployment.imageDigest
        switch role {
        case .live: try await registry.markLive(name: candidate.name, version: candidate.version, imageDigest: digest)
        case .canary, .shadow:
            try await registry.startChallenger(name: candidate.name, version: candidate.version,
                                               as: role == .canary ? .canary : .shadow, imageDigest: digest)
        }
        var detail: [String: JSONValue] = ["parent": .string(parent.version), "location": .string(deployment.location),
                                           "detail": .string(deployment.detail)]
        if let digest = deployment.imageDigest { detail["image_digest"] = .string(digest) }
        if role == .canary { detail["percent"] = .number(Double(canaryPercent)) }
        let kind: EvaluationStore.EventKind = switch role {
        case .live: .deployed
        case .canary: .canaryStarted
        case .shadow: .shadowStarted
        }
        try await store.event(kind, name: candidate.name, version: candidate.version, detail: .object(detail))
        return deployment
    }

    /// Makes the canary or shadow `challenger` live; `detail` goes into the `promoted` event.
    public func promote(_ challenger: ModelArtifact, from role: Role, detail: JSONValue) async throws {
        let promoted = try await platform.promote(challenger, from: role)
        try await registry.markLive(name: challenger.name, version: challenger.version, imageDigest: promoted?.imageDigest)
        try await store.event(.promoted, name: challenger.name, version: challenger.version, detail: detail)
    }

    /// Ends the canary or shadow `challenger` and records it rejected `because`; `detail` goes into the
    /// `rolled_back` (canary) or `discarded` (shadow) event.
    public func rollBack(_ challenger: ModelArtifact, from role: Role, because reason: String, detail: JSONValue)
        async throws
    {
        _ = try await platform.rollback(challenger, from: role)
        let verb = role == .shadow ? "discarded" : "rolled back"
        try await registry.setStatus(name: challenger.name, version: challenger.version, .rejected,
                                     reason: "\(verb): " + reason)
        try await store.event(role == .shadow ? .discarded : .rolledBack, name: challenger.name,
                              version: challenger.version, detail: detail)
    }
}

/// How a challenger's verdict went.
enum VerdictOutcome {
    /// The platform does not deploy (no `MODEL_DIR`): the verdict is recorded only.
    case recordedOnly
    case carriedOut
    /// The platform or the store failed; the challenger stays as it was, to be decided again next cycle.
    case failed(String)

    static let recordedOnlyNote = "; recorded only: the platform does not deploy (MODEL_DIR is unset)"
}

extension Evaluator {
    /// Carries out the verdict on the canary or shadow `challenger` through `Rollout`: promoted, or rolled back
    /// (a canary) or discarded (a shadow) `because`, with `detail` in the event. A failure is logged and
    /// returned, never thrown: the cycle goes on.
    func carryOut(_ challenger: ModelArtifact, from role: Role, promote: Bool, because reason: String,
                  detail: JSONValue) async -> VerdictOutcome
    {
        guard platform.deploys else { return .recordedOnly }
        let rollout = Rollout(platform: platform, registry: registry, store: store)
        do {
            if promote {
                try await rollout.promote(challenger, from: role, detail: detail)
            } else {
                try await rollout.rollBack(challenger, from: role, because: reason, detail: detail)
            }
            return .carriedOut
        } catch {
            logger.error("\(role.rawValue) verdict not carried out", metadata: [
                "model": "\(challenger.name)", "version": "\(challenger.version)", "error": "\(error)"])
            return .failed("\(error)")
        }
    }
}
