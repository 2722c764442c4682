import CycloneModel
import Foundation
import Logging
import PostgresNIO

/// The `model` table: every version Cyclone has served or trained, with its artifact.
///
/// The evaluator reads a version's artifact here (its task, classes and reference profile), so `predict`
/// registers the model it serves when it starts.
public struct ModelRegistry: Sendable {
    public enum Status: String, Sendable {
        case candidate, canary, live, retired, rejected
    }

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Registers a version unless it is already known (a version's artifact never changes). Returns whether it
    /// was new.
    @discardableResult
    public func register(_ artifact: ModelArtifact, status: Status) async throws -> Bool {
        let document = String(decoding: try artifact.encoded(), as: UTF8.self)
        let family = artifact.training?.family ?? artifact.predictor.family
        let holdout = try artifact.training?.holdoutMetrics.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let rows = try await client.query("""
            INSERT INTO model (name, version, family, task, status, artifact, parent_version, training_rows,
                               holdout_metrics)
            VALUES (\(artifact.name), \(artifact.version), \(family), \(artifact.task.rawValue), \(status.rawValue),
                    \(document)::jsonb, \(artifact.training?.parentVersion), \(artifact.training?.rows),
                    \(holdout)::jsonb)
            ON CONFLICT (name, version) DO NOTHING
            RETURNING version
            """, logger: logger)
        var inserted = false
        for try await _ in rows.decode(String.self) { inserted = true }
        return inserted
    }

    /// The artifact of a version, or `nil` when it is not registered.
    public func artifact(name: String, version: String) async throws -> ModelArtifact? {
        let rows = try await client.query(
            "SELECT artifact::text FROM model WHERE name = \(name) AND version = \(version)", logger: logger)
        for try await text in rows.decode(String.self) {
            return try ModelArtifact.decode(Data(text.utf8))
        }
        return nil
    }
}

extension Predictor {
    /// The family name of a predictor, for models whose artifact does not say how they were trained.
    public var family: String {
        switch self {
        case .linear: "ridge"
        case .logistic: "logistic"
        }
    }
}
