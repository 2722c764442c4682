import CycloneModel

/// Where the loop runs: the seam between the evaluator's decisions and the machinery that retrains and
/// deploys. `LocalPlatform` runs on one machine; the Cloud Run platform starts a Cloud Run job.
public protocol Platform: Sendable {
    /// Starts a retrain of a model and returns once it has started (not finished), with what identifies the
    /// execution.
    func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution

    /// Whether `deploy`, `promote` and `rollback` act; `false` when the platform records decisions only.
    var deploys: Bool { get }

    /// Puts a registered model version into service, with no downtime: in place of the current one (`live`), as
    /// a canary beside it answering a share of the traffic, or as the shadow of `live` (the version serving),
    /// scored on every request beside it and answering none. `nil` when this platform records deployments only.
    func deploy(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment?

    /// Makes the canary or shadow `model` the live version, answering all the traffic.
    func promote(_ model: ModelArtifact, from role: Role) async throws -> Deployment?

    /// Ends the canary or shadow `model`; the live version serves alone again.
    func rollback(_ model: ModelArtifact, from role: Role) async throws -> Deployment?
}

/// How a deployed version serves.
public enum Role: String, Sendable, Codable {
    /// It answers every request.
    case live
    /// It answers a share of the requests beside the live version.
    case canary
    /// It is scored on every request beside the live version, which alone answers.
    case shadow
}

extension Platform {
    /// Deploys `model` in `role` beside no particular version (a live or canary deployment).
    public func deploy(_ model: ModelArtifact, as role: Role) async throws -> Deployment? {
        try await deploy(model, as: role, beside: nil)
    }
}

/// A model version put into service.
public struct Deployment: Sendable, Equatable {
    /// Where it serves from: a file, an image digest.
    public var location: String
    /// A sentence for the event trail.
    public var detail: String
    /// The digest of the image it serves from (`sha256:…`), when it serves from an image.
    public var imageDigest: String?

    public init(location: String, detail: String, imageDigest: String? = nil) {
        self.location = location
        self.detail = detail
        self.imageDigest = imageDigest
    }
}

/// Why and for which model a retrain is asked for.
public struct RetrainRequest: Sendable, Equatable {
    public var modelName: String
    /// The version serving when the retrain was asked for: the parent of the candidate.
    public var modelVersion: String
    public var reason: String
    /// The `retrain_requested` event this request wrote; the retrain reports against it.
    public var eventID: Int64
    /// Settings the requester passes on to the retrain's environment (the training window).
    public var settings: [String: String]

    public init(modelName: String, modelVersion: String, reason: String, eventID: Int64, settings: [String: String] = [:]) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.reason = reason
        self.eventID = eventID
        self.settings = settings
    }

    /// The retrain's environment for this request: the settings, then what names the request.
    public var environment: [(String, String)] {
        settings.sorted { $0.key < $1.key } + [
            ("RETRAIN_MODEL_NAME", modelName), ("RETRAIN_PARENT_VERSION", modelVersion),
            ("RETRAIN_EVENT_ID", "\(eventID)"), ("RETRAIN_REASON", reason),
        ]
    }
}

/// A started retrain.
public struct RetrainExecution: Sendable, Equatable {
    /// The platform's name for it: a process id, a Cloud Run execution name.
    public var id: String
    /// A sentence for the event trail.
    public var detail: String
    /// Waits for the execution to end and returns its exit status, where the platform can tell (a child
    /// process); `nil` where the execution reports its end itself (a Cloud Run job).
    public var exitStatus: (@Sendable () async -> Int32)?

    public init(id: String, detail: String, exitStatus: (@Sendable () async -> Int32)? = nil) {
        self.id = id
        self.detail = detail
        self.exitStatus = exitStatus
    }

    public static func == (a: Self, b: Self) -> Bool { a.id == b.id && a.detail == b.detail }
}
